"""Story 2: a yearly plan signed up on 29 February 2028, renewed for four years on a test clock, with
a seat increase in the one year of 366 days. Every invoice is asserted to the cent; every amount is
worked out by hand from the plan price in the comments.

The cast (EUR; a customer in Ireland, which pays Irish VAT, 23 %, added on top):
- Cloud Backup — Business: 240.00 per seat per year.

The rules used (docs/billing-rules.md): periods are half-open, in UTC, and every boundary is counted
from the billing anchor, never from the previous period, with month ends clamped: an anchor on
29 Feb renews on 28 Feb in common years and on 29 Feb again in 2032, never drifting to the 28th. A
quantity change made now credits the unused time of the old quantity and charges the remaining time
of the new one, each = the full-period amount × (seconds left / seconds in the period), rounded once,
half up; both wait for the next invoice. Tax is 23 % of the sum of the lines, rounded once.
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.services import subscription_change, subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.services import plan_create, product_create
from apps.invoices.services.taxes import tax_rate_create
from apps.payments.services import payment_record_manual
from apps.subscriptions.periods import utc

from .helpers import Bill, Line, Tax, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
VAT = "VAT"
FEE = "Cloud Backup — Business (yearly)"


def _renewal(*, number, start, end, due_on, seats, fee, tax, total):
    """A plain yearly invoice: `seats` × 240.00 for [start, end), issued when the period begins."""
    return Bill(
        number=number, status="open", billing_reason="subscription_cycle", period_start_at=start, period_end_at=end,
        issued_at=start, due_on=due_on, currency="EUR",
        lines=[Line("recurring", FEE, start, end, D(seats), D(fee))],
        subtotal=D(fee), taxes=[Tax(VAT, D(23), D(fee), D(tax))], tax_total=D(tax), total=D(total),
        amount_paid=D(0), amount_due=D(total),
    )  # fmt: skip


def _pay(customer, bill: Bill, *, received_at) -> Bill:
    """The customer pays the bill by bank transfer; the same bill, paid."""
    payment_record_manual(
        customer_id=customer.pk, amount=bill.total, currency="EUR", method="bank_transfer",
        reference=bill.number, received_at=received_at,
    )  # fmt: skip
    return replace(bill, status="paid", amount_paid=bill.total, amount_due=D(0))


def test_a_yearly_plan_anchored_on_29_february_with_a_seat_change_in_a_366_day_year():
    tax_rate_create(name=VAT, percentage=D("23"), country="IE")
    backup = product_create(code="backup", name="Cloud Backup")
    business = plan_create(
        product=backup, code="business-yearly", name="Business", interval="year", prices=[Money("240.00", "EUR")]
    )
    test_clock = simulated_clock_create(name="Story 2", frozen_at=utc(2028, 2, 29, 10))
    customer = customer_create(
        name="Byrne Architects Ltd", email="accounts@byrne.example", country="IE", currency="EUR",
        test_clock=test_clock,
    )  # fmt: skip

    # --- 29 Feb 2028 10:00 (a leap day): 3 seats. The first year [29 Feb 2028, 28 Feb 2029) is billed at
    # once: 3 × 240.00 = 720.00; VAT 720.00 × 23 % = 165.60; total 885.60.
    subscription = subscription_start(customer=customer, plan=business, quantity=3)
    y2028 = _renewal(
        number="INV-2028-000001", start=utc(2028, 2, 29, 10), end=utc(2029, 2, 28, 10), due_on=date(2028, 3, 14),
        seats=3, fee="720.00", tax="165.60", total="885.60",
    )  # fmt: skip
    assert bills_of(customer) == [y2028]
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2028, 3, 1))
    y2028 = _pay(customer, y2028, received_at=utc(2028, 3, 1))

    # --- 2029 and 2030 have no 29 February: the anchor clamps to the 28th (the same 720.00 + 165.60).
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2029, 3, 1))
    y2029 = _renewal(
        number="INV-2029-000001", start=utc(2029, 2, 28, 10), end=utc(2030, 2, 28, 10), due_on=date(2029, 3, 14),
        seats=3, fee="720.00", tax="165.60", total="885.60",
    )  # fmt: skip
    assert bills_of(customer) == [y2028, y2029]
    y2029 = _pay(customer, y2029, received_at=utc(2029, 3, 1))

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2030, 3, 1))
    y2030 = _renewal(
        number="INV-2030-000001", start=utc(2030, 2, 28, 10), end=utc(2031, 2, 28, 10), due_on=date(2030, 3, 14),
        seats=3, fee="720.00", tax="165.60", total="885.60",
    )  # fmt: skip
    assert bills_of(customer) == [y2028, y2029, y2030]
    y2030 = _pay(customer, y2030, received_at=utc(2030, 3, 1))

    # --- The fourth year runs to 29 Feb 2032: counted from the anchor, the 28th of 2029–2031 never
    # sticks. [28 Feb 2031 10:00, 29 Feb 2032 10:00) is 366 days = 31,622,400 s.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2031, 3, 1))
    y2031 = _renewal(
        number="INV-2031-000001", start=utc(2031, 2, 28, 10), end=utc(2032, 2, 29, 10), due_on=date(2031, 3, 14),
        seats=3, fee="720.00", tax="165.60", total="885.60",
    )  # fmt: skip
    assert bills_of(customer) == [y2028, y2029, y2030, y2031]
    y2031 = _pay(customer, y2031, received_at=utc(2031, 3, 1))

    # --- 15 Sep 2031 14:30: 3 → 5 seats, prorated. From 15 Sep 2031 14:30 to 29 Feb 2032 10:00 are
    # 166 days 19 h 30 min = 14,342,400 + 70,200 = 14,412,600 s of the year's 31,622,400 s.
    # Share left = 14,412,600 / 31,622,400 = 2,669 / 5,856 (both ÷ 5,400).
    #   credit 3 seats: 720.00 × 2,669/5,856 = 1,921,680/5,856 = 328.1557… → −328.16
    #   charge 5 seats: 1,200.00 × 2,669/5,856 = 3,202,800/5,856 = 546.9262… → +546.93
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2031, 9, 15, 14, 30))
    change = subscription_change(subscription_id=subscription.pk, quantity=5)
    assert [line.amount for line in change.preview.lines] == [D("-328.16"), D("546.93")]

    # --- 29 Feb 2032 10:00: the fifth year [29 Feb 2032, 28 Feb 2033), 5 seats, with the prorations.
    #   5 × 240.00 = 1,200.00
    #   subtotal: −328.16 + 546.93 + 1,200.00 = 1,418.77
    #   VAT: 1,418.77 × 23 % = 326.3171 → 326.32;  total 1,418.77 + 326.32 = 1,745.09
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2032, 3, 1))
    y2032 = Bill(
        number="INV-2032-000001", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2032, 2, 29, 10), period_end_at=utc(2033, 2, 28, 10),
        issued_at=utc(2032, 2, 29, 10), due_on=date(2032, 3, 14), currency="EUR",
        lines=[
            Line("proration", "Unused time on Cloud Backup — Business ×3", utc(2031, 9, 15, 14, 30),
                 utc(2032, 2, 29, 10), D(3), D("-328.16")),
            Line("proration", "Remaining time on Cloud Backup — Business ×5", utc(2031, 9, 15, 14, 30),
                 utc(2032, 2, 29, 10), D(5), D("546.93")),
            Line("recurring", FEE, utc(2032, 2, 29, 10), utc(2033, 2, 28, 10), D(5), D("1200.00")),
        ],
        subtotal=D("1418.77"),
        taxes=[Tax(VAT, D(23), D("1418.77"), D("326.32"))],
        tax_total=D("326.32"), total=D("1745.09"), amount_paid=D(0), amount_due=D("1745.09"),
    )  # fmt: skip
    assert bills_of(customer) == [y2028, y2029, y2030, y2031, y2032]
    y2032 = _pay(customer, y2032, received_at=utc(2032, 3, 1))
    assert bills_of(customer) == [y2028, y2029, y2030, y2031, y2032]
    subscription.refresh_from_db()
    assert (subscription.quantity, subscription.current_period_start_at, subscription.next_billing_at) == (
        5, utc(2032, 2, 29, 10), utc(2033, 2, 28, 10),
    )  # fmt: skip
