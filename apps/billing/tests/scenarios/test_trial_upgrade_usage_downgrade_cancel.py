"""Story 1: a customer signs up with a trial, upgrades mid-period, uses metered data transfer,
downgrades at the end of a period and cancels, over five months on a test clock, then comes back.
Every invoice is asserted to the cent; every amount is worked out by hand from the plan prices in the
comments.

The cast (EUR; a customer in Germany, which pays German VAT, 19 %, added on top):
- Cloud Hosting — Starter: 20.00 a month + data transfer at 0.08 per GB beyond 10 GB, 14-day trial;
- Cloud Hosting — Pro:     50.00 a month + data transfer at 0.05 per GB beyond 100 GB.

The rules used (docs/billing-rules.md, docs/pricing.md): fees are billed in advance when a period
begins, usage in arrears on the next invoice at the prices of the period it happened in; a change
made now credits the unused time of the old price and charges the remaining time of the new one,
each = the full-period amount × (seconds left / seconds in the period), rounded once, half up, and
both wait for the next invoice; a change at period end is applied when the next period begins;
tax is 19 % of the sum of the lines, rounded once; canceling now credits the unused time of the
period already invoiced, the last period's usage is billed on a final invoice, the credit is taken
off it (never below zero) and what is left waits on the customer's balance.
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from apps.accounts.services import customer_create, simulated_clock_create
from apps.billing.constants import ChangeTiming
from apps.billing.services import subscription_cancel_with_credit, subscription_change, subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.constants import SIMPLE_CHARGE_NAME, ChargeKind, MetricAggregation, PriceModelChoice
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create, product_create
from apps.core import clock
from apps.invoices.selectors import customer_balance
from apps.invoices.services.taxes import tax_rate_create
from apps.payments.services import payment_record_manual
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

from .helpers import Bill, Line, Tax, bills_of

pytestmark = pytest.mark.django_db

D = Decimal
VAT = "VAT"


def _plan(product, *, code, name, fee, gb_price, gb_included, trial_days=0):
    return plan_create(
        product=product, code=code, name=name, trial_days=trial_days,
        charges=[
            ChargeInput(name=SIMPLE_CHARGE_NAME, prices=[PriceInput(currency="EUR", amount=D(fee))]),
            ChargeInput(
                name="Data transfer", kind=ChargeKind.USAGE, price_model=PriceModelChoice.PER_UNIT,
                metric_code="transfer_gb",
                prices=[PriceInput(currency="EUR", amount=D(gb_price), included_units=D(gb_included))],
            ),
        ],
    )  # fmt: skip


def _send_usage(customer, *events):
    """What the usage API does with a batch of (transaction id, moment, GB); returns the refusals."""
    result = usage_events_ingest(
        events=[
            {"transaction_id": transaction_id, "external_customer_id": customer.external_id,
             "metric_code": "transfer_gb", "timestamp": moment.isoformat(), "properties": {"gb": gb}}
            for transaction_id, moment, gb in events
        ],
        now=clock.now(),
    )  # fmt: skip
    assert result.accepted + len(result.rejected) == len(events)
    return [(rejection.transaction_id, rejection.code) for rejection in result.rejected]


def _pay_by_transfer(customer, amount, *, reference, received_at):
    payment_record_manual(
        customer_id=customer.pk, amount=D(amount), currency="EUR", method="bank_transfer", reference=reference,
        received_at=received_at,
    )  # fmt: skip


def test_trial_upgrade_usage_downgrade_and_cancel_over_five_months():
    tax_rate_create(name=VAT, percentage=D("19"), country="DE")
    # No lateness window: usage for an invoiced period is refused (late usage: test_late_usage.py).
    billable_metric_create(
        code="transfer_gb", name="Data transfer", aggregation=MetricAggregation.SUM, field_name="gb",
        lateness_window_days=0,
    )  # fmt: skip
    hosting = product_create(code="hosting", name="Cloud Hosting")
    starter = _plan(hosting, code="starter", name="Starter", fee="20.00", gb_price="0.08", gb_included=10,
                    trial_days=14)  # fmt: skip
    pro = _plan(hosting, code="pro", name="Pro", fee="50.00", gb_price="0.05", gb_included=100)
    test_clock = simulated_clock_create(name="Story 1", frozen_at=utc(2026, 1, 10, 9, 30))
    customer = customer_create(
        name="Brandt Analytik GmbH", email="billing@brandt.example", country="DE", currency="EUR",
        external_id="brandt", test_clock=test_clock,
    )  # fmt: skip

    # --- 10 Jan 09:30: sign-up on Starter with its 14-day trial. Nothing is billed during the trial.
    subscription = subscription_start(customer=customer, plan=starter)
    assert (subscription.status, subscription.trial_end_at) == (SubscriptionStatus.TRIALING, utc(2026, 1, 24, 9, 30))
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 16))
    assert _send_usage(customer, ("trial-1", utc(2026, 1, 15, 8), "12")) == []  # used during the trial: free
    assert bills_of(customer) == []

    # --- 24 Jan 09:30: the trial ends; the first period [24 Jan 09:30, 24 Feb 09:30) is billed in advance.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 26, 12))
    january = Bill(
        number="INV-2026-000001", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 1, 24, 9, 30), period_end_at=utc(2026, 2, 24, 9, 30),
        issued_at=utc(2026, 1, 24, 9, 30), due_on=date(2026, 2, 7), currency="EUR",  # issued + 14 days
        lines=[
            # The trial's 12 GB are shown at zero: the plan's trial usage is free (its default rule).
            Line("usage", "Cloud Hosting — Starter: Data transfer (usage during the trial, 10–24 Jan, free)",
                 utc(2026, 1, 10, 9, 30), utc(2026, 1, 24, 9, 30), D(12), D("0.00")),
            Line("recurring", "Cloud Hosting — Starter (monthly)", utc(2026, 1, 24, 9, 30), utc(2026, 2, 24, 9, 30),
                 D(1), D("20.00")),
        ],
        subtotal=D("20.00"),
        taxes=[Tax(VAT, D(19), D("20.00"), D("3.80"))],  # 20.00 × 19 % = 3.80
        tax_total=D("3.80"), total=D("23.80"), amount_paid=D(0), amount_due=D("23.80"),
    )  # fmt: skip
    assert bills_of(customer) == [january]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    _pay_by_transfer(customer, "23.80", reference="BRANDT-0001", received_at=utc(2026, 1, 26, 11))
    january = _paid(january, "23.80")

    # --- 3 Feb 15:45: upgrade to Pro now, prorated. The period [24 Jan 09:30, 24 Feb 09:30) is 31 days
    # = 2,678,400 s; from 3 Feb 15:45 to 24 Feb 09:30 are 20 days 17 h 45 min = 1,791,900 s left.
    # Share left = 1,791,900 / 2,678,400 = 1,991 / 2,976 (both ÷ 900).
    #   credit Starter: 20.00 × 1,991/2,976 = 39,820/2,976 = 13.3803… → −13.38
    #   charge Pro:     50.00 × 1,991/2,976 = 99,550/2,976 = 33.4509… → +33.45
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 3, 15, 45))
    change = subscription_change(subscription_id=subscription.pk, plan=pro)
    assert [line.amount for line in change.preview.lines] == [D("-13.38"), D("33.45")]
    assert bills_of(customer) == [january]  # the prorations wait for the next invoice

    # Usage after the upgrade, sent in one batch on 21 Feb: 120.5 + 80 + 35.25 = 235.75 GB.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 21))
    assert _send_usage(
        customer,
        ("feb-1", utc(2026, 2, 5, 10), "120.5"), ("feb-2", utc(2026, 2, 12, 18, 20), 80),
        ("feb-3", utc(2026, 2, 20, 23, 59, 59), "35.25"),
    ) == []  # fmt: skip

    # --- 24 Feb 09:30: the second period [24 Feb 09:30, 24 Mar 09:30) on Pro. The invoice carries the
    # waiting prorations, the usage of the period that ended (in arrears, each stretch at the price it
    # was used at: all of it after the upgrade, on Pro, with Pro's 100 GB included) and Pro's fee in
    # advance.
    #   usage: (235.75 − 100 included) × 0.05 = 135.75 × 0.05 = 6.7875 → 6.79
    #   subtotal: −13.38 + 33.45 + 6.79 + 50.00 = 76.86;  VAT: 76.86 × 19 % = 14.6034 → 14.60
    #   total: 76.86 + 14.60 = 91.46
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 26, 12))
    february = Bill(
        number="INV-2026-000002", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 2, 24, 9, 30), period_end_at=utc(2026, 3, 24, 9, 30),
        issued_at=utc(2026, 2, 24, 9, 30), due_on=date(2026, 3, 10), currency="EUR",
        lines=[
            Line("proration", "Unused time on Cloud Hosting — Starter ×1", utc(2026, 2, 3, 15, 45),
                 utc(2026, 2, 24, 9, 30), D(1), D("-13.38")),
            Line("proration", "Remaining time on Cloud Hosting — Pro ×1", utc(2026, 2, 3, 15, 45),
                 utc(2026, 2, 24, 9, 30), D(1), D("33.45")),
            # The stretch before the upgrade [24 Jan 09:30, 3 Feb 15:45) had no usage on Starter: no line.
            # The stretch on Pro names its own dates.
            Line("usage", "Cloud Hosting — Pro: Data transfer (usage)", utc(2026, 2, 3, 15, 45),
                 utc(2026, 2, 24, 9, 30), D("235.75"), D("6.79")),
            Line("recurring", "Cloud Hosting — Pro (monthly)", utc(2026, 2, 24, 9, 30), utc(2026, 3, 24, 9, 30),
                 D(1), D("50.00")),
        ],
        subtotal=D("76.86"),
        taxes=[Tax(VAT, D(19), D("76.86"), D("14.60"))],
        tax_total=D("14.60"), total=D("91.46"), amount_paid=D(0), amount_due=D("91.46"),
    )  # fmt: skip
    assert bills_of(customer) == [january, february]
    _pay_by_transfer(customer, "91.46", reference="BRANDT-0002", received_at=utc(2026, 2, 26, 9))
    february = _paid(february, "91.46")
    # Periods are half-open: usage one second before 24 Feb 09:30 belongs to the invoiced period and
    # arrives too late; usage at 09:30:00 exactly belongs to the new period.
    refused = _send_usage(customer, ("late-1", utc(2026, 2, 24, 9, 29, 59), 7), ("edge-1", utc(2026, 2, 24, 9, 30), 5))
    assert refused == [("late-1", "late_beyond_window")]

    # --- 10 Mar: usage 5 + 45 + 15 = 65 GB so far, then a downgrade to Starter, at the end of the
    # period (a scheduled change: nothing is prorated, Starter applies from 24 Mar 09:30).
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 10, 11))
    assert _send_usage(customer, ("mar-1", utc(2026, 3, 2, 7), 45), ("mar-2", utc(2026, 3, 9, 16), 15)) == []
    downgrade = subscription_change(subscription_id=subscription.pk, plan=starter, timing=ChangeTiming.PERIOD_END)
    assert (downgrade.preview.lines, downgrade.scheduled_change.effective_at) == ([], utc(2026, 3, 24, 9, 30))

    # --- 24 Mar 09:30: the third period [24 Mar 09:30, 24 Apr 09:30), now on Starter.
    #   usage of the Pro period that ended, at Pro's price: 65 GB ≤ 100 included → all free = 0.00
    #   (at Starter's price it would have been (65 − 10) × 0.08 = 4.40: the change takes effect after)
    #   Starter's fee 20.00;  VAT 20.00 × 19 % = 3.80;  total 23.80
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 26, 12))
    march = Bill(
        number="INV-2026-000003", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 3, 24, 9, 30), period_end_at=utc(2026, 4, 24, 9, 30),
        issued_at=utc(2026, 3, 24, 9, 30), due_on=date(2026, 4, 7), currency="EUR",
        lines=[
            Line("usage", "Cloud Hosting — Pro: Data transfer (usage)", utc(2026, 2, 24, 9, 30),
                 utc(2026, 3, 24, 9, 30), D(65), D("0.00")),
            Line("recurring", "Cloud Hosting — Starter (monthly)", utc(2026, 3, 24, 9, 30), utc(2026, 4, 24, 9, 30),
                 D(1), D("20.00")),
        ],
        subtotal=D("20.00"),
        taxes=[Tax(VAT, D(19), D("20.00"), D("3.80"))],
        tax_total=D("3.80"), total=D("23.80"), amount_paid=D(0), amount_due=D("23.80"),
    )  # fmt: skip
    assert bills_of(customer) == [january, february, march]
    _pay_by_transfer(customer, "23.80", reference="BRANDT-0003", received_at=utc(2026, 3, 26, 10))
    march = _paid(march, "23.80")

    # --- 1 Apr: 25 GB on Starter.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 2))
    assert _send_usage(customer, ("apr-1", utc(2026, 4, 1, 13), 25)) == []

    # --- 24 Apr 09:30: the fourth period [24 Apr 09:30, 24 May 09:30), a plain renewal.
    #   usage: (25 − 10 included) × 0.08 = 15 × 0.08 = 1.20
    #   subtotal 1.20 + 20.00 = 21.20;  VAT 21.20 × 19 % = 4.028 → 4.03;  total 25.23
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 4, 27))
    april = Bill(
        number="INV-2026-000004", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 4, 24, 9, 30), period_end_at=utc(2026, 5, 24, 9, 30),
        issued_at=utc(2026, 4, 24, 9, 30), due_on=date(2026, 5, 8), currency="EUR",
        lines=[
            Line("usage", "Cloud Hosting — Starter: Data transfer (usage)", utc(2026, 3, 24, 9, 30),
                 utc(2026, 4, 24, 9, 30), D(25), D("1.20")),
            Line("recurring", "Cloud Hosting — Starter (monthly)", utc(2026, 4, 24, 9, 30), utc(2026, 5, 24, 9, 30),
                 D(1), D("20.00")),
        ],
        subtotal=D("21.20"),
        taxes=[Tax(VAT, D(19), D("21.20"), D("4.03"))],
        tax_total=D("4.03"), total=D("25.23"), amount_paid=D(0), amount_due=D("25.23"),
    )  # fmt: skip
    assert bills_of(customer) == [january, february, march, april]
    _pay_by_transfer(customer, "25.23", reference="BRANDT-0004", received_at=utc(2026, 4, 27))
    april = _paid(april, "25.23")

    # --- 3 May: 42.5 GB; 6 May 12:00: the customer cancels now, with a credit for the unused time.
    # The period [24 Apr 09:30, 24 May 09:30) is 30 days = 2,592,000 s; from 6 May 12:00 to 24 May
    # 09:30 are 17 days 21 h 30 min = 1,546,200 s left: share 1,546,200 / 2,592,000 = 859 / 1,440.
    #   credit: 20.00 × 859/1,440 = 17,180/1,440 = 11.9305… → −11.93
    # The final invoice bills the usage of the last period, up to the cancellation:
    #   (42.5 − 10 included) × 0.08 = 32.5 × 0.08 = 2.60
    # and takes the credit off it, never below zero: −2.60 here, 11.93 − 2.60 = 9.33 left on the
    # customer's balance. Subtotal 2.60 − 2.60 = 0.00, VAT 0.00, total 0.00: settled at once.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 5, 6, 12))
    assert _send_usage(customer, ("may-1", utc(2026, 5, 3, 22), "42.5")) == []
    canceled = subscription_cancel_with_credit(subscription_id=subscription.pk, prorate=True)
    assert [line.amount for line in canceled.preview.lines] == [D("-11.93")]
    final = Bill(
        number="INV-2026-000005", status="paid", billing_reason="subscription_update",
        period_start_at=utc(2026, 4, 24, 9, 30), period_end_at=utc(2026, 5, 6, 12),
        issued_at=utc(2026, 5, 6, 12), due_on=date(2026, 5, 20), currency="EUR",
        lines=[
            Line("usage", "Cloud Hosting — Starter: Data transfer (usage)", utc(2026, 4, 24, 9, 30),
                 utc(2026, 5, 6, 12), D("42.5"), D("2.60")),
            Line("proration", "Unused time on Cloud Hosting — Starter ×1", utc(2026, 5, 6, 12),
                 utc(2026, 5, 24, 9, 30), D(1), D("-2.60")),
        ],
        subtotal=D("0.00"),
        taxes=[Tax(VAT, D(19), D("0.00"), D("0.00"))],
        tax_total=D("0.00"), total=D("0.00"), amount_paid=D(0), amount_due=D(0),
    )  # fmt: skip
    assert bills_of(customer) == [january, february, march, april, final]
    assert customer_balance(customer=customer).amount == D("9.33")

    # --- Nothing more is billed for the canceled subscription.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 6, 1))
    assert bills_of(customer) == [january, february, march, april, final]
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (SubscriptionStatus.CANCELED, utc(2026, 5, 6, 12))

    # --- 1 Jun 00:00: the customer comes back to Starter, without a new trial. Its first invoice
    # takes the 9.33 left on the balance off before tax (it is a credit for unused time):
    #   20.00 − 9.33 = 10.67;  VAT 10.67 × 19 % = 2.0273 → 2.03;  total 12.70
    comeback = subscription_start(customer=customer, plan=starter, trial_days=0)
    june = Bill(
        number="INV-2026-000006", status="open", billing_reason="subscription_cycle",
        period_start_at=utc(2026, 6, 1), period_end_at=utc(2026, 7, 1),
        issued_at=utc(2026, 6, 1), due_on=date(2026, 6, 15), currency="EUR",
        lines=[
            Line("recurring", "Cloud Hosting — Starter (monthly)", utc(2026, 6, 1), utc(2026, 7, 1), D(1), D("20.00")),
            Line("proration", "Unused time on Cloud Hosting — Starter ×1", utc(2026, 5, 6, 12),
                 utc(2026, 5, 24, 9, 30), D(1), D("-9.33")),
        ],
        subtotal=D("10.67"),
        taxes=[Tax(VAT, D(19), D("10.67"), D("2.03"))],
        tax_total=D("2.03"), total=D("12.70"), amount_paid=D(0), amount_due=D("12.70"),
    )  # fmt: skip
    assert bills_of(customer) == [january, february, march, april, final, june]
    assert customer_balance(customer=customer).amount == D(0)
    assert comeback.status == SubscriptionStatus.ACTIVE


def _paid(bill: Bill, amount: str) -> Bill:
    """The same bill once a transfer of `amount` paid it in full."""
    return replace(bill, status="paid", amount_paid=D(amount), amount_due=D(0))


def test_usage_before_a_mid_period_upgrade_is_billed_at_the_price_it_was_used_at():
    tax_rate_create(name=VAT, percentage=D("19"), country="DE")
    # No lateness window: usage for an invoiced period is refused (late usage: test_late_usage.py).
    billable_metric_create(
        code="transfer_gb", name="Data transfer", aggregation=MetricAggregation.SUM, field_name="gb",
        lateness_window_days=0,
    )  # fmt: skip
    hosting = product_create(code="hosting", name="Cloud Hosting")
    # No included units on Starter, so that the amount owed for its usage does not depend on how
    # included units would be shared out over a partial period.
    starter = _plan(hosting, code="starter", name="Starter", fee="20.00", gb_price="0.08", gb_included=0)
    pro = _plan(hosting, code="pro", name="Pro", fee="50.00", gb_price="0.05", gb_included=100)
    test_clock = simulated_clock_create(name="Usage across an upgrade", frozen_at=utc(2026, 1, 1))
    customer = customer_create(
        name="Brandt Analytik GmbH", email="billing@brandt.example", country="DE", currency="EUR",
        external_id="brandt", test_clock=test_clock,
    )  # fmt: skip
    subscription = subscription_start(customer=customer, plan=starter)  # January billed: 20.00 + 3.80

    # 5 Jan: 50 GB on Starter. 10 Jan 00:00: upgrade to Pro now; nothing more is used in January.
    # 22 of January's 31 days are left: credit 20.00 × 22/31 = 14.193… → −14.19,
    # charge 50.00 × 22/31 = 35.483… → +35.48.
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 10))
    assert _send_usage(customer, ("jan-1", utc(2026, 1, 5), 50)) == []
    subscription_change(subscription_id=subscription.pk, plan=pro)

    # 1 Feb: the 50 GB were used on Starter, at 0.08 per GB: 50 × 0.08 = 4.00 (Pro's price would make
    # them free: 50 ≤ 100 included).
    #   subtotal −14.19 + 35.48 + 4.00 + 50.00 = 75.29;  VAT 75.29 × 19 % = 14.3051 → 14.31;  total 89.60
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 2))
    february = bills_of(customer)[1]
    assert [(line.kind, line.quantity, line.amount) for line in february.lines if line.kind != "recurring"] == [
        ("proration", D(1), D("-14.19")),
        ("proration", D(1), D("35.48")),
        ("usage", D(50), D("4.00")),
    ]
    assert (february.subtotal, february.tax_total, february.total) == (D("75.29"), D("14.31"), D("89.60"))
