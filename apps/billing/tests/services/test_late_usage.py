"""Late usage, trial usage and corrections on the next invoice (apps/billing/services/late_usage.py).

The plan: 10.00 a month, plus data transfer priced in graduated tiers — the first 100 GB at 0.10,
101–500 GB at 0.05, above at 0.02 (Stripe's "graduated" model: each unit at the price of the tier it
falls in). The metric accepts events up to 3 days after a period ends (its default window).
"""

from decimal import Decimal as D

import pytest
from django.template.loader import render_to_string

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, ProductFactory, add_charge
from apps.core.errors import ValidationFailed
from apps.invoices.models import Invoice, InvoiceLine
from apps.invoices.services.pdf import invoice_pdf_context
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_cancel
from apps.usage.corrections import usage_event_replace, usage_event_void
from apps.usage.models import UsageEventChange, UsageRollup
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

TITLE = "CDN — Edge: Data transfer"


@pytest.fixture
def plan():
    billable_metric_create(code="transfer_gb", name="Data transfer", aggregation="sum", field_name="gb")
    plan = PlanFactory(product=ProductFactory(name="CDN"), name="Edge", prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform", price_model="flat", amount=D("10.00"))
    add_charge(
        version, name="Data transfer", kind="usage", metric_code="transfer_gb", price_model="graduated", amount=0,
        tiers=[("100", "0.10", "0"), ("500", "0.05", "0"), (None, "0.02", "0")],
    )  # fmt: skip
    return plan


@pytest.fixture
def subscription(plan):
    customer = CustomerFactory(currency="USD", external_id="acme")
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 10, 1))


def _send(now, *events):
    """(transaction id, moment, GB) events, as the usage API sends them; returns the result."""
    return usage_events_ingest(
        events=[
            {"transaction_id": transaction_id, "external_customer_id": "acme", "metric_code": "transfer_gb",
             "timestamp": moment.isoformat(), "properties": {"gb": gb}}
            for transaction_id, moment, gb in events
        ],
        now=now,
    )  # fmt: skip


def _usage_lines(invoice):
    return [
        (line.description, line.period_start_at, line.period_end_at, line.quantity, line.amount.amount)
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ]


def _invoice_at(subscription, start):
    return Invoice.objects.get(subscription=subscription, period_start_at=start)


def test_an_event_two_days_late_is_billed_on_the_next_invoice_as_the_delta_of_the_graduated_tiers(subscription):
    assert _send(utc(2026, 10, 15), ("oct-1", utc(2026, 10, 15), "90")).accepted == 1
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    november = _invoice_at(subscription, utc(2026, 11, 1))
    assert _usage_lines(november) == [
        (f"{TITLE} (usage)", utc(2026, 10, 1), utc(2026, 11, 1), D(90), D("9.00"))  # 90 × 0.10
    ]

    # 3 Nov: the device comes back online and sends 30 GB used on 31 Oct — two days after the period ended.
    late = _send(utc(2026, 11, 3), ("oct-late", utc(2026, 10, 31, 23), "30"))
    assert (late.accepted, late.rejected) == (1, [])
    change = UsageEventChange.objects.get()
    assert (change.kind, change.transaction_id, change.billed_period_end_at, change.settled_at) == (
        "late", "oct-late", utc(2026, 11, 1), None,
    )  # fmt: skip

    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    december = _invoice_at(subscription, utc(2026, 12, 1))
    # October in full now: 100 × 0.10 + 20 × 0.05 = 11.00; billed before: 9.00; the line is the 2.00
    # difference — not 30 × 0.10 = 3.00, the late units priced alone.
    assert _usage_lines(december) == [
        (f"{TITLE} (late usage, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(30), D("2.00")),
    ]
    line = december.lines.get(kind="usage")
    assert line.explanation == [
        "Usage of 1–31 Oct changed after it was invoiced: 1 event received late.",
        "Quantity for the whole period: 120 now, 90 billed before.",
        "Data transfer: 120 (Sum of a property)",
        "Units 1–100: 100 × 0.10 USD",
        "Units 101–120: 20 × 0.05 USD",
        "The whole period at its prices: 11.00 USD; already billed: 9.00 USD; difference: 2.00 USD.",
    ]
    assert december.total.amount == D("12.00")  # 10.00 fee + 2.00 late usage (no tax set up)
    # The bill shows the line and why (the PDF's HTML; the portal shows the same lines).
    html = render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(december))
    assert "Data transfer (late usage, 1–31 Oct)" in html
    assert "already billed: 9.00 USD; difference: 2.00 USD." in html
    assert UsageEventChange.objects.get().settled_at == utc(2026, 12, 1, 0, 30)

    # Never twice: January's invoice has no late line for October.
    bill_due_subscriptions(now=utc(2027, 1, 1, 0, 30))
    assert _usage_lines(_invoice_at(subscription, utc(2027, 1, 1))) == []


def test_an_event_five_days_late_is_refused_with_the_window_named(subscription):
    _send(utc(2026, 10, 15), ("oct-1", utc(2026, 10, 15), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))

    result = _send(utc(2026, 11, 6), ("oct-late", utc(2026, 10, 31, 23), "30"))

    assert result.accepted == 0
    assert [(r.index, r.code, r.reason) for r in result.rejected] == [
        (
            0,
            "late_beyond_window",
            "Usage of 'transfer_gb' dated 2026-10-31T23:00:00Z belongs to a period already invoiced (ending "
            "2026-11-01T00:00:00Z); the metric accepts late events for 3 days after a period ends, until "
            "2026-11-04T00:00:00Z.",
        )
    ]
    assert not UsageEventChange.objects.exists()


def test_a_late_event_sent_twice_is_billed_once(subscription):
    _send(utc(2026, 10, 15), ("oct-1", utc(2026, 10, 15), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))

    first = _send(utc(2026, 11, 2), ("oct-late", utc(2026, 10, 31, 23), "30"))
    again = _send(utc(2026, 11, 3), ("oct-late", utc(2026, 10, 31, 23), "30"))
    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))
    bill_due_subscriptions(now=utc(2027, 1, 1, 0, 30))

    late_lines = InvoiceLine.objects.filter(description__contains="late usage")
    assert [(line.quantity, line.amount.amount) for line in late_lines] == [(D(30), D("2.00"))]
    assert UsageEventChange.objects.count() == 1


def test_a_late_event_in_a_period_with_no_usage_billed_gets_a_line_of_its_own(subscription):
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))  # October: no usage, no usage line
    _send(utc(2026, 11, 2), ("oct-late", utc(2026, 10, 31, 23), "150"))
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    # 100 × 0.10 + 50 × 0.05 = 12.50, nothing billed before.
    assert _usage_lines(_invoice_at(subscription, utc(2026, 12, 1))) == [
        (f"{TITLE} (late usage, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(150), D("12.50")),
    ]


# --- corrections -----------------------------------------------------------------------------------


def test_void_and_replace_while_the_period_is_open_change_the_rollups_and_the_preview(subscription):
    _send(utc(2026, 10, 16), ("a", utc(2026, 10, 15, 9), "80"), ("b", utc(2026, 10, 15, 9, 30), "40"))
    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 10, 20))
    assert [(line.kind, line.amount) for line in preview.lines] == [("usage", D("11.00")), ("recurring", D("10.00"))]

    usage_event_void(transaction_id="b", now=utc(2026, 10, 20), actor="test", reason="duplicate reading")

    assert list(UsageRollup.objects.values_list("hour", "event_count", "value_sum", "value_max")) == [
        (utc(2026, 10, 15, 9), 1, D(80), D(80))
    ]
    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 10, 20))
    assert [(line.kind, line.amount) for line in preview.lines] == [("usage", D("8.00")), ("recurring", D("10.00"))]

    # Replaced: 80 GB at 09:00 becomes 150 GB at 11:00 — the 09:00 hour empties, the 11:00 one fills.
    change = usage_event_replace(
        transaction_id="a", timestamp="2026-10-16T11:00:00Z", properties={"gb": "150"}, now=utc(2026, 10, 20)
    )
    assert list(UsageRollup.objects.values_list("hour", "event_count", "value_sum")) == [
        (utc(2026, 10, 16, 11), 1, D(150))
    ]
    assert (change.kind, change.billed_period_end_at, change.before["value"], change.after["value"]) == (
        "replace", None, "80", "150",
    )  # fmt: skip
    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 10, 20))
    assert [(line.kind, line.amount) for line in preview.lines] == [("usage", D("12.50")), ("recurring", D("10.00"))]

    # A voided transaction id stays taken; the audit trail keeps both changes.
    assert _send(utc(2026, 10, 21), ("b", utc(2026, 10, 15, 9, 30), "40")).duplicates == 1
    assert list(UsageEventChange.objects.order_by("id").values_list("kind", "transaction_id", "actor", "reason")) == [
        ("void", "b", "test", "duplicate reading"),
        ("replace", "a", "", ""),
    ]
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    assert _usage_lines(_invoice_at(subscription, utc(2026, 11, 1))) == [
        (f"{TITLE} (usage)", utc(2026, 10, 1), utc(2026, 11, 1), D(150), D("12.50"))
    ]


def test_a_void_after_invoicing_is_credited_on_the_next_invoice(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"), ("b", utc(2026, 10, 20), "30"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    assert _usage_lines(_invoice_at(subscription, utc(2026, 11, 1)))[0][3:] == (D(120), D("11.00"))

    change = usage_event_void(transaction_id="b", now=utc(2026, 11, 2))
    assert change.billed_period_end_at == utc(2026, 11, 1)
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    december = _invoice_at(subscription, utc(2026, 12, 1))
    # October is now 90 GB = 9.00; 11.00 was billed: a credit of 2.00.
    assert _usage_lines(december) == [
        (f"{TITLE} (usage correction, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(-30), D("-2.00")),
    ]
    assert december.lines.get(kind="usage").explanation[0] == (
        "Usage of 1–31 Oct changed after it was invoiced: 1 event voided."
    )
    assert december.total.amount == D("8.00")


def test_a_replace_after_invoicing_bills_the_difference_and_a_late_correction_is_refused(subscription):
    _send(utc(2026, 10, 15), ("a", utc(2026, 10, 10), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))

    usage_event_replace(
        transaction_id="a", timestamp="2026-10-10T00:00:00Z", properties={"gb": "600"}, now=utc(2026, 11, 3)
    )
    with pytest.raises(ValidationFailed) as refused:
        usage_event_void(transaction_id="a", now=utc(2026, 11, 4, 0, 0, 1))
    assert refused.value.code == "late_beyond_window"
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    # 600 GB: 100 × 0.10 + 400 × 0.05 + 100 × 0.02 = 10 + 20 + 2 = 32.00; 9.00 billed: 23.00 more.
    assert _usage_lines(_invoice_at(subscription, utc(2026, 12, 1))) == [
        (f"{TITLE} (usage correction, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(510), D("23.00")),
    ]


# --- trial usage ------------------------------------------------------------------------------------


def _trial_subscription(plan, rule):
    plan.trial_days = 14
    plan.trial_usage = rule
    plan.save()
    customer = CustomerFactory(currency="USD", external_id="acme")
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 10, 1))


def test_trial_usage_billed_after_the_trial_goes_on_the_first_invoice_after_it(plan):
    subscription = _trial_subscription(plan, "billed_after_trial")
    _send(utc(2026, 10, 5), ("t-1", utc(2026, 10, 5), "120"))
    bill_due_subscriptions(now=utc(2026, 10, 15, 0, 30))

    first = _invoice_at(subscription, utc(2026, 10, 15))
    assert _usage_lines(first) == [
        (f"{TITLE} (usage during the trial, 1–14 Oct)", utc(2026, 10, 1), utc(2026, 10, 15), D(120), D("11.00")),
    ]
    assert first.lines.get(kind="usage").explanation[-1] == (
        "Usage during the trial, billed on the first invoice after it under this plan."
    )
    assert first.total.amount == D("21.00")

    # A trial event arriving a day after the trial: billed on the next invoice, tiers applied.
    assert _send(utc(2026, 10, 16), ("t-late", utc(2026, 10, 14, 22), "20")).accepted == 1
    bill_due_subscriptions(now=utc(2026, 11, 15, 0, 30))
    # 140 GB: 100 × 0.10 + 40 × 0.05 = 12.00; 11.00 billed: 1.00.
    assert (f"{TITLE} (late usage, 1–14 Oct)", utc(2026, 10, 1), utc(2026, 10, 15), D(20), D("1.00")) in _usage_lines(
        _invoice_at(subscription, utc(2026, 11, 15))
    )


def test_free_trial_usage_is_accepted_and_shown_at_zero(plan):
    subscription = _trial_subscription(plan, "free")
    _send(utc(2026, 10, 5), ("t-1", utc(2026, 10, 5), "120"))
    bill_due_subscriptions(now=utc(2026, 10, 15, 0, 30))

    first = _invoice_at(subscription, utc(2026, 10, 15))
    assert _usage_lines(first) == [
        (f"{TITLE} (usage during the trial, 1–14 Oct, free)", utc(2026, 10, 1), utc(2026, 10, 15), D(120), D(0)),
    ]
    assert first.lines.get(kind="usage").explanation[-1] == (
        "Usage during the trial is free under this plan (at its prices: 11.00 USD)."
    )
    assert first.total.amount == D("10.00")

    # Late trial usage is free too: shown at zero, never billed.
    _send(utc(2026, 10, 16), ("t-late", utc(2026, 10, 14, 22), "20"))
    bill_due_subscriptions(now=utc(2026, 11, 15, 0, 30))
    assert (f"{TITLE} (late usage, 1–14 Oct)", utc(2026, 10, 1), utc(2026, 10, 15), D(20), D(0)) in _usage_lines(
        _invoice_at(subscription, utc(2026, 11, 15))
    )


def test_late_usage_for_a_subscription_that_has_ended_is_refused(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"))
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 10, 20))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    subscription.refresh_from_db()
    assert subscription.next_billing_at is None  # nothing more to bill

    result = _send(utc(2026, 11, 2), ("oct-late", utc(2026, 10, 31, 23), "30"))

    assert [(r.code, r.reason) for r in result.rejected] == [
        (
            "late_beyond_window",
            "Usage of 'transfer_gb' dated 2026-10-31T23:00:00Z belongs to a period already invoiced (ending "
            "2026-11-01T00:00:00Z), and the subscription has ended: no invoice would carry it.",
        )
    ]


def test_late_usage_of_a_subscription_canceled_at_period_end_goes_on_its_final_invoice(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    _send(utc(2026, 11, 2), ("oct-late", utc(2026, 10, 31, 23), "30"), ("nov-1", utc(2026, 11, 1, 12), "10"))
    subscription_cancel(subscription_id=subscription.pk, at_period_end=True, now=utc(2026, 11, 2))

    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    final = Invoice.objects.get(subscription=subscription, billing_reason="subscription_update")
    assert _usage_lines(final) == [
        (f"{TITLE} (usage)", utc(2026, 11, 1), utc(2026, 12, 1), D(10), D("1.00")),
        (f"{TITLE} (late usage, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(30), D("2.00")),
    ]


def test_the_late_line_is_written_in_the_language_of_the_customers_bills(plan):
    customer = CustomerFactory(currency="USD", external_id="acme", preferred_language="zh-hans")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 10, 1))
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    _send(utc(2026, 11, 2), ("oct-late", utc(2026, 10, 31, 23), "30"))
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    line = _invoice_at(subscription, utc(2026, 12, 1)).lines.get(kind="usage")
    assert line.description.startswith(f"{TITLE}（迟到用量，1–31 ")
    assert line.explanation[0].endswith("的用量在开票后发生变化：1 个事件迟到。")
    assert line.amount.amount == D("2.00")


def test_a_late_event_and_a_correction_in_one_period_make_one_line(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"), ("b", utc(2026, 10, 20), "30"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))  # 120 GB: 11.00

    _send(utc(2026, 11, 2), ("late", utc(2026, 10, 31, 22), "100"))
    usage_event_void(transaction_id="b", now=utc(2026, 11, 2))
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    # October now 190 GB: 100 × 0.10 + 90 × 0.05 = 14.50; 11.00 billed: 3.50.
    line = _invoice_at(subscription, utc(2026, 12, 1)).lines.get(kind="usage")
    assert (line.description, line.quantity, line.amount.amount) == (
        f"{TITLE} (late usage and corrections, 1–31 Oct)", D(70), D("3.50"),
    )  # fmt: skip
    assert (
        line.explanation[0] == "Usage of 1–31 Oct changed after it was invoiced: 1 event received late, 1 event voided."
    )


def test_an_event_moved_out_of_an_invoiced_period_is_credited_there_and_billed_in_the_open_one(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))

    change = usage_event_replace(
        transaction_id="a", timestamp="2026-11-01T12:00:00Z", properties={"gb": "90"}, now=utc(2026, 11, 2)
    )
    assert (change.previous_occurred_at, change.occurred_at, change.billed_period_end_at) == (
        utc(2026, 10, 10), utc(2026, 11, 1, 12), utc(2026, 11, 1),
    )  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 12, 1, 0, 30))

    assert _usage_lines(_invoice_at(subscription, utc(2026, 12, 1))) == [
        (f"{TITLE} (usage)", utc(2026, 11, 1), utc(2026, 12, 1), D(90), D("9.00")),
        (f"{TITLE} (usage correction, 1–31 Oct)", utc(2026, 10, 1), utc(2026, 11, 1), D(-90), D("-9.00")),
    ]


def test_the_upcoming_invoice_shows_the_late_line_without_settling_it(subscription):
    _send(utc(2026, 10, 25), ("a", utc(2026, 10, 10), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    _send(utc(2026, 11, 2), ("late", utc(2026, 10, 31, 22), "30"))

    preview = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 11, 10))

    assert [(line.description, line.amount) for line in preview.lines if line.kind == "usage"] == [
        (f"{TITLE} (late usage, 1–31 Oct)", D("2.00")),
    ]
    assert UsageEventChange.objects.get().settled_at is None
