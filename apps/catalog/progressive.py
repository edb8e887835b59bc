"""Progressive billing thresholds: pure math and input checks (no ORM).

A schedule is a set of fixed thresholds and/or a recurring one. With fixed thresholds t1 < … < tn and
`every` X, the thresholds are t1, …, tn, tn + X, tn + 2X, …; with only X they are X, 2X, 3X, …
(Lago's "recurring threshold" after the fixed ones). A threshold is reached when the period's usage
amount to date is at or above it (Stripe's `amount_gte`) — or, with the lifetime scope, the usage since
the subscription started (each threshold then fires once in its life). See docs/billing-rules.md,
"Progressive billing".
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext

from apps.core.errors import ValidationFailed
from apps.core.money import currency_decimal_places
from apps.core.money_format import money_text

from .constants import ThresholdScope

MAX_THRESHOLDS = 20
# The columns' limits: 19 digits, 6 decimals (amounts) — a threshold is money in the plan's currency.
MAX_DIGITS = 19
MAX_DECIMALS = 6


def plain(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros beyond the unit: 500 → "500"."""
    text = f"{value.normalize():f}"
    return text


@dataclass(frozen=True)
class ThresholdSchedule:
    amounts: tuple[Decimal, ...] = ()
    every: Decimal | None = None
    # Measured on the usage since the subscription started instead of the period's (ThresholdScope).
    lifetime: bool = False

    @classmethod
    def of(
        cls, amounts: Iterable[Any], every: Decimal | None, scope: str = ThresholdScope.PERIOD
    ) -> "ThresholdSchedule":
        return cls(tuple(sorted({Decimal(str(amount)) for amount in amounts})), every, scope == ThresholdScope.LIFETIME)

    @property
    def scope(self) -> str:
        return ThresholdScope.LIFETIME if self.lifetime else ThresholdScope.PERIOD

    def __bool__(self) -> bool:
        return bool(self.amounts) or self.every is not None

    def highest_reached(self, amount: Decimal) -> Decimal | None:
        """The highest threshold at or below `amount` (None: none reached yet)."""
        fixed = [threshold for threshold in self.amounts if threshold <= amount]
        highest = fixed[-1] if fixed else None
        if self.every is not None:
            base = self.amounts[-1] if self.amounts else Decimal(0)
            steps = (amount - base) // self.every if amount >= base else Decimal(0)
            if steps >= 1:
                highest = base + steps * self.every
        return highest

    def reached_between(self, low: Decimal | None, high: Decimal, *, limit: int = 10) -> list[Decimal]:
        """The thresholds above `low` (exclusive; None: from the first) and at or below `high`, at most
        `limit` of them (the highest ones), in increasing order: what one interim invoice crosses."""
        reached: list[Decimal] = [t for t in self.amounts if (low is None or t > low) and t <= high]
        if self.every is not None:
            base = self.amounts[-1] if self.amounts else Decimal(0)
            top = self.highest_reached(high)
            if top is not None and top > base:
                value = top
                recurring = []
                while value > base and (low is None or value > low) and len(recurring) < limit:
                    recurring.append(value)
                    value -= self.every
                reached += sorted(recurring)
        return reached[-limit:]


def schedule_text(schedule: ThresholdSchedule, currency: str) -> str:
    """ "at 500.00 USD and 1,200.00 USD, then every 500.00 USD" — for staff and customers."""
    parts = []
    if schedule.amounts:
        parts.append(
            gettext("at %(amounts)s") % {"amounts": ", ".join(money_text(a, currency) for a in schedule.amounts)}
        )
    if schedule.every is not None:
        every = money_text(schedule.every, currency)
        parts.append(
            gettext("then every %(amount)s") % {"amount": every}
            if parts
            else gettext("every %(amount)s") % {"amount": every}
        )
    if not parts:
        return gettext("no thresholds")
    text = ", ".join(parts)
    if schedule.lifetime:
        text = gettext("%(thresholds)s of the usage since the subscription started") % {"thresholds": text}
    return text


def _decimal(raw: Any) -> Decimal | None:
    if isinstance(raw, float | bool):
        return None  # money never travels as a float
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _check_amount(raw: Any, *, currency: str) -> tuple[Decimal | None, str | None]:
    value = _decimal(raw)
    if value is None or value <= 0:
        return None, gettext("Each threshold must be an amount above zero (got %(value)s).") % {"value": raw}
    places = min(MAX_DECIMALS, currency_decimal_places(currency))
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return None, gettext("An amount in %(currency)s has at most %(places)d decimals (got %(value)s).") % {
            "currency": currency,
            "places": places,
            "value": raw,
        }
    if value.adjusted() >= MAX_DIGITS - MAX_DECIMALS:
        return None, gettext("The amount %(value)s is too large.") % {"value": raw}
    return value, None


def schedule_clean(*, amounts: Any, every: Any, currency: str, scope: Any = ThresholdScope.PERIOD) -> ThresholdSchedule:
    """Check thresholds given by staff or the API; refused with field errors on `thresholds`, `every`
    and/or `scope`. An empty schedule (no amounts, no `every`) is allowed: it means no progressive
    billing."""
    errors: dict[str, list[str]] = {}
    if scope in (None, ""):
        scope = ThresholdScope.PERIOD
    if scope not in ThresholdScope.values:
        errors["scope"] = [
            gettext("Measure thresholds on %(choices)s (got %(value)s).")
            % {"choices": " or ".join(f'"{value}"' for value in ThresholdScope.values), "value": scope}
        ]
    values: set[Decimal] = set()
    if amounts in (None, ""):
        amounts = []
    if not isinstance(amounts, list | tuple):
        errors["thresholds"] = [gettext("Give the thresholds as a list of amounts.")]
    elif len(amounts) > MAX_THRESHOLDS:
        errors["thresholds"] = [gettext("Give at most %(count)d thresholds.") % {"count": MAX_THRESHOLDS}]
    else:
        for raw in amounts:
            value, problem = _check_amount(raw, currency=currency)
            if problem is not None:
                errors["thresholds"] = [problem]
                break
            assert value is not None
            values.add(value)
    every_value = None
    if every not in (None, ""):
        every_value, problem = _check_amount(every, currency=currency)
        if problem is not None:
            errors["every"] = [problem]
    if errors:
        message = next(iter(errors.values()))[0]
        raise ValidationFailed(message, fields=errors)
    return ThresholdSchedule(tuple(sorted(values)), every_value, scope == ThresholdScope.LIFETIME)


def schedule_amounts_json(schedule: ThresholdSchedule) -> list[str]:
    return [plain(amount) for amount in schedule.amounts]
