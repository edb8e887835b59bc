"""Revenue metrics: pure arithmetic over plain values (no ORM, no settings, no I/O).

Every definition here is written out in docs/reports.md; the tests pin each one on a hand-computed
fixture. Amounts are Decimal (exact) or Fraction; they are rounded once, with the one rounding helper
of `apps.core.money`, where the docs say so.
"""

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from apps.core.money import quantize_amount, quantize_fraction, quantize_ratio

ZERO = Decimal(0)
HUNDRED = Decimal(100)

# How many months one interval of a plan lasts: MRR is a plan's fee for one interval divided by this.
# A year is 12 months; a week 12/52 of a month (52 weeks a year); a day 12/365 of a month.
MONTHS_PER_INTERVAL: dict[str, Fraction] = {
    "month": Fraction(1),
    "year": Fraction(12),
    "week": Fraction(12, 52),
    "day": Fraction(12, 365),
}

AGING_BUCKETS: tuple[str, ...] = ("current", "1_30", "31_60", "61_90", "90_plus")
AGING_LABELS: dict[str, str] = {
    "current": "Current (not yet due)",
    "1_30": "1–30 days",
    "31_60": "31–60 days",
    "61_90": "61–90 days",
    "90_plus": "90+ days",
}


# --- Months -------------------------------------------------------------------------------------


def month_of(moment: datetime | date) -> date:
    """The first day of the month `moment` falls in (UTC)."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def months_between(first: date, last: date) -> Iterator[date]:
    """Every month from `first` to `last`, both included (first days of months)."""
    month = month_of(first)
    while month <= last:
        yield month
        month = next_month(month)


def month_start_at(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def month_end_at(month: date) -> datetime:
    """The instant a month ends: 00:00 UTC on the first day of the next month (excluded from it)."""
    return month_start_at(next_month(month))


def in_force_at_month_end(valid_from: datetime, valid_to: datetime | None, month: date) -> bool:
    """Whether something valid over `[valid_from, valid_to)` is in force at the end of `month`: it
    began before the month ended and had not stopped before that (ending exactly at the month's end,
    as a subscription canceled at the end of a period that ends at midnight on the 1st, still counts
    for that month; it is churn in the next one)."""
    end = month_end_at(month)
    return valid_from < end and (valid_to is None or valid_to >= end)


# --- MRR ----------------------------------------------------------------------------------------


def months_per_interval(interval: str, interval_count: int) -> Fraction:
    if interval_count < 1:
        raise ValueError("interval_count must be at least 1")
    try:
        return MONTHS_PER_INTERVAL[interval] * interval_count
    except KeyError:
        raise ValueError(f"unknown billing interval {interval!r}") from None


def monthly_amount(period_amount: Decimal, *, interval: str, interval_count: int, currency: str) -> Decimal:
    """A fee for one billing interval normalized to one month, rounded once (half up) to the currency's
    minor unit: 2,990.00 a year → 249.17 a month; 30.00 every 3 months → 10.00."""
    if not isinstance(period_amount, Decimal):
        raise TypeError("amounts are Decimal")
    return quantize_fraction(Fraction(period_amount) / months_per_interval(interval, interval_count), currency)


@dataclass(frozen=True)
class DiscountTerms:
    """A recurring discount (coupon duration `forever` or `repeating`), as MRR sees it."""

    discount_type: str  # "percentage" | "fixed_amount"
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None  # in the subscription's currency, per invoice (= per interval)
    applies: bool = True  # whether the coupon covers the subscription's product


def discounted_period_amount(period_amount: Decimal, discounts: Iterable[DiscountTerms], *, currency: str) -> Decimal:
    """The fee for one interval after recurring discounts, taken one after the other as the billing run
    takes them (a percentage of what is left, rounded half up; a fixed amount at most what is left)."""
    left = period_amount
    for terms in discounts:
        if not terms.applies or left <= 0:
            continue
        if terms.discount_type == "percentage":
            if terms.percent_off is None:
                continue
            taken = quantize_amount(left * terms.percent_off / HUNDRED, currency)
        else:
            if terms.amount_off is None:
                continue
            taken = quantize_amount(min(terms.amount_off, left), currency)
        left -= taken
    return left


@dataclass
class Movements:
    """How MRR moved from the end of one month to the end of the next, customer by customer.

    All amounts are positive; `net` adds the gains and takes off the losses."""

    start_mrr: Decimal = ZERO
    end_mrr: Decimal = ZERO
    new: Decimal = ZERO
    expansion: Decimal = ZERO
    contraction: Decimal = ZERO
    churn: Decimal = ZERO
    reactivation: Decimal = ZERO
    start_customers: int = 0
    end_customers: int = 0
    new_customers: int = 0
    churned_customers: int = 0
    reactivated_customers: int = 0

    @property
    def net(self) -> Decimal:
        return self.new + self.expansion + self.reactivation - self.contraction - self.churn

    def add(self, before: Decimal, after: Decimal, *, seen_before: bool) -> None:
        """Count one customer whose MRR went from `before` to `after`. With MRR now and none before,
        it is *new* the first time it ever has MRR and a *reactivation* when it had MRR at an earlier
        month end (`seen_before`); with MRR before and none now, *churn* (all of its previous MRR);
        otherwise a rise is *expansion* and a fall *contraction*."""
        if before > 0:
            self.start_mrr += before
            self.start_customers += 1
        if after > 0:
            self.end_mrr += after
            self.end_customers += 1
        if before <= 0 < after:
            if seen_before:
                self.reactivation += after
                self.reactivated_customers += 1
            else:
                self.new += after
                self.new_customers += 1
        elif after <= 0 < before:
            self.churn += before
            self.churned_customers += 1
        elif after > before:
            self.expansion += after - before
        elif after < before:
            self.contraction += before - after


def mrr_movements(
    previous: Mapping[Hashable, Decimal],
    current: Mapping[Hashable, Decimal],
    *,
    seen_before: Callable[[Hashable], bool] | None = None,
) -> Movements:
    """Movements between two month ends; `previous` and `current` map customers to their MRR
    (customers without MRR may be left out); see `Movements.add`."""
    result = Movements()
    for customer in sorted(set(previous) | set(current), key=repr):
        result.add(
            previous.get(customer, ZERO),
            current.get(customer, ZERO),
            seen_before=seen_before is not None and seen_before(customer),
        )
    return result


def percentage(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """numerator / denominator × 100, to two decimals (half up); None when the denominator is 0."""
    if not denominator:
        return None
    return quantize_amount(Decimal(numerator) * HUNDRED / Decimal(denominator), "USD")


def logo_churn_rate(movements: Movements) -> Decimal | None:
    """Customers lost in the month ÷ customers at the start of the month, in percent."""
    return percentage(movements.churned_customers, movements.start_customers)


def revenue_churn_rate(movements: Movements) -> Decimal | None:
    """Gross MRR churn: (churned + contraction MRR) ÷ MRR at the start of the month, in percent."""
    return percentage(movements.churn + movements.contraction, movements.start_mrr)


def net_revenue_retention(movements: Movements) -> Decimal | None:
    """(Start MRR + expansion − contraction − churn) ÷ start MRR, in percent: what the customers of the
    start of the month pay at its end (new and reactivated customers left out)."""
    kept = movements.start_mrr + movements.expansion - movements.contraction - movements.churn
    return percentage(kept, movements.start_mrr)


def arpa(mrr: Decimal, customers: int, *, currency: str) -> Decimal | None:
    """Average revenue per account: MRR ÷ customers with MRR, rounded half up to the minor unit."""
    if not customers:
        return None
    return quantize_fraction(Fraction(mrr) / customers, currency)


# --- Revenue recognition ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recognition:
    """What one invoice line recognizes in each month, and what stays deferred at each month end."""

    recognized: dict[date, Decimal] = field(default_factory=dict)

    def recognized_through(self, month: date) -> Decimal:
        return sum((amount for key, amount in self.recognized.items() if key <= month), ZERO)


def recognition_schedule(
    amount: Decimal, *, currency: str, start_at: datetime | None, end_at: datetime | None, issued_at: datetime
) -> Recognition:
    """Spread a line's amount evenly over its service period `[start_at, end_at)`, by the exact time
    of the period that falls in each month (a day's share per day, partial days pro rata).

    Each month gets the rounded cumulative amount up to its end minus what earlier months got, so the
    months add up to the line's amount exactly and no cent is lost or created. A line without a
    service period (a manual line, a discount) is recognized when issued."""
    if not isinstance(amount, Decimal):
        raise TypeError("amounts are Decimal")
    if start_at is None or end_at is None or end_at <= start_at:
        return Recognition({month_of(issued_at): amount})
    return Recognition(dict(_ratable(amount, currency, start_at, end_at)))


@lru_cache(maxsize=65_536)
def _ratable(amount: Decimal, currency: str, start_at: datetime, end_at: datetime) -> tuple[tuple[date, Decimal], ...]:
    # Invoice lines repeat (same price, same period for every subscription renewing that day): cached.
    total = _microseconds(end_at - start_at)
    schedule: list[tuple[date, Decimal]] = []
    given = ZERO
    for month in months_between(month_of(start_at), month_of(end_at - timedelta(microseconds=1))):
        covered_until = min(end_at, month_end_at(month))
        cumulative = quantize_ratio(amount, _microseconds(covered_until - start_at), total, currency)
        schedule.append((month, cumulative - given))
        given = cumulative
    return tuple(schedule)


def deferred_at_month_end(recognition: Recognition, amount: Decimal, *, month: date) -> Decimal:
    """What an issued line has not yet recognized at the end of `month`."""
    return amount - recognition.recognized_through(month)


def _microseconds(delta: timedelta) -> int:
    return delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds


# --- Receivables --------------------------------------------------------------------------------


def aging_bucket(due_on: date | None, *, as_of: date) -> str:
    """The aging bucket of an unpaid invoice: not yet due (or no due date) is current; then by whole
    days past the due date: 1–30, 31–60, 61–90, more than 90."""
    if due_on is None:
        return "current"
    days = (as_of - due_on).days
    if days <= 0:
        return "current"
    if days <= 30:
        return "1_30"
    if days <= 60:
        return "31_60"
    if days <= 90:
        return "61_90"
    return "90_plus"
