"""Progressive billing (docs/billing-rules.md, "Progressive billing"): a period's usage is invoiced when
its amount to date reaches a threshold; the period's final invoice bills the whole usage and deducts
the interim invoices. Every amount is computed by hand in the comments.

The worked example: 100.00 USD a month in advance, API calls graduated — the first 800 calls at 1.00,
every call above at 0.50 — and an interim invoice every 500.00 USD of usage."""

from datetime import timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_cancel,
    subscription_change,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.billing.services.progressive import (
    progressive_evaluate_customer,
    progressive_evaluation_request,
    subscription_progressive_evaluate,
)
from apps.billing.tests.services.progressive_usage import send_calls
from apps.catalog.progressive import ThresholdSchedule
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    TierInput,
    billable_metric_create,
    plan_create,
    plan_version_progressive_billing_set,
)
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import InvalidTransition, NotEditable, ValidationFailed
from apps.invoices.constants import BillingReason
from apps.invoices.models import Invoice, ProgressiveCrossing
from apps.invoices.services.lifecycle import invoice_void
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_progressive_billing_set
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal
THRESHOLD = BillingReason.SUBSCRIPTION_THRESHOLD


@pytest.fixture(autouse=True)
def metrics():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")


FEE = ChargeInput(name="Platform", price_model="flat", prices=[PriceInput(currency="USD", amount=D("100.00"))])
CALLS = ChargeInput(
    name="API calls",
    kind="usage",
    metric_code="api_calls",
    price_model="graduated",
    prices=[
        PriceInput(
            currency="USD",
            tiers=[TierInput(up_to=D(800), unit_amount=D("1.00")), TierInput(up_to=None, unit_amount=D("0.50"))],
        )
    ],
)


def _plan(*, every: str | None = "500", amounts=(), code: str = "metered", charges=(FEE, CALLS)):
    plan = plan_create(product=ProductFactory(name="Cloud"), code=code, name=code.title(), charges=list(charges))
    if every is not None or amounts:
        plan_version_progressive_billing_set(
            version=plan.versions.get(), currency="USD", amounts=list(amounts), every=every
        )
    return plan


def _subscribe(plan, external_id: str = "acme"):
    customer = CustomerFactory(currency="USD", external_id=external_id)
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))


def _evaluate(subscription, day: int):
    return subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, day, 1))


def _lines(invoice):
    return [(line.kind, line.description, line.amount.amount) for line in invoice.lines.order_by("position")]


def _interims(subscription):
    return list(Invoice.objects.filter(subscription=subscription, billing_reason=THRESHOLD).order_by("id"))


def _may(subscription):
    return Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))


# --- the schedule --------------------------------------------------------------------------------------


def test_the_thresholds_of_a_schedule_are_the_fixed_ones_then_every_step_after_the_highest():
    schedule = ThresholdSchedule.of(["300", "700"], D("500"))  # 300, 700, 1200, 1700, …
    assert schedule.highest_reached(D("299.99")) is None
    assert schedule.highest_reached(D("300")) == D("300")  # at or above (Stripe's amount_gte)
    assert schedule.highest_reached(D("1199.99")) == D("700")
    assert schedule.highest_reached(D("1750")) == D("1700")
    assert schedule.reached_between(D("300"), D("1750")) == [D("700"), D("1200"), D("1700")]
    assert ThresholdSchedule.of([], D("500")).highest_reached(D("1050")) == D("1000")
    assert ThresholdSchedule.of(["250"], None).highest_reached(D("10000")) == D("250")


# --- the worked example --------------------------------------------------------------------------------


def test_interim_invoices_and_the_final_invoice_add_up_to_the_single_invoice_with_tiers_straddling_thresholds():
    subscription = _subscribe(_plan())
    plain = _subscribe(_plan(every=None, code="plain"), "plain")  # the same usage, no progressive billing
    assert Invoice.objects.filter(subscription=subscription).count() == 1  # April's fee, 100.00

    # 10 Apr: 600 calls, 600 × 1.00 = 600.00 ≥ 500.00 → interim invoice 1 bills 600.00.
    send_calls(subscription, 600, day=10)
    send_calls(plain, 600, day=10)
    first = _evaluate(subscription, 10)
    assert first.billing_reason == THRESHOLD
    assert first.status == "open" and first.number
    assert (first.period_start_at, first.period_end_at) == (utc(2026, 4, 1), utc(2026, 4, 10, 1))
    assert _lines(first) == [("usage", "Cloud — Metered: API calls (usage)", D("600.00"))]
    assert first.total == Money("600.00", "USD")  # no fee on an interim invoice
    line = first.lines.get()
    assert (line.period_start_at, line.period_end_at) == (utc(2026, 4, 1), utc(2026, 4, 10, 1))
    assert any("usage of the period to date" in sentence for sentence in line.explanation)

    # Evaluating again bills nothing: the crossing of 500.00 is invoiced once.
    assert _evaluate(subscription, 10) is None

    # 15 Apr: 700 more, 1,300 calls: 800 × 1.00 + 500 × 0.50 = 1,050.00 ≥ 1,000.00 (in the second tier)
    # → interim invoice 2: 1,050.00 less the 600.00 already billed = 450.00.
    send_calls(subscription, 700, day=15)
    send_calls(plain, 700, day=15)
    second = _evaluate(subscription, 15)
    assert _lines(second) == [
        ("usage", "Cloud — Metered: API calls (usage)", D("1050.00")),
        ("progressive", f"Usage already billed on {first.number} (progressive billing)", D("-600.00")),
    ]
    assert second.total == Money("450.00", "USD")

    # 20 Apr: 50 more, 1,350 calls: 800.00 + 550 × 0.50 = 1,075.00 < 1,500.00: nothing.
    send_calls(subscription, 50, day=20)
    send_calls(plain, 50, day=20)
    assert _evaluate(subscription, 20) is None

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    # The final invoice bills the whole period's usage (1,075.00) and deducts the interim invoices.
    may = _may(subscription)
    assert _lines(may) == [
        ("usage", "Cloud — Metered: API calls (usage)", D("1075.00")),
        ("progressive", f"Usage already billed on {first.number} (progressive billing)", D("-600.00")),
        ("progressive", f"Usage already billed on {second.number} (progressive billing)", D("-450.00")),
        ("recurring", "Cloud — Metered: Platform (monthly)", D("100.00")),
    ]
    assert may.total == Money("125.00", "USD")
    # Without progressive billing the same usage makes one invoice of 1,075.00 + 100.00 = 1,175.00:
    # 600.00 + 450.00 + 125.00 = 1,175.00, to the cent.
    assert _may(plain).total == Money("1175.00", "USD")
    assert first.total + second.total + may.total == _may(plain).total
    assert set(ProgressiveCrossing.objects.values_list("deducted_by", flat=True)) == {may.pk}
    subscription.refresh_from_db()
    assert subscription.interim_invoices_pending is False


def test_two_thresholds_crossed_by_one_batch_make_one_interim_invoice():
    subscription = _subscribe(_plan(every="250"))
    send_calls(subscription, 800, day=10)  # 800.00: 250, 500 and 750 reached at once

    invoice = _evaluate(subscription, 10)

    assert invoice.total == Money("800.00", "USD")
    crossing = ProgressiveCrossing.objects.get()
    assert (crossing.threshold, crossing.usage_amount, crossing.billed_amount) == (D(750), D(800), D(800))
    assert any("250.00 USD, 500.00 USD, 750.00 USD" in sentence for sentence in invoice.lines.get().explanation)
    assert _evaluate(subscription, 11) is None


def test_fixed_thresholds_bill_once_each_and_nothing_above_the_highest():
    subscription = _subscribe(_plan(every=None, amounts=["200", "900"]))
    send_calls(subscription, 250, day=5)
    assert _evaluate(subscription, 5).total == Money("250.00", "USD")
    send_calls(subscription, 800, day=8)  # 1,050 calls: 800.00 + 125.00 = 925.00 ≥ 900.00
    assert _evaluate(subscription, 8).total == Money("675.00", "USD")  # 925.00 − 250.00
    send_calls(subscription, 2000, day=9)
    assert _evaluate(subscription, 9) is None  # no threshold above 900.00


def test_no_usage_after_the_interim_invoice_leaves_only_the_fee_on_the_final_invoice():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)
    interim = _evaluate(subscription, 10)

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    may = _may(subscription)
    assert _lines(may) == [
        ("usage", "Cloud — Metered: API calls (usage)", D("600.00")),
        ("progressive", f"Usage already billed on {interim.number} (progressive billing)", D("-600.00")),
        ("recurring", "Cloud — Metered: Platform (monthly)", D("100.00")),
    ]
    assert may.total == Money("100.00", "USD")


def test_below_the_first_threshold_nothing_is_invoiced_and_the_final_invoice_is_the_usual_one():
    subscription = _subscribe(_plan())
    send_calls(subscription, 499, day=10)
    assert _evaluate(subscription, 10) is None
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))
    assert _may(subscription).total == Money("599.00", "USD")  # 499.00 + 100.00
    assert not _interims(subscription)


def test_a_voided_interim_invoice_is_not_deducted_and_its_usage_is_billed_at_the_end():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)
    interim = _evaluate(subscription, 10)
    invoice_void(invoice_id=interim.pk, now=utc(2026, 4, 11))

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    may = _may(subscription)
    assert may.total == Money("700.00", "USD")  # 600.00 usage + 100.00 fee, nothing deducted
    assert [kind for kind, _, _ in _lines(may)] == ["usage", "recurring"]


def test_an_interim_invoice_deducted_by_the_final_invoice_cannot_be_voided_any_more():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)
    interim = _evaluate(subscription, 10)
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    with pytest.raises(InvalidTransition):
        invoice_void(invoice_id=interim.pk, now=utc(2026, 5, 2))
    interim.refresh_from_db()
    assert interim.status == "open"


def test_the_upcoming_invoice_deducts_the_interim_invoices():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)
    _evaluate(subscription, 10)

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 12))

    # 600.00 usage − 600.00 already billed + May's fee 100.00
    assert upcoming.total == D("100.00")
    assert [line.kind for line in upcoming.lines] == ["usage", "progressive", "recurring"]


def test_the_bulk_path_leaves_a_subscription_with_interim_invoices_to_the_one_by_one_path():
    plan = _plan()
    with_interim, without = _subscribe(plan, "with"), _subscribe(plan, "without")
    send_calls(with_interim, 600, day=10)
    send_calls(without, 100, day=10)
    _evaluate(with_interim, 10)
    _evaluate(without, 10)

    outcome = billing_chunk_bill(subscription_ids=[with_interim.pk, without.pk], now=utc(2026, 5, 1, 0, 5))

    assert outcome.one_by_one_ids == [with_interim.pk]
    assert _may(without).total == Money("200.00", "USD")  # 100.00 usage + 100.00 fee, in bulk


def test_a_plan_change_mid_period_bills_each_stretch_at_its_prices_and_deducts_the_interim_invoice():
    plan = _plan()
    cheaper = _plan(
        code="cheaper",
        charges=(
            FEE,
            ChargeInput(
                name="API calls",
                kind="usage",
                metric_code="api_calls",
                price_model="per_unit",
                prices=[PriceInput(currency="USD", amount=D("0.25"))],
            ),  # fmt: skip
        ),
    )
    subscription = _subscribe(plan)
    send_calls(subscription, 600, day=10)
    interim = _evaluate(subscription, 10)  # 600.00
    subscription_change(subscription_id=subscription.pk, plan=cheaper, proration="none", now=utc(2026, 4, 16))
    send_calls(subscription, 1000, day=20)  # on the cheaper plan: 1,000 × 0.25 = 250.00
    # Usage to date: 600.00 (first stretch) + 250.00 = 850.00 < 1,000.00: nothing more.
    assert _evaluate(subscription, 20) is None

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    may = _may(subscription)
    amounts = [(kind, amount) for kind, _, amount in _lines(may)]
    assert amounts == [
        ("usage", D("600.00")),  # [1 Apr, 16 Apr) at the first plan's tiers
        ("usage", D("250.00")),  # [16 Apr, 1 May) at 0.25
        ("progressive", D("-600.00")),
        ("recurring", D("100.00")),
    ]
    assert may.total == Money("350.00", "USD")
    assert interim.total + may.total == Money("950.00", "USD")


def test_canceling_now_deducts_the_interim_invoices_on_the_final_invoice():
    subscription = _subscribe(_plan(charges=(CALLS,)))
    send_calls(subscription, 700, day=10)
    interim = _evaluate(subscription, 10)  # 700.00
    send_calls(subscription, 200, day=12)  # 900 calls: 800.00 + 50.00 = 850.00

    subscription_cancel(subscription_id=subscription.pk, when="now", now=utc(2026, 4, 13))

    final = Invoice.objects.filter(subscription=subscription).exclude(pk=interim.pk).get()
    assert [(kind, amount) for kind, _, amount in _lines(final)] == [
        ("usage", D("850.00")),
        ("progressive", D("-700.00")),
    ]
    assert final.total == Money("150.00", "USD")


def test_subscription_thresholds_replace_the_plan_versions_and_empty_ones_turn_it_off():
    plan = _plan()
    own, off = _subscribe(plan, "own"), _subscribe(plan, "off")
    subscription_progressive_billing_set(subscription_id=own.pk, amounts=["100"], every=None, now=utc(2026, 4, 2))
    subscription_progressive_billing_set(subscription_id=off.pk, amounts=[], every=None, now=utc(2026, 4, 2))
    send_calls(own, 150, day=10)
    send_calls(off, 900, day=10)

    assert _evaluate(own, 10).total == Money("150.00", "USD")
    assert _evaluate(off, 10) is None


def test_bad_thresholds_are_refused_with_field_errors_and_change_nothing():
    plan = _plan(every=None)
    version = plan.versions.get()
    with pytest.raises(ValidationFailed) as refused:
        plan_version_progressive_billing_set(version=version, currency="USD", amounts=["-5"], every="0.001")
    assert set(refused.value.fields) == {"thresholds", "every"}
    with pytest.raises(ValidationFailed) as refused:
        plan_version_progressive_billing_set(version=version, currency="EUR", amounts=["5"])
    assert set(refused.value.fields) == {"currency"}
    assert not version.progressive_billing.exists()
    subscription = _subscribe(plan)
    with pytest.raises(NotEditable):  # part of the version's terms, like its prices
        plan_version_progressive_billing_set(version=version, currency="USD", amounts=["5"])
    with pytest.raises(ValidationFailed) as refused:
        subscription_progressive_billing_set(subscription_id=subscription.pk, amounts="500", every=None)
    assert set(refused.value.fields) == {"thresholds"}
    assert not hasattr(Subscription.objects.get(pk=subscription.pk), "progressive_billing_cache")


def test_usage_ingestion_asks_for_one_debounced_evaluation_of_customers_with_progressive_billing(
    django_capture_on_commit_callbacks, settings
):
    from django.core.cache import cache

    cache.clear()
    subscription = _subscribe(_plan())
    other = _subscribe(_plan(every=None, code="plain"), "other")
    assert progressive_evaluation_request(customer_ids=[subscription.customer_id, other.customer_id]) == [
        subscription.customer_id
    ]
    # Marked: a second batch within the delay asks nothing.
    assert progressive_evaluation_request(customer_ids=[subscription.customer_id]) == []
    # The task's evaluation clears the mark and bills what crossed.
    send_calls(subscription, 600, day=10)
    assert [invoice.total for invoice in progressive_evaluate_customer(
        customer_id=subscription.customer_id, now=utc(2026, 4, 10, 1)
    )] == [Money("600.00", "USD")]  # fmt: skip
    assert progressive_evaluation_request(customer_ids=[subscription.customer_id]) == [subscription.customer_id]


def test_a_period_that_has_ended_is_left_to_its_renewal():
    subscription = _subscribe(_plan())
    send_calls(subscription, 600, day=10)
    assert subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 5, 1, 0, 1)) is None
    assert subscription_progressive_evaluate(
        subscription_id=subscription.pk, now=utc(2026, 4, 30) + timedelta(hours=23)
    ).total == Money("600.00", "USD")


def test_late_usage_after_the_final_invoice_is_billed_against_the_whole_period_not_the_interim_invoices():
    subscription = _subscribe(_plan())
    plain = _subscribe(_plan(every=None, code="plain"), "plain")
    for each in (subscription, plain):
        send_calls(each, 600, day=10)
    _evaluate(subscription, 10)  # 600.00
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))  # final: 600.00 − 600.00 + 100.00

    # 2 May: 300 calls of 30 April arrive late (within the metric's lateness window).
    for each in (subscription, plain):
        result = usage_events_ingest(
            events=[
                {"transaction_id": f"{each.pk}-late", "external_customer_id": each.customer.external_id,
                 "metric_code": "api_calls", "timestamp": utc(2026, 4, 30, 12).isoformat(),
                 "properties": {"calls": "300"}},
            ],
            now=utc(2026, 5, 2),
        )  # fmt: skip
        assert result.accepted == 1
    bill_due_subscriptions(now=utc(2026, 6, 1, 0, 5))

    # April's 900 calls: 800.00 + 100 × 0.50 = 850.00; billed before 600.00 (the final invoice's usage line):
    # the late line is 250.00 on both, the interim invoice is not counted twice.
    june = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 6, 1))
    late = [amount for kind, description, amount in _lines(june) if "late usage" in description]
    assert late == [D("250.00")]
    total = sum((invoice.total for invoice in Invoice.objects.filter(subscription=subscription)), Money(0, "USD"))
    plain_total = sum((invoice.total for invoice in Invoice.objects.filter(subscription=plain)), Money(0, "USD"))
    assert total == plain_total
