"""Proration: pure, exact to the second, rounded once per line. No ORM, no settings, no I/O.

For a fee `F` per period `[start, end)` and a change at moment `t` inside it:

    used      = (t - start) / (end - start)        exact fraction of seconds
    remaining = (end - t)   / (end - start)
    credit for the old price   = -(F_old × quantity_old × remaining)
    charge for the new price   = +(F_new × quantity_new × remaining)

Each amount is computed as an exact fraction and rounded once to the currency's minor unit
(ROUND_HALF_UP). Credits are negative lines that name the part of the period they cover. This is the
rule Stripe documents ("down to the second based on the starting timestamp of the billing period and
the timestamp of the proration's triggering event").
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from apps.core.money import quantize_fraction

from .periods import Period


@dataclass(frozen=True)
class ProrationLine:
    description: str
    period: Period  # the part of the billing period this line covers
    quantity: Decimal
    unit_amount: Decimal  # the full-period price per unit
    fraction: Fraction  # share of the billing period covered, exact
    amount: Decimal  # rounded once; negative for credits


def remaining_fraction(period: Period, moment: datetime) -> Fraction:
    """The exact share of `period` from `moment` to its end (seconds, microseconds included)."""
    if not period.start <= moment <= period.end:
        raise ValueError(f"{moment.isoformat()} is outside the period [{period.start}, {period.end})")
    return Fraction(_microseconds(period.end - moment), _microseconds(period.end - period.start))


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def prorated_amount(*, unit_amount: Decimal, quantity: Decimal | int, fraction: Fraction, currency: str) -> Decimal:
    """unit price × quantity × fraction, exact, rounded once."""
    if not isinstance(unit_amount, Decimal):
        raise TypeError("unit_amount must be a Decimal")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    return quantize_fraction(Fraction(unit_amount) * Fraction(Decimal(quantity)) * fraction, currency)


def change_proration(
    *,
    period: Period,
    changed_at: datetime,
    currency: str,
    old_unit_amount: Decimal,
    old_quantity: Decimal | int,
    new_unit_amount: Decimal,
    new_quantity: Decimal | int,
    old_label: str = "previous price",
    new_label: str = "new price",
) -> tuple[ProrationLine, ProrationLine]:
    """The two lines of a mid-period change: credit the unused time of the old price, charge the
    remaining time of the new one. Their sum is what the change costs (negative for a downgrade)."""
    fraction = remaining_fraction(period, changed_at)
    rest = Period(changed_at, period.end) if changed_at < period.end else None
    if rest is None:
        raise ValueError("a change at the very end of the period has nothing to prorate")
    credit = -prorated_amount(unit_amount=old_unit_amount, quantity=old_quantity, fraction=fraction, currency=currency)
    charge = prorated_amount(unit_amount=new_unit_amount, quantity=new_quantity, fraction=fraction, currency=currency)
    return (
        ProrationLine(
            description=f"Unused time on {old_label}",
            period=rest,
            quantity=Decimal(old_quantity),
            unit_amount=old_unit_amount,
            fraction=fraction,
            amount=credit,
        ),
        ProrationLine(
            description=f"Remaining time on {new_label}",
            period=rest,
            quantity=Decimal(new_quantity),
            unit_amount=new_unit_amount,
            fraction=fraction,
            amount=charge,
        ),
    )
