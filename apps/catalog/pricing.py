"""The pricing engine: what a price charges for a quantity, and why. Pure: no ORM, no settings, no I/O.

Every price is a `PriceSpec` (one of the `PriceModel`s). `price_validate` lists what is wrong with a
spec, field by field; `price_quote` prices a quantity and explains the amount line by line.

The rules (docs/pricing.md, pinned by apps/catalog/tests/test_pricing.py):

- Decimal only. A float anywhere (spec, tier, quantity, transaction) raises `TypeError`.
- Intermediate values are exact: they are computed in a decimal context that raises instead of
  rounding, so an explanation line never carries a silently rounded figure.
- Each priced charge is rounded once, at the end, to the currency's minor unit with
  `apps.core.money.quantize_amount` (ROUND_HALF_UP): `Quote.amount = quantize_amount(exact_amount)`.
- Tiers are contiguous by construction: tier k covers the quantities in `(up_to[k-1], up_to[k]]`
  (the first starts above 0, the last is open-ended), on the continuous quantity, so fractional
  quantities (e.g. GB) fall in exactly one tier.
- Included units are free units subtracted from the quantity before pricing; for a percentage price
  they are the number of free transactions (the first N transactions carry no fee).
- A package price counts started packages in full (rounded up, the default) or only whole ones
  (rounded down: a partial package is free).
- A graduated percentage price takes each tier's percentage of the part of an amount (e.g. the
  period's payment volume) that falls in that tier, plus the tier's flat fee once the tier is reached.
- A minimum charge per period is made up by a separate, rounded true-up line.

Explanation lines and `price_describe` are written in the active language (whole translatable
sentences): the billing engine writes a bill's lines in its customer's language, screens describe
prices in their reader's.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from decimal import Decimal, Inexact, Rounded, localcontext
from enum import StrEnum
from functools import lru_cache

from django.utils.translation import gettext, ngettext

from apps.core.money import currency_decimal_places, quantize_amount
from apps.core.money_format import money_text

__all__ = [
    "ExplanationLine",
    "InvalidPrice",
    "PackageRounding",
    "PriceModel",
    "PriceSpec",
    "Quote",
    "Tier",
    "format_amount",
    "format_percentage",
    "format_quantity",
    "model_fields",
    "price_quote",
    "price_validate",
    "tier_fields",
]

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


class PriceModel(StrEnum):
    """How a price turns a quantity into an amount. The values are stored in the database."""

    FLAT = "flat"  # a fixed fee per period, quantity ignored
    PER_UNIT = "per_unit"  # unit_amount × billable quantity
    GRADUATED = "graduated"  # each tier prices the units that fall in it (+ a flat fee per tier reached)
    VOLUME = "volume"  # the tier the total quantity reaches prices ALL units (+ that tier's flat fee)
    PACKAGE = "package"  # amount per block of package_size units; a started block counts in full, or is free
    PERCENTAGE = "percentage"  # percent of each transaction + fixed fee, clamped to min/max per transaction
    GRADUATED_PERCENTAGE = "graduated_percentage"  # each tier's percent of the amount in it (+ a flat fee per tier)

    @property
    def label(self) -> str:
        return _MODEL_LABELS[self]


_MODEL_LABELS = {
    PriceModel.FLAT: "flat",
    PriceModel.PER_UNIT: "per-unit",
    PriceModel.GRADUATED: "graduated",
    PriceModel.VOLUME: "volume",
    PriceModel.PACKAGE: "package",
    PriceModel.PERCENTAGE: "percentage",
    PriceModel.GRADUATED_PERCENTAGE: "graduated percentage",
}

TIERED = frozenset({PriceModel.GRADUATED, PriceModel.VOLUME, PriceModel.GRADUATED_PERCENTAGE})


class PackageRounding(StrEnum):
    """How a package price counts a partial package. The values are stored in the database."""

    UP = "up"  # a started package counts in full (Stripe's transform_quantity round=up, Lago's package model)
    DOWN = "down"  # only whole packages count: a partial package is free (round=down)


def _require_decimal(value: object, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


@dataclass(frozen=True)
class Tier:
    """One tier of a graduated or volume price.

    A tier starts right after the previous tier's `up_to` (the first starts above 0) and ends at its
    own `up_to`, inclusive: tiers are contiguous by construction, there is no `from` to get wrong.
    Only the last tier is open-ended (`up_to=None`)."""

    up_to: Decimal | None  # inclusive upper bound in units; None = open-ended (last tier only)
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO  # charged once when any unit falls in (graduated) or reaches (volume) the tier
    percentage: Decimal = ZERO  # GRADUATED_PERCENTAGE: the tier's rate, e.g. Decimal("2") = 2 % of the amount in it

    def __post_init__(self) -> None:
        _require_decimal(self.up_to, "up_to", optional=True)
        _require_decimal(self.unit_amount, "unit_amount")
        _require_decimal(self.flat_amount, "flat_amount")
        _require_decimal(self.percentage, "percentage")


@dataclass(frozen=True)
class PriceSpec:
    model: PriceModel
    currency: str  # ISO 4217 code
    amount: Decimal = ZERO  # FLAT: the fee; PER_UNIT: price per unit (may have extra decimals); PACKAGE: per package
    tiers: tuple[Tier, ...] = ()  # GRADUATED / VOLUME / GRADUATED_PERCENTAGE
    package_size: Decimal = ONE  # PACKAGE
    package_rounding: PackageRounding = PackageRounding.UP  # PACKAGE: count a partial package in full, or not
    included_units: Decimal = ZERO  # free units (PER_UNIT, GRADUATED, VOLUME, PACKAGE); free transactions (PERCENTAGE)
    percentage: Decimal = ZERO  # PERCENTAGE, e.g. Decimal("2.9") = 2.9 %
    fixed_fee: Decimal = ZERO  # PERCENTAGE, per transaction
    min_per_transaction: Decimal | None = None  # PERCENTAGE
    max_per_transaction: Decimal | None = None  # PERCENTAGE
    minimum_amount: Decimal | None = None  # minimum charge per period, made up by a true-up line

    def __post_init__(self) -> None:
        # Values read from the database arrive as plain strings; an unknown one raises ValueError.
        object.__setattr__(self, "model", PriceModel(self.model))
        object.__setattr__(self, "package_rounding", PackageRounding(self.package_rounding))
        if not isinstance(self.currency, str):
            raise TypeError(f"currency must be a str, not {type(self.currency).__name__}")
        object.__setattr__(self, "tiers", tuple(self.tiers))
        for tier in self.tiers:
            if not isinstance(tier, Tier):
                raise TypeError(f"tiers must be Tier objects, not {type(tier).__name__}")
        for name in ("amount", "package_size", "included_units", "percentage", "fixed_fee"):
            _require_decimal(getattr(self, name), name)
        for name in ("min_per_transaction", "max_per_transaction", "minimum_amount"):
            _require_decimal(getattr(self, name), name, optional=True)


@dataclass(frozen=True)
class ExplanationLine:
    description: str  # human text, e.g. "Units 1,001–10,000: 9,000 × 0.002 USD"
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal  # exact, unrounded: quantity × unit_amount + flat_amount, or an adjustment


@dataclass(frozen=True)
class Quote:
    currency: str
    quantity: Decimal  # quantity as given
    billable_quantity: Decimal  # after included units
    exact_amount: Decimal  # exact, unrounded sum of the explanation lines
    amount: Decimal  # exact_amount rounded once to the minor unit
    lines: tuple[ExplanationLine, ...]
    minimum_true_up: Decimal  # rounded; 0 when there is no minimum or it is reached
    total: Decimal  # amount + minimum_true_up


class InvalidPrice(ValueError):
    """A spec that `price_validate` rejects; `errors` holds its field-level messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items())
        super().__init__(f"invalid price: {summary}")


# ---------------------------------------------------------------------------------------------
# Formatting for descriptions


def format_quantity(value: Decimal) -> str:
    """1234567 → "1,234,567"; 2.500 → "2.5"; never an exponent."""
    _require_decimal(value, "quantity")
    text = f"{value.normalize():,f}"
    return "0" if text == "-0" else text


def format_amount(amount: Decimal, currency: str) -> str:
    """An amount with its currency, in the product's one format: `apps.core.money_format.money_text`
    (at least the currency's decimals, more only when the amount has them: 7 → "7.00 USD", 0.00012 →
    "0.00012 USD", 1000 → "1,000 JPY"; "US$7.00" for a Chinese reader). Display only: never rounds."""
    _require_decimal(amount, "amount")
    return money_text(amount, currency)


def format_percentage(value: Decimal) -> str:
    """2.9 → "2.9 %"."""
    return f"{format_quantity(value)} %"


# ---------------------------------------------------------------------------------------------
# Validation

# Which models use which optional field; a field outside its models must stay at its default.
_FIELD_MODELS: dict[str, frozenset[PriceModel]] = {
    "amount": frozenset({PriceModel.FLAT, PriceModel.PER_UNIT, PriceModel.PACKAGE}),
    "tiers": TIERED,
    "package_size": frozenset({PriceModel.PACKAGE}),
    "package_rounding": frozenset({PriceModel.PACKAGE}),
    "included_units": frozenset(
        {PriceModel.PER_UNIT, PriceModel.GRADUATED, PriceModel.VOLUME, PriceModel.PACKAGE, PriceModel.PERCENTAGE}
    ),
    "percentage": frozenset({PriceModel.PERCENTAGE}),
    "fixed_fee": frozenset({PriceModel.PERCENTAGE}),
    "min_per_transaction": frozenset({PriceModel.PERCENTAGE}),
    "max_per_transaction": frozenset({PriceModel.PERCENTAGE}),
}

_FIELD_LABELS = {
    "amount": "an amount",
    "tiers": "tiers",
    "package_size": "a package size",
    "package_rounding": "rounding down",
    "included_units": "included units",
    "percentage": "a percentage",
    "fixed_fee": "a fixed fee per transaction",
    "min_per_transaction": "a minimum fee per transaction",
    "max_per_transaction": "a maximum fee per transaction",
}

_NON_NEGATIVE = {
    "amount": "The amount cannot be negative.",
    "included_units": "Included units cannot be negative.",
    "fixed_fee": "The fixed fee per transaction cannot be negative.",
    "min_per_transaction": "The minimum fee per transaction cannot be negative.",
    "max_per_transaction": "The maximum fee per transaction cannot be negative.",
    "minimum_amount": "The minimum charge cannot be negative.",
}


def model_fields(model: PriceModel | str) -> frozenset[str]:
    """The optional fields a price of this model uses (besides its currency and its minimum charge,
    which every model has): what a form shows for it."""
    model = PriceModel(model)
    return frozenset(name for name, models in _FIELD_MODELS.items() if model in models)


def tier_fields(model: PriceModel | str) -> frozenset[str]:
    """The fields of a tier this model uses (none when the model has no tiers)."""
    model = PriceModel(model)
    if model not in TIERED:
        return frozenset()
    rate = "percentage" if model == PriceModel.GRADUATED_PERCENTAGE else "unit_amount"
    return frozenset({"up_to", rate, "flat_amount"})


def _models_text(models: frozenset[PriceModel]) -> str:
    labels = [model.label for model in PriceModel if model in models]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


@lru_cache(maxsize=4096)
def _validation_errors(spec: PriceSpec) -> tuple[tuple[str, list[str]], ...]:
    """`price_validate`, remembered per spec (specs are immutable): a billing run quotes the same few
    prices hundreds of thousands of times."""
    return tuple(price_validate(spec).items())


def price_validate(spec: PriceSpec) -> dict[str, list[str]]:
    """Field-level problems with a spec, keyed by field name ('amount', 'tiers', 'tiers.1.up_to',
    'package_size', 'percentage', 'currency', ...; tier indexes count from 0, the messages count
    tiers from 1); empty when the spec is valid.

    Rules: the currency is a known ISO 4217 code; every number is finite and none is negative;
    graduated, volume and graduated percentage prices have tiers, whose `up_to` are positive and
    strictly increasing, and only the last tier is — and must be — open-ended (tiers are contiguous
    by construction: each starts right after the previous `up_to`, so they can neither overlap nor
    leave a gap); a graduated percentage tier has a rate within 0..100 and no unit price, other
    tiers have no rate; package_size > 0; percentage within 0..100;
    min_per_transaction <= max_per_transaction; included transactions of a percentage price are a
    whole number; fields that the model does not use stay at their defaults."""
    errors: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    try:
        currency_decimal_places(spec.currency)
    except ValueError:
        add("currency", f"“{spec.currency}” is not a known ISO 4217 currency code.")

    defaults = {f.name: f.default for f in fields(PriceSpec)}
    finite: dict[str, Decimal] = {}
    for name in (
        "amount",
        "package_size",
        "included_units",
        "percentage",
        "fixed_fee",
        "min_per_transaction",
        "max_per_transaction",
        "minimum_amount",
    ):
        value = getattr(spec, name)
        if value is None:
            continue
        if not value.is_finite():
            add(name, "This must be a number.")
        else:
            finite[name] = value

    for name, models in _FIELD_MODELS.items():
        if spec.model not in models and getattr(spec, name) != defaults[name]:
            add(
                name,
                f"A {spec.model.label} price does not use {_FIELD_LABELS[name]}; "
                f"only {_models_text(models)} prices do.",
            )

    for name, message in _NON_NEGATIVE.items():
        if name in finite and finite[name] < 0:
            add(name, message)

    if "package_size" in finite and finite["package_size"] <= 0:
        add("package_size", "The package size must be greater than zero.")
    if "percentage" in finite and not 0 <= finite["percentage"] <= 100:
        add("percentage", "The percentage must be between 0 and 100.")
    minimum, maximum = finite.get("min_per_transaction"), finite.get("max_per_transaction")
    if minimum is not None and maximum is not None and minimum > maximum:
        add("min_per_transaction", "The minimum fee per transaction cannot be more than the maximum.")
    included = finite.get("included_units")
    if spec.model == PriceModel.PERCENTAGE and included is not None and included != included.to_integral_value():
        add("included_units", "Free transactions must be a whole number.")

    if spec.model in TIERED:
        _validate_tiers(spec, add)
    return errors


def _bound_text(spec: PriceSpec, bound: Decimal) -> str:
    """A tier bound as its model counts it: units, or an amount for a graduated percentage."""
    if spec.model == PriceModel.GRADUATED_PERCENTAGE:
        try:
            return format_amount(bound, spec.currency)
        except ValueError:  # an unknown currency, reported on its own field
            return format_quantity(bound)
    return f"{format_quantity(bound)} units"


def _validate_tiers(spec: PriceSpec, add: Callable[[str, str], None]) -> None:
    if not spec.tiers:
        add("tiers", f"A {spec.model.label} price needs at least one tier.")
        return
    previous: Decimal | None = ZERO
    last = len(spec.tiers) - 1
    for index, tier in enumerate(spec.tiers):
        key, number = f"tiers.{index}", index + 1
        for name in ("unit_amount", "flat_amount", "percentage"):
            value: Decimal = getattr(tier, name)
            if not value.is_finite():
                add(f"{key}.{name}", f"Tier {number}: this must be a number.")
            elif name == "percentage" and spec.model == PriceModel.GRADUATED_PERCENTAGE:
                if not 0 <= value <= 100:
                    add(f"{key}.{name}", f"Tier {number}: the percentage must be between 0 and 100.")
            elif name == "percentage" and value:
                add(
                    f"{key}.{name}",
                    f"Tier {number}: a {spec.model.label} tier has a unit price, not a percentage; only "
                    "graduated percentage prices take a percentage per tier.",
                )
            elif name == "unit_amount" and spec.model == PriceModel.GRADUATED_PERCENTAGE and value:
                add(
                    f"{key}.{name}",
                    f"Tier {number}: a graduated percentage tier takes a percentage of the amount, not a unit "
                    "price; leave the unit price at 0.",
                )
            elif value < 0:
                label = "unit price" if name == "unit_amount" else "flat fee"
                add(f"{key}.{name}", f"Tier {number}: the {label} cannot be negative.")
        if tier.up_to is None:
            if index != last:
                add(f"{key}.up_to", f"Only the last tier can be open-ended; give tier {number} an upper bound.")
            previous = None
            continue
        if index == last:
            add(
                f"{key}.up_to",
                f"The last tier must be open-ended (no upper bound), so that every quantity has a price; "
                f"add a tier above {format_quantity(tier.up_to) if tier.up_to.is_finite() else 'it'}.",
            )
        if not tier.up_to.is_finite():
            add(f"{key}.up_to", f"Tier {number}: the upper bound must be a number.")
            previous = None
        elif tier.up_to <= 0:
            add(f"{key}.up_to", f"Tier {number}: the upper bound must be greater than zero.")
        elif previous is not None and index > 0 and tier.up_to <= previous:
            add(
                f"{key}.up_to",
                f"Tier {number} must end above tier {index}, which ends at {_bound_text(spec, previous)}.",
            )
        if tier.up_to.is_finite():
            previous = tier.up_to


# ---------------------------------------------------------------------------------------------
# Pricing


@contextmanager
def _exact() -> Iterator[None]:
    """A decimal context that raises (decimal.Inexact) rather than round an intermediate value."""
    with localcontext() as context:
        context.prec = 200
        context.traps[Inexact] = True
        context.traps[Rounded] = True
        yield


def price_quote(spec: PriceSpec, *, quantity: Decimal, transactions: Sequence[Decimal] = ()) -> Quote:
    """Price a quantity (and, for PERCENTAGE, a list of transaction amounts; quantity is then the
    number of transactions) and explain it.

    Raises TypeError for anything that is not a Decimal (floats included), `InvalidPrice` (a
    ValueError) for a spec that `price_validate` rejects, and ValueError for a negative or
    non-finite quantity, negative transactions, transactions on a price that is not a percentage,
    or a quantity that is not the number of transactions."""
    _require_decimal(quantity, "quantity")
    for transaction in transactions:
        _require_decimal(transaction, "transaction amount")
    errors = _validation_errors(spec)
    if errors:
        raise InvalidPrice(dict(errors))
    if not quantity.is_finite() or quantity < 0:
        raise ValueError(f"the quantity must be a number of at least 0, not {quantity}")
    if spec.model == PriceModel.PERCENTAGE:
        if quantity != len(transactions):
            raise ValueError(
                f"a percentage price is quoted on its transactions: quantity {quantity} is not "
                f"the number of transactions ({len(transactions)})"
            )
        if any(not amount.is_finite() or amount < 0 for amount in transactions):
            raise ValueError("transaction amounts must be numbers of at least 0 (refunds are credited, not priced)")
    elif transactions:
        raise ValueError(f"only a percentage price is quoted on transactions, not a {spec.model.label} price")

    with _exact():
        billable, lines = _PRICERS[spec.model](spec, quantity, transactions)
        exact_amount = sum((line.amount for line in lines), ZERO)
    amount = quantize_amount(exact_amount, spec.currency)
    true_up = ZERO  # measured against the rounded amount, then rounded itself (docs/pricing.md, "Minimums")
    if spec.minimum_amount is not None and amount < spec.minimum_amount:
        with _exact():
            true_up = spec.minimum_amount - amount
    minimum_true_up = quantize_amount(true_up, spec.currency)
    return Quote(
        currency=spec.currency,
        quantity=quantity,
        billable_quantity=billable,
        exact_amount=exact_amount,
        amount=amount,
        lines=tuple(lines),
        minimum_true_up=minimum_true_up,
        total=amount + minimum_true_up,
    )


_Priced = tuple[Decimal, list[ExplanationLine]]


def _plural_number(quantity: Decimal | int) -> int:
    """The number that picks a plural form: a fractional quantity takes the plural, as in "1.5 units"."""
    return int(quantity) if quantity == int(quantity) else 2


def _units(quantity: Decimal) -> str:
    """ "1 unit", "5 units"."""
    return ngettext("%(count)s unit", "%(count)s units", _plural_number(quantity)) % {
        "count": format_quantity(quantity)
    }


def _billable(spec: PriceSpec, quantity: Decimal) -> Decimal:
    return max(ZERO, quantity - spec.included_units)


def _included_line(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    if spec.included_units <= 0 or quantity <= 0:
        return []
    free = min(quantity, spec.included_units)
    return [
        ExplanationLine(
            description=gettext("Included units: %(free)s of %(included)s free")
            % {"free": format_quantity(free), "included": format_quantity(spec.included_units)},
            quantity=free,
            unit_amount=ZERO,
            flat_amount=ZERO,
            amount=ZERO,
        )
    ]


def _price_flat(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    line = ExplanationLine(
        description=gettext("Flat fee: %(amount)s") % {"amount": format_amount(spec.amount, spec.currency)},
        quantity=ONE,
        unit_amount=spec.amount,
        flat_amount=ZERO,
        amount=spec.amount,
    )
    return quantity, [line]


def _price_per_unit(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    billable = _billable(spec, quantity)
    line = ExplanationLine(
        description=f"{format_quantity(billable)} × {format_amount(spec.amount, spec.currency)}",
        quantity=billable,
        unit_amount=spec.amount,
        flat_amount=ZERO,
        amount=billable * spec.amount,
    )
    return billable, [*_included_line(spec, quantity), line]


def _tier_line(spec: PriceSpec, tier: Tier, units: Decimal, description: str) -> ExplanationLine:
    """`description` names the units the line prices ("Units 1–5", "All 12 units at tier 2 (…)")."""
    values = {
        "units": description,
        "quantity": format_quantity(units),
        "unit_price": format_amount(tier.unit_amount, spec.currency),
        "flat_fee": format_amount(tier.flat_amount, spec.currency),
    }
    if tier.flat_amount:
        text = gettext("%(units)s: %(quantity)s × %(unit_price)s + %(flat_fee)s flat fee") % values
    else:
        text = gettext("%(units)s: %(quantity)s × %(unit_price)s") % values
    return ExplanationLine(
        description=text,
        quantity=units,
        unit_amount=tier.unit_amount,
        flat_amount=tier.flat_amount,
        amount=units * tier.unit_amount + tier.flat_amount,
    )


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _units_range(lower: Decimal, upper: Decimal) -> str:
    """The units from just above `lower` to `upper` inclusive: "Unit 6", "Units 6–10", or, for
    fractional bounds, "Units above 100 up to 100.25"."""
    if _is_whole(lower) and _is_whole(upper) and upper == lower + 1:
        return gettext("Unit %(unit)s") % {"unit": format_quantity(upper)}
    if _is_whole(lower) and _is_whole(upper):
        return gettext("Units %(first)s–%(last)s") % {
            "first": format_quantity(lower + 1),
            "last": format_quantity(upper),
        }
    return gettext("Units above %(lower)s up to %(upper)s") % {
        "lower": format_quantity(lower),
        "upper": format_quantity(upper),
    }


def _tier_bounds(lower: Decimal, up_to: Decimal | None) -> str:
    """A tier's whole range: "units 6–10", "units 11 and above", "units above 2.5 up to 10"."""
    if up_to is None:
        if _is_whole(lower):
            return gettext("units %(first)s and above") % {"first": format_quantity(lower + 1)}
        return gettext("above %(lower)s") % {"lower": format_quantity(lower)}
    if _is_whole(lower) and _is_whole(up_to) and up_to == lower + 1:
        return gettext("unit %(unit)s") % {"unit": format_quantity(up_to)}
    if _is_whole(lower) and _is_whole(up_to):
        return gettext("units %(first)s–%(last)s") % {
            "first": format_quantity(lower + 1),
            "last": format_quantity(up_to),
        }
    return gettext("units above %(lower)s up to %(upper)s") % {
        "lower": format_quantity(lower),
        "upper": format_quantity(up_to),
    }


def _price_graduated(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    billable = _billable(spec, quantity)
    lines = _included_line(spec, quantity)
    lower = ZERO
    for tier in spec.tiers:
        if billable <= lower:
            break
        upper = billable if tier.up_to is None else min(billable, tier.up_to)
        lines.append(_tier_line(spec, tier, upper - lower, _units_range(lower, upper)))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return billable, lines


def _price_volume(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    billable = _billable(spec, quantity)
    lines = _included_line(spec, quantity)
    if billable <= 0:
        return billable, lines
    lower = ZERO
    for number, tier in enumerate(spec.tiers, start=1):
        if tier.up_to is None or billable <= tier.up_to:
            description = gettext("All %(units)s at tier %(number)s (%(range)s)") % {
                "units": _units(billable),
                "number": number,
                "range": _tier_bounds(lower, tier.up_to),
            }
            lines.append(_tier_line(spec, tier, billable, description))
            break
        lower = tier.up_to
    return billable, lines


def _price_package(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    billable = _billable(spec, quantity)
    whole, rest = divmod(billable, spec.package_size)  # exact: integral quotient and remainder
    rounds_up = spec.package_rounding == PackageRounding.UP
    packages = whole + (1 if rest and rounds_up else 0)
    values = {
        "units": _units(billable),
        "size": format_quantity(spec.package_size),
        "packages": format_quantity(packages),
        "amount": format_amount(spec.amount, spec.currency),
    }
    if not rest:
        description = gettext("%(units)s in packages of %(size)s: %(packages)s × %(amount)s") % values
    elif rounds_up:
        description = (
            gettext("%(units)s in packages of %(size)s: %(packages)s × %(amount)s (a started package counts in full)")
            % values
        )
    else:
        description = (
            gettext("%(units)s in packages of %(size)s: %(packages)s × %(amount)s (a partial package is free)") % values
        )
    line = ExplanationLine(
        description=description,
        quantity=packages,
        unit_amount=spec.amount,
        flat_amount=ZERO,
        amount=packages * spec.amount,
    )
    return billable, [*_included_line(spec, quantity), line]


def _price_percentage(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    free = min(len(transactions), int(spec.included_units))
    charged = transactions[free:]
    count = Decimal(len(charged))
    rate = spec.percentage.scaleb(-2)
    lines: list[ExplanationLine] = []
    if free:
        lines.append(
            ExplanationLine(
                description=gettext("Free transactions: %(free)s of %(included)s, no fee")
                % {"free": free, "included": format_quantity(spec.included_units)},
                quantity=Decimal(free),
                unit_amount=ZERO,
                flat_amount=ZERO,
                amount=ZERO,
            )
        )
    volume = sum(charged, ZERO)
    if spec.percentage and count:
        lines.append(
            ExplanationLine(
                description=ngettext(
                    "%(percentage)s of %(volume)s (%(count)s transaction)",
                    "%(percentage)s of %(volume)s (%(count)s transactions)",
                    int(count),
                )
                % {
                    "percentage": format_percentage(spec.percentage),
                    "volume": format_amount(volume, spec.currency),
                    "count": format_quantity(count),
                },
                quantity=volume,
                unit_amount=rate,
                flat_amount=ZERO,
                amount=volume * rate,
            )
        )
    if spec.fixed_fee and count:
        lines.append(
            ExplanationLine(
                description=gettext("Fixed fee: %(count)s × %(fee)s")
                % {"count": format_quantity(count), "fee": format_amount(spec.fixed_fee, spec.currency)},
                quantity=count,
                unit_amount=spec.fixed_fee,
                flat_amount=ZERO,
                amount=count * spec.fixed_fee,
            )
        )
    raised, raised_by, capped, capped_by = 0, ZERO, 0, ZERO
    for transaction in charged:
        fee = transaction * rate + spec.fixed_fee
        if spec.min_per_transaction is not None and fee < spec.min_per_transaction:
            raised, raised_by = raised + 1, raised_by + spec.min_per_transaction - fee
        elif spec.max_per_transaction is not None and fee > spec.max_per_transaction:
            capped, capped_by = capped + 1, capped_by + fee - spec.max_per_transaction
    if raised and spec.min_per_transaction is not None:
        lines.append(
            ExplanationLine(
                description=ngettext(
                    "Raised to the minimum fee of %(fee)s per transaction: %(count)s transaction",
                    "Raised to the minimum fee of %(fee)s per transaction: %(count)s transactions",
                    raised,
                )
                % {"fee": format_amount(spec.min_per_transaction, spec.currency), "count": raised},
                quantity=Decimal(raised),
                unit_amount=ZERO,
                flat_amount=raised_by,
                amount=raised_by,
            )
        )
    if capped and spec.max_per_transaction is not None:
        lines.append(
            ExplanationLine(
                description=ngettext(
                    "Capped at the maximum fee of %(fee)s per transaction: %(count)s transaction",
                    "Capped at the maximum fee of %(fee)s per transaction: %(count)s transactions",
                    capped,
                )
                % {"fee": format_amount(spec.max_per_transaction, spec.currency), "count": capped},
                quantity=Decimal(capped),
                unit_amount=ZERO,
                flat_amount=-capped_by,
                amount=-capped_by,
            )
        )
    return count, lines


def _money_range(lower: Decimal, upper: Decimal | None, currency: str) -> str:
    """A tier of amounts: "First 1,000.00 USD", "Above 1,000.00 USD up to 5,050.00 USD", "Above 10,000.00 USD"."""
    values = {"lower": format_amount(lower, currency), "upper": format_amount(upper or ZERO, currency)}
    if upper is None:
        return gettext("Above %(lower)s") % values
    if lower == 0:
        return gettext("First %(upper)s") % values
    return gettext("Above %(lower)s up to %(upper)s") % values


def _money_range_in_sentence(lower: Decimal, upper: Decimal | None, currency: str) -> str:
    """`_money_range` inside a sentence: "first 1,000.00 USD", "above 1,000.00 USD up to 5,050.00 USD"."""
    values = {"lower": format_amount(lower, currency), "upper": format_amount(upper or ZERO, currency)}
    if upper is None:
        return gettext("above %(lower)s") % values
    if lower == 0:
        return gettext("first %(upper)s") % values
    return gettext("above %(lower)s up to %(upper)s") % values


def _price_graduated_percentage(spec: PriceSpec, quantity: Decimal, transactions: Sequence[Decimal]) -> _Priced:
    """The quantity is an amount in the price's currency (e.g. the period's payment volume). Each tier
    takes its percentage of the part of the amount in it, plus its flat fee once reached (any part of
    the amount falls in it); tiers are on the continuous amount, like graduated units."""
    lines: list[ExplanationLine] = []
    lower = ZERO
    for tier in spec.tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        part = upper - lower
        rate = tier.percentage.scaleb(-2)
        values = {
            "range": _money_range(lower, upper, spec.currency),
            "percentage": format_percentage(tier.percentage),
            "part": format_amount(part, spec.currency),
            "flat_fee": format_amount(tier.flat_amount, spec.currency),
        }
        if tier.flat_amount:
            text = gettext("%(range)s: %(percentage)s of %(part)s + %(flat_fee)s flat fee") % values
        else:
            text = gettext("%(range)s: %(percentage)s of %(part)s") % values
        lines.append(
            ExplanationLine(
                description=text,
                quantity=part,
                unit_amount=rate,
                flat_amount=tier.flat_amount,
                amount=part * rate + tier.flat_amount,
            )
        )
        if tier.up_to is None:
            break
        lower = tier.up_to
    return quantity, lines


_PRICERS = {
    PriceModel.FLAT: _price_flat,
    PriceModel.PER_UNIT: _price_per_unit,
    PriceModel.GRADUATED: _price_graduated,
    PriceModel.VOLUME: _price_volume,
    PriceModel.PACKAGE: _price_package,
    PriceModel.PERCENTAGE: _price_percentage,
    PriceModel.GRADUATED_PERCENTAGE: _price_graduated_percentage,
}


def percentage_transaction_fee(spec: PriceSpec, transaction: Decimal) -> Decimal:
    """The exact fee on one charged (not free) transaction: clamp(amount × percentage / 100 +
    fixed fee, min, max). The quote's lines add up to the sum of these."""
    _require_decimal(transaction, "transaction amount")
    with _exact():
        fee = transaction * spec.percentage.scaleb(-2) + spec.fixed_fee
        if spec.min_per_transaction is not None:
            fee = max(fee, spec.min_per_transaction)
        if spec.max_per_transaction is not None:
            fee = min(fee, spec.max_per_transaction)
    return fee


# ---------------------------------------------------------------------------------------------
# For people


def format_price(amount: Decimal, currency: str) -> str:
    """Alias of `format_amount` (so of `money_text`), kept for the billing engine's line texts."""
    return format_amount(amount, currency)


def price_describe(spec: PriceSpec) -> str:
    """A price in one sentence for people, in the active language: "10.00 USD per unit, first 1,000
    units included"."""
    currency = spec.currency
    model = PriceModel(spec.model)
    if model == PriceModel.FLAT:
        text = gettext("%(amount)s flat") % {"amount": format_price(spec.amount, currency)}
    elif model == PriceModel.PER_UNIT:
        text = gettext("%(amount)s per unit") % {"amount": format_price(spec.amount, currency)}
    elif model == PriceModel.PACKAGE:
        values = {"amount": format_price(spec.amount, currency), "size": format_quantity(spec.package_size)}
        if spec.package_rounding == PackageRounding.DOWN:
            text = (
                gettext("%(amount)s per package of %(size)s units (whole packages only: a partial package is free)")
                % values
            )
        else:
            text = gettext("%(amount)s per package of %(size)s units") % values
    elif model == PriceModel.PERCENTAGE:
        text = _percentage_describe(spec)
    elif model == PriceModel.GRADUATED_PERCENTAGE:
        parts = []
        lower = ZERO
        for tier in spec.tiers:
            values = {
                "range": _money_range_in_sentence(lower, tier.up_to, currency),
                "percentage": format_percentage(tier.percentage),
                "flat_fee": format_price(tier.flat_amount, currency),
            }
            if tier.flat_amount:
                parts.append(gettext("%(range)s: %(percentage)s + %(flat_fee)s flat") % values)
            else:
                parts.append(gettext("%(range)s: %(percentage)s") % values)
            lower = tier.up_to if tier.up_to is not None else lower
        text = gettext("graduated percentage of the amount: %(tiers)s") % {"tiers": _tiers_text(parts)}
    else:
        parts = []
        lower = ZERO
        for tier in spec.tiers:
            values = {
                "range": _tier_bounds(lower, tier.up_to),
                "unit_price": format_price(tier.unit_amount, currency),
                "flat_fee": format_price(tier.flat_amount, currency),
            }
            if tier.flat_amount:
                parts.append(gettext("%(range)s: %(unit_price)s + %(flat_fee)s flat") % values)
            else:
                parts.append(gettext("%(range)s: %(unit_price)s") % values)
            lower = tier.up_to if tier.up_to is not None else lower
        if model == PriceModel.GRADUATED:
            text = gettext("graduated: %(tiers)s") % {"tiers": _tiers_text(parts)}
        else:
            text = gettext("volume (the tier reached prices all units): %(tiers)s") % {"tiers": _tiers_text(parts)}
    if spec.included_units:
        values = {"price": text, "count": format_quantity(spec.included_units)}
        if model == PriceModel.PERCENTAGE:
            text = gettext("%(price)s, first %(count)s transactions included") % values
        else:
            text = gettext("%(price)s, first %(count)s units included") % values
    if spec.minimum_amount is not None:
        text = gettext("%(price)s, minimum %(minimum)s per period") % {
            "price": text,
            "minimum": format_price(spec.minimum_amount, currency),
        }
    return text


def _tiers_text(parts: list[str]) -> str:
    """The tiers of a price, one after the other ("units 1–5: 1.00 USD; units 6 and above: 0.50 USD")."""
    # Translators: what separates the tiers of a price in its description.
    return gettext("; ").join(parts)


def _percentage_describe(spec: PriceSpec) -> str:
    """ "2.9 % + 0.30 USD per transaction (at least 0.50 USD, at most 5.00 USD)"."""
    currency = spec.currency
    values = {
        "percentage": format_percentage(spec.percentage),
        "fee": format_price(spec.fixed_fee, currency),
        "minimum": format_price(spec.min_per_transaction or ZERO, currency),
        "maximum": format_price(spec.max_per_transaction or ZERO, currency),
    }
    if spec.fixed_fee:
        text = gettext("%(percentage)s + %(fee)s per transaction") % values
    else:
        text = gettext("%(percentage)s per transaction") % values
    values["price"] = text
    if spec.min_per_transaction is not None and spec.max_per_transaction is not None:
        return gettext("%(price)s (at least %(minimum)s, at most %(maximum)s)") % values
    if spec.min_per_transaction is not None:
        return gettext("%(price)s (at least %(minimum)s)") % values
    if spec.max_per_transaction is not None:
        return gettext("%(price)s (at most %(maximum)s)") % values
    return text


# --- discounts ------------------------------------------------------------------------------------


class DiscountKind(StrEnum):
    PERCENTAGE = "percentage"  # a share of the eligible amount
    FIXED_AMOUNT = "fixed_amount"  # an amount in the invoice's currency, at most the eligible amount


def discount_amount(
    *,
    discount_type: str,
    percent_off: Decimal | None,
    amount_off: Decimal | None,
    eligible_amount: Decimal,
    currency: str,
) -> Decimal:
    """The discount (a positive amount, to be subtracted) on an eligible subtotal.

    The eligible amount is a sum of rounded invoice lines, so it has the currency's decimals at most.
    Percentage: eligible × percent_off / 100, rounded once (half up); fixed: the amount off, capped at
    the eligible amount (with the currency's decimals). Never negative, never above the eligible
    amount; nothing to discount (0 or less) gives 0. Raises ValueError for an invalid discount or an
    unrounded eligible amount."""
    for name, value in (("percent_off", percent_off), ("amount_off", amount_off), ("eligible_amount", eligible_amount)):
        _require_decimal(value, name, optional=name != "eligible_amount")
    kind = DiscountKind(discount_type)
    if eligible_amount != quantize_amount(eligible_amount, currency):
        raise ValueError(f"the eligible amount {eligible_amount} has more decimals than {currency}")
    if kind == DiscountKind.PERCENTAGE:
        if percent_off is None or not ZERO < percent_off <= HUNDRED:
            raise ValueError("a percentage discount takes more than 0 and at most 100 percent off")
        if eligible_amount <= 0:
            return quantize_amount(ZERO, currency)
        return quantize_amount(eligible_amount * percent_off / HUNDRED, currency)
    if amount_off is None or amount_off < 0:
        raise ValueError("a fixed discount needs an amount off of 0 or more")
    if eligible_amount <= 0:
        return quantize_amount(ZERO, currency)
    # Rounding a value at most the (rounded) eligible amount cannot take it above that amount.
    return quantize_amount(min(amount_off, eligible_amount), currency)
