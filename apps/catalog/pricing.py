"""The pricing engine: pure functions from a quantity (and, for percentage prices, the transaction
amounts) to an amount with its explanation. No ORM, no settings, no I/O; Decimal only.

Rules (docs/pricing.md):
- Every intermediate value is exact. The amount of a priced charge is rounded once, at the end, to
  the currency's minor unit, half away from zero (`apps.core.money.quantize_amount`).
- Included units are taken off the quantity before pricing (percentage: the first N transactions
  are free).
- Tiers are contiguous by construction: tier k covers the units above tier k-1's `up_to`, up to and
  including its own `up_to`; the last tier is open-ended.
- A minimum charge per period is a separate true-up line: max(0, minimum - amount), itself rounded.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from apps.core.money import currency_decimal_places, quantize_amount

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class PriceModel(StrEnum):
    FLAT = "flat"  # a fixed fee per period; the quantity is ignored
    PER_UNIT = "per_unit"  # unit amount × billable quantity
    GRADUATED = "graduated"  # each tier prices the units that fall in it (+ its flat fee once reached)
    VOLUME = "volume"  # the tier the quantity reaches prices all units (+ that tier's flat fee)
    PACKAGE = "package"  # amount per started block of package_size units
    PERCENTAGE = "percentage"  # share of each transaction + fixed fee, clamped per transaction


QUANTITY_MODELS = frozenset({PriceModel.PER_UNIT, PriceModel.GRADUATED, PriceModel.VOLUME, PriceModel.PACKAGE})
TIERED_MODELS = frozenset({PriceModel.GRADUATED, PriceModel.VOLUME})


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # inclusive upper bound; None on the last, open-ended tier
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO


@dataclass(frozen=True)
class PriceSpec:
    model: PriceModel
    currency: str
    amount: Decimal = ZERO  # flat: the fee; per unit: one unit; package: one package
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal = Decimal(1)
    included_units: Decimal = ZERO  # free units (percentage: free transactions)
    percentage: Decimal = ZERO  # e.g. 2.9 for 2.9 %
    fixed_fee: Decimal = ZERO  # percentage: per transaction
    min_per_transaction: Decimal | None = None
    max_per_transaction: Decimal | None = None
    minimum_amount: Decimal | None = None  # minimum charge per period


@dataclass(frozen=True)
class ExplanationLine:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal  # exact


@dataclass(frozen=True)
class Quote:
    currency: str
    quantity: Decimal
    billable_quantity: Decimal
    exact_amount: Decimal
    amount: Decimal  # exact_amount rounded once
    lines: tuple[ExplanationLine, ...]
    minimum_true_up: Decimal  # rounded; 0 when no minimum applies
    total: Decimal  # amount + minimum_true_up


# --- formatting -----------------------------------------------------------------------------------


def format_quantity(value: Decimal) -> str:
    """1234567 → "1,234,567"; 12.500 → "12.5"."""
    normalized = value.normalize()
    if normalized == normalized.to_integral_value():
        return f"{int(normalized):,}"
    whole, _, fraction = f"{normalized:f}".partition(".")
    return f"{int(whole):,}.{fraction}" if whole not in ("", "-0") else f"{whole}.{fraction}"


def format_price(value: Decimal, currency: str) -> str:
    """An amount with the currency's decimals, more only when it has them: "7.00 USD", "0.00012 USD"."""
    places = currency_decimal_places(currency)
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    decimals = max(places, -exponent if isinstance(exponent, int) else 0)
    return f"{value:,.{decimals}f} {currency}"


# --- validation -----------------------------------------------------------------------------------


def _require_decimal(name: str, value: object) -> None:
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, not a float")


def price_validate(spec: PriceSpec) -> dict[str, list[str]]:
    """Field-level problems with a price, keyed by field ('amount', 'tiers', 'tiers.1.up_to', …);
    empty when the price is valid. Messages are sentences a finance person understands."""
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(key, []).append(message)

    for name in ("amount", "package_size", "included_units", "percentage", "fixed_fee"):
        _require_decimal(name, getattr(spec, name))
    try:
        currency_decimal_places(spec.currency)
    except ValueError:
        add("currency", f"{spec.currency!r} is not a known currency code.")
    try:
        model = PriceModel(spec.model)
    except ValueError:
        add("model", f"{spec.model!r} is not a price model.")
        return problems

    for name in (
        "amount",
        "fixed_fee",
        "included_units",
        "min_per_transaction",
        "max_per_transaction",
        "minimum_amount",
    ):
        value = getattr(spec, name)
        if value is not None and value < 0:
            add(name, "This cannot be negative.")
    if not ZERO <= spec.percentage <= HUNDRED:
        add("percentage", "A percentage is between 0 and 100.")
    if spec.package_size <= 0 or spec.package_size != spec.package_size.to_integral_value():
        add("package_size", "A package holds a whole number of units, at least 1.")

    if model in TIERED_MODELS:
        _validate_tiers(spec.tiers, add)
    elif spec.tiers:
        add("tiers", "Only graduated and volume prices have tiers; remove them or change the price model.")
    if model in TIERED_MODELS and spec.amount:
        add("amount", "Graduated and volume prices are set by their tiers; leave the amount at 0.")
    if model != PriceModel.PACKAGE and spec.package_size != 1:
        add("package_size", "Only package prices use a package size; leave it at 1.")
    if model == PriceModel.FLAT and spec.included_units:
        add("included_units", "A flat fee does not depend on a quantity; included units do not apply.")
    if model != PriceModel.PERCENTAGE:
        for name in ("percentage", "fixed_fee"):
            if getattr(spec, name):
                add(name, "Only percentage prices use this; leave it at 0.")
        for name in ("min_per_transaction", "max_per_transaction"):
            if getattr(spec, name) is not None:
                add(name, "Only percentage prices have per-transaction limits; leave it empty.")
    else:
        if spec.amount:
            add("amount", "A percentage price is set by its percentage and fixed fee; leave the amount at 0.")
        if spec.included_units != spec.included_units.to_integral_value():
            add("included_units", "For a percentage price, included units are free transactions: a whole number.")
        low, high = spec.min_per_transaction, spec.max_per_transaction
        if low is not None and high is not None and low > high:
            add("max_per_transaction", "The highest fee per transaction must not be below the lowest.")
    return problems


def _validate_tiers(tiers: tuple[Tier, ...], add) -> None:  # type: ignore[no-untyped-def]
    if not tiers:
        add("tiers", "Add at least one tier; the last one has no upper bound.")
        return
    previous: Decimal = ZERO
    for index, tier in enumerate(tiers):
        _require_decimal("up_to", tier.up_to)
        _require_decimal("unit_amount", tier.unit_amount)
        _require_decimal("flat_amount", tier.flat_amount)
        key = f"tiers.{index}"
        if tier.unit_amount < 0:
            add(f"{key}.unit_amount", "A tier's unit price cannot be negative.")
        if tier.flat_amount < 0:
            add(f"{key}.flat_amount", "A tier's flat fee cannot be negative.")
        last = index == len(tiers) - 1
        if tier.up_to is None:
            if not last:
                add(f"{key}.up_to", "Only the last tier can be open-ended; give this tier an upper bound.")
            continue
        if last:
            add(f"{key}.up_to", "Leave the last tier's upper bound empty so that every quantity is priced.")
        if tier.up_to <= previous:
            add(
                f"{key}.up_to",
                f"Tiers must go up: this tier must end above {format_quantity(previous)}"
                + (" (the previous tier's last unit)." if index else "."),
            )
        else:
            previous = tier.up_to


# --- pricing --------------------------------------------------------------------------------------


def price_quote(spec: PriceSpec, *, quantity: Decimal, transactions: Sequence[Decimal] = ()) -> Quote:
    """Price a quantity and explain it. For percentage prices, `transactions` are the amounts and the
    quantity is their number. Raises ValueError for an invalid price or a negative quantity."""
    _require_decimal("quantity", quantity)
    for amount in transactions:
        _require_decimal("transaction amount", amount)
    if not isinstance(quantity, Decimal):
        raise TypeError("quantity must be a Decimal")
    problems = price_validate(spec)
    if problems:
        raise ValueError("invalid price: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
    if quantity < 0:
        raise ValueError("the quantity cannot be negative")

    model = PriceModel(spec.model)
    if model == PriceModel.PERCENTAGE:
        billable, lines = _percentage(spec, transactions)
        quantity = Decimal(len(transactions))
    else:
        billable = max(ZERO, quantity - spec.included_units) if model in QUANTITY_MODELS else quantity
        lines = []
        if model in QUANTITY_MODELS and spec.included_units:
            free = min(quantity, spec.included_units)
            lines.append(
                ExplanationLine(f"{format_quantity(free)} included units at no charge", free, ZERO, ZERO, ZERO)
            )
        lines.extend(_PRICERS[model](spec, billable))

    exact = sum((line.amount for line in lines), ZERO)
    amount = quantize_amount(exact, spec.currency)
    true_up = ZERO
    if spec.minimum_amount is not None and amount < spec.minimum_amount:
        true_up = quantize_amount(spec.minimum_amount - amount, spec.currency)
    true_up = quantize_amount(true_up, spec.currency)
    return Quote(
        currency=spec.currency,
        quantity=quantity,
        billable_quantity=billable,
        exact_amount=exact,
        amount=amount,
        lines=tuple(lines),
        minimum_true_up=true_up,
        total=amount + true_up,
    )


def _flat(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    return [
        ExplanationLine(
            f"Flat fee {format_price(spec.amount, spec.currency)}", Decimal(1), spec.amount, ZERO, spec.amount
        )
    ]


def _per_unit(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    return [
        ExplanationLine(
            f"{format_quantity(quantity)} × {format_price(spec.amount, spec.currency)}",
            quantity,
            spec.amount,
            ZERO,
            quantity * spec.amount,
        )
    ]


def _tier_label(lower: Decimal, upper: Decimal | None) -> str:
    """Units of a tier for humans: "units 1–5", "units 11 and above", "units above 10.5"."""
    start = lower + 1 if lower == lower.to_integral_value() else None
    if upper is None:
        return (
            f"units {format_quantity(start)} and above"
            if start is not None
            else f"units above {format_quantity(lower)}"
        )
    if start is not None:
        return f"units {format_quantity(start)}–{format_quantity(upper)}"
    return f"units above {format_quantity(lower)} up to {format_quantity(upper)}"


def _tier_line(spec: PriceSpec, label: str, units: Decimal, tier: Tier) -> ExplanationLine:
    text = f"{label}: {format_quantity(units)} × {format_price(tier.unit_amount, spec.currency)}"
    if tier.flat_amount:
        text += f" + flat {format_price(tier.flat_amount, spec.currency)}"
    return ExplanationLine(text, units, tier.unit_amount, tier.flat_amount, units * tier.unit_amount + tier.flat_amount)


def _graduated(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    lines = []
    lower = ZERO
    for tier in spec.tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        lines.append(_tier_line(spec, _tier_label(lower, tier.up_to), units, tier))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return lines


def _volume(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    if quantity == 0:
        return []
    lower = ZERO
    for tier in spec.tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            label = f"All {format_quantity(quantity)} units at the rate of {_tier_label(lower, tier.up_to)}"
            text = f"{label}: {format_quantity(quantity)} × {format_price(tier.unit_amount, spec.currency)}"
            if tier.flat_amount:
                text += f" + flat {format_price(tier.flat_amount, spec.currency)}"
            return [
                ExplanationLine(
                    text, quantity, tier.unit_amount, tier.flat_amount, quantity * tier.unit_amount + tier.flat_amount
                )
            ]
        lower = tier.up_to
    raise AssertionError("validated tiers end with an open-ended tier")


def _package(spec: PriceSpec, quantity: Decimal) -> list[ExplanationLine]:
    whole, rest = divmod(quantity, spec.package_size)  # exact for non-negative Decimals
    packages = whole + (1 if rest else 0)  # a started package is a package
    return [
        ExplanationLine(
            f"{format_quantity(quantity)} units in {format_quantity(packages)} package(s) of "
            f"{format_quantity(spec.package_size)} × {format_price(spec.amount, spec.currency)}",
            packages,
            spec.amount,
            ZERO,
            packages * spec.amount,
        )
    ]


def _percentage(spec: PriceSpec, transactions: Sequence[Decimal]) -> tuple[Decimal, list[ExplanationLine]]:
    free = int(spec.included_units)
    charged = list(transactions[free:])
    lines: list[ExplanationLine] = []
    if free and transactions:
        free_count = min(free, len(transactions))
        lines.append(
            ExplanationLine(f"{free_count} included transaction(s) at no charge", Decimal(free_count), ZERO, ZERO, ZERO)
        )
    if not charged:
        return ZERO, lines
    rate = spec.percentage / HUNDRED
    volume = sum(charged, ZERO)
    raw_fees = [amount * rate + spec.fixed_fee for amount in charged]
    fees = [_clamp(fee, spec.min_per_transaction, spec.max_per_transaction) for fee in raw_fees]
    count = Decimal(len(charged))
    text = (
        f"{format_quantity(spec.percentage)} % of {format_price(volume, spec.currency)} "
        f"over {format_quantity(count)} transaction(s)"
    )
    lines.append(ExplanationLine(text, count, rate, ZERO, volume * rate))
    if spec.fixed_fee:
        lines.append(
            ExplanationLine(
                f"Fixed fee {format_quantity(count)} × {format_price(spec.fixed_fee, spec.currency)}",
                count,
                spec.fixed_fee,
                ZERO,
                count * spec.fixed_fee,
            )
        )
    adjustment = sum(fees, ZERO) - sum(raw_fees, ZERO)
    if adjustment:
        raised = sum(1 for raw, fee in zip(raw_fees, fees, strict=True) if fee > raw)
        lowered = sum(1 for raw, fee in zip(raw_fees, fees, strict=True) if fee < raw)
        parts = []
        if raised:
            parts.append(
                f"{raised} raised to the minimum of {format_price(spec.min_per_transaction or ZERO, spec.currency)}"
            )
        if lowered:
            parts.append(
                f"{lowered} capped at the maximum of {format_price(spec.max_per_transaction or ZERO, spec.currency)}"
            )
        lines.append(
            ExplanationLine(
                f"Per-transaction limits: {', '.join(parts)}", Decimal(raised + lowered), ZERO, ZERO, adjustment
            )
        )
    return count, lines


def _clamp(fee: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and fee < low:
        fee = low
    if high is not None and fee > high:
        fee = high
    return fee


_PRICERS = {
    PriceModel.FLAT: _flat,
    PriceModel.PER_UNIT: _per_unit,
    PriceModel.GRADUATED: _graduated,
    PriceModel.VOLUME: _volume,
    PriceModel.PACKAGE: _package,
}


def price_describe(spec: PriceSpec) -> str:
    """A price in one sentence for people: "10.00 USD per unit, first 1,000 units included"."""
    currency = spec.currency
    model = PriceModel(spec.model)
    if model == PriceModel.FLAT:
        text = f"{format_price(spec.amount, currency)} flat"
    elif model == PriceModel.PER_UNIT:
        text = f"{format_price(spec.amount, currency)} per unit"
    elif model == PriceModel.PACKAGE:
        text = f"{format_price(spec.amount, currency)} per package of {format_quantity(spec.package_size)} units"
    elif model == PriceModel.PERCENTAGE:
        text = f"{format_quantity(spec.percentage)} %"
        if spec.fixed_fee:
            text += f" + {format_price(spec.fixed_fee, currency)}"
        text += " per transaction"
        limits = []
        if spec.min_per_transaction is not None:
            limits.append(f"at least {format_price(spec.min_per_transaction, currency)}")
        if spec.max_per_transaction is not None:
            limits.append(f"at most {format_price(spec.max_per_transaction, currency)}")
        if limits:
            text += f" ({', '.join(limits)})"
    else:
        parts = []
        lower = ZERO
        for tier in spec.tiers:
            part = f"{_tier_label(lower, tier.up_to)}: {format_price(tier.unit_amount, currency)}"
            if tier.flat_amount:
                part += f" + {format_price(tier.flat_amount, currency)} flat"
            parts.append(part)
            lower = tier.up_to if tier.up_to is not None else lower
        kind = "graduated" if model == PriceModel.GRADUATED else "volume (the tier reached prices all units)"
        text = f"{kind}: " + "; ".join(parts)
    if spec.included_units:
        noun = "transactions" if model == PriceModel.PERCENTAGE else "units"
        text += f", first {format_quantity(spec.included_units)} {noun} included"
    if spec.minimum_amount is not None:
        text += f", minimum {format_price(spec.minimum_amount, currency)} per period"
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
        _require_decimal(name, value)
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
