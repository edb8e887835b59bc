"""Custom prices per subscription (docs/credits.md, "Custom prices per subscription"): a price agreed with
one customer replaces the price of one charge of its plan version on every invoice, preview and
proration, without a new plan version. Every amount is computed by hand in the comments."""

from datetime import timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_bill_due,
    subscription_change,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.services import ChargeInput, PriceInput, TierInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import NotFound, ValidationFailed
from apps.invoices.models import Invoice
from apps.subscriptions.constants import SubscriptionEventType
from apps.subscriptions.models import SubscriptionPriceOverride
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_price_override_remove, subscription_price_override_set
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def metrics():
    billable_metric_create(code="storage_gb", name="Storage", aggregation="sum", field_name="gb")
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")


SEATS = ChargeInput(name="Seats", price_model="per_unit", prices=[PriceInput(currency="USD", amount=D("10.00"))])
STORAGE = ChargeInput(
    name="Storage",
    kind="usage",
    metric_code="storage_gb",
    price_model="per_unit",
    prices=[PriceInput(currency="USD", amount=D("0.05"))],
)
CALLS = ChargeInput(
    name="API calls",
    kind="usage",
    metric_code="api_calls",
    price_model="graduated",
    prices=[
        PriceInput(
            currency="USD",
            tiers=[TierInput(up_to=D(100), unit_amount=D("1.00")), TierInput(up_to=None, unit_amount=D("0.50"))],
        )
    ],
)


def _plan(*charges: ChargeInput, code: str = "team"):
    return plan_create(product=ProductFactory(name="Cloud"), code=code, name=code.title(), charges=list(charges))


def _charge(subscription, name: str):
    return subscription.plan_version.charges.get(name=name)


def _subscribe(plan, external_id: str, quantity: int = 1):
    customer = CustomerFactory(currency="USD", external_id=external_id)
    return subscription_start(customer=customer, plan=plan, quantity=quantity, now=utc(2026, 4, 1))


def _send(customer, metric_code: str, field: str, *values: str, day: int = 10) -> None:
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": f"{customer.external_id}-{metric_code}-{day}-{index}",
                "external_customer_id": customer.external_id,
                "metric_code": metric_code,
                "timestamp": (utc(2026, 4, day) + timedelta(minutes=index)).isoformat(),
                "properties": {field: value},
            }
            for index, value in enumerate(values)
        ],
        now=utc(2026, 4, 20),
    )
    assert result.rejected == [], result.rejected


def _lines(invoice):
    return [
        (line.kind, line.description, line.quantity, line.amount.amount) for line in invoice.lines.order_by("position")
    ]


def _invoice(subscription, day):
    return Invoice.objects.get(subscription=subscription, period_start_at=day)


def _set(subscription, charge_name: str, **price):
    return subscription_price_override_set(
        subscription_id=subscription.pk,
        charge_id=_charge(subscription, charge_name).pk,
        price=PriceInput(currency="USD", **price),
        note="Contract 2026-17",
        now=utc(2026, 4, 2),
    )


def test_a_negotiated_per_unit_price_is_billed_to_the_cent_on_the_renewal_invoice():
    plan = _plan(SEATS, STORAGE)
    negotiated, listed = _subscribe(plan, "negotiated", quantity=3), _subscribe(plan, "listed", quantity=3)
    _set(negotiated, "Storage", amount=D("0.0425"))
    for subscription in (negotiated, listed):
        _send(subscription.customer, "storage_gb", "gb", "1000", "234")  # 1,234 GB

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    # 1,234 × 0.0425 = 52.445 → 52.45 (rounded once, half up); seats 3 × 10.00 = 30.00
    may = _invoice(negotiated, utc(2026, 5, 1))
    assert _lines(may) == [
        ("usage", "Cloud — Team: Storage (usage)", D(1234), D("52.45")),
        ("recurring", "Cloud — Team: Seats (monthly)", D(3), D("30.00")),
    ]
    assert may.total == Money("82.45", "USD")
    storage = may.lines.get(description__endswith="Storage (usage)")
    assert storage.unit_amount == Money(D("0.0425"), "USD")
    assert "Custom price agreed for this subscription (instead of the plan's price)." in storage.explanation
    # The same usage at the plan's price: 1,234 × 0.05 = 61.70
    listed_storage = _lines(_invoice(listed, utc(2026, 5, 1)))[0]
    assert listed_storage == ("usage", "Cloud — Team: Storage (usage)", D(1234), D("61.70"))


def test_the_bulk_path_leaves_a_subscription_with_a_custom_price_to_the_one_by_one_path():
    plan = _plan(SEATS, STORAGE)
    negotiated, listed = _subscribe(plan, "negotiated"), _subscribe(plan, "listed")
    _set(negotiated, "Seats", amount=D("7.50"))

    outcome = billing_chunk_bill(subscription_ids=[negotiated.pk, listed.pk], now=utc(2026, 5, 1, 1))

    assert outcome.one_by_one_ids == [negotiated.pk]
    subscription_bill_due(subscription_id=negotiated.pk, now=utc(2026, 5, 1, 1))
    assert _invoice(negotiated, utc(2026, 5, 1)).total == Money("7.50", "USD")
    assert _invoice(listed, utc(2026, 5, 1)).total == Money("10.00", "USD")


def test_custom_graduated_tiers_are_computed_tier_by_tier():
    subscription = _subscribe(_plan(CALLS), "acme")
    _set(
        subscription,
        "API calls",
        tiers=[
            TierInput(up_to=D(1000), unit_amount=D("0.40"), flat_amount=D("5.00")),
            TierInput(up_to=None, unit_amount=D("0.25")),
        ],
    )
    _send(subscription.customer, "api_calls", "calls", "700", "800")  # 1,500 calls

    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    # Custom: 5.00 + 1,000 × 0.40 + 500 × 0.25 = 5.00 + 400.00 + 125.00 = 530.00
    # (the plan's tiers would give 100 × 1.00 + 1,400 × 0.50 = 800.00)
    may = Invoice.objects.get(subscription=subscription)  # a usage-only plan: April's usage, its only invoice
    assert _lines(may) == [("usage", "Cloud — Team: API calls (usage)", D(1500), D("530.00"))]


def test_the_upcoming_invoice_equals_the_invoice_the_run_issues():
    subscription = _subscribe(_plan(SEATS, STORAGE, CALLS), "acme", quantity=4)
    _set(subscription, "Seats", amount=D("8.25"))
    _set(subscription, "Storage", amount=D("0.0333"))
    _send(subscription.customer, "storage_gb", "gb", "100", "1")  # 101 GB × 0.0333 = 3.3633 → 3.36
    _send(subscription.customer, "api_calls", "calls", "150")  # plan tiers: 100 + 50 × 0.50 = 125.00

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 30))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    may = _invoice(subscription, utc(2026, 5, 1))
    assert [(line.description, line.amount) for line in upcoming.lines] == [
        (line.description, line.amount.amount) for line in may.lines.order_by("position")
    ]
    # 4 × 8.25 = 33.00; 3.36; 125.00
    assert upcoming.total == may.total.amount == D("161.36")


def test_a_mid_period_quantity_change_is_prorated_at_the_custom_price():
    subscription = _subscribe(_plan(SEATS), "acme", quantity=2)
    _set(subscription, "Seats", amount=D("8.00"))

    result = subscription_change(subscription_id=subscription.pk, quantity=5, now=utc(2026, 4, 16))

    # April has 30 days; 15 remain: ½. Unused: 2 × 8.00 × ½ = 8.00; remaining: 5 × 8.00 × ½ = 20.00
    assert [(line.kind, line.amount) for line in result.preview.lines] == [
        ("proration", D("-8.00")),
        ("proration", D("20.00")),
    ]
    assert result.preview.total == D("12.00")
    assert "Custom price agreed for this subscription (instead of the plan's price)." in (
        result.preview.lines[1].explanation
    )


def test_a_plan_change_to_another_version_leaves_the_custom_price_behind():
    subscription = _subscribe(_plan(SEATS), "acme", quantity=2)
    _set(subscription, "Seats", amount=D("8.00"))
    bigger = _plan(
        ChargeInput(name="Seats", price_model="per_unit", prices=[PriceInput(currency="USD", amount=D("20.00"))]),
        code="business",
    )

    result = subscription_change(subscription_id=subscription.pk, plan=bigger, now=utc(2026, 4, 16))

    # Unused at the custom price: 2 × 8.00 × ½ = 8.00; the new version at its own price: 2 × 20.00 × ½ = 20.00
    assert [(line.kind, line.amount) for line in result.preview.lines] == [
        ("proration", D("-8.00")),
        ("proration", D("20.00")),
    ]


def test_a_charge_not_on_the_subscriptions_version_is_refused_and_nothing_changes():
    subscription = _subscribe(_plan(SEATS), "acme")
    other = _subscribe(_plan(STORAGE, code="other"), "other")

    with pytest.raises(ValidationFailed) as error:
        subscription_price_override_set(
            subscription_id=subscription.pk,
            charge_id=_charge(other, "Storage").pk,
            price=PriceInput(currency="USD", amount=D("1.00")),
        )

    assert error.value.fields == {"charge": ["Choose a charge of the subscription's plan version."]}
    assert not SubscriptionPriceOverride.objects.exists()


def test_a_custom_price_is_validated_as_a_catalog_price_is():
    subscription = _subscribe(_plan(CALLS), "acme")

    with pytest.raises(ValidationFailed) as error:
        _set(subscription, "API calls", tiers=[TierInput(up_to=D(10), unit_amount=D("-1"))])

    assert error.value.fields == {
        "tiers.0.unit_amount": ["Tier 1: the unit price cannot be negative."],
        "tiers.0.up_to": [
            "The last tier must be open-ended (no upper bound), so that every quantity has a price; add a tier "
            "above 10."
        ],
    }
    with pytest.raises(ValidationFailed) as error:
        subscription_price_override_set(
            subscription_id=subscription.pk,
            charge_id=_charge(subscription, "API calls").pk,
            price=PriceInput(currency="EUR", amount=D("1"), tiers=[TierInput(up_to=None, unit_amount=D("1"))]),
        )
    assert set(error.value.fields) == {"amount", "currency"}
    assert not SubscriptionPriceOverride.objects.exists()


def test_removing_a_custom_price_returns_to_the_plan_price_the_next_period():
    subscription = _subscribe(_plan(SEATS), "acme", quantity=2)
    _set(subscription, "Seats", amount=D("6.00"))
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))

    subscription_price_override_remove(
        subscription_id=subscription.pk, charge_id=_charge(subscription, "Seats").pk, now=utc(2026, 5, 10)
    )
    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    assert _invoice(subscription, utc(2026, 5, 1)).total == Money("12.00", "USD")  # 2 × 6.00
    assert _invoice(subscription, utc(2026, 6, 1)).total == Money("20.00", "USD")  # 2 × 10.00
    events = list(subscription.events.filter(type__startswith="price_override").values_list("type", "data"))
    assert [event_type for event_type, _ in events] == [
        SubscriptionEventType.PRICE_OVERRIDE_SET,
        SubscriptionEventType.PRICE_OVERRIDE_REMOVED,
    ]
    assert events[0][1]["note"] == "Contract 2026-17"
    with pytest.raises(NotFound):
        subscription_price_override_remove(
            subscription_id=subscription.pk, charge_id=_charge(subscription, "Seats").pk, now=utc(2026, 5, 11)
        )


def test_doc_worked_example_custom_prices_per_subscription():
    """docs/credits.md, "Custom prices per subscription", "Worked example"."""
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(
        customer=customer, plan=_plan(SEATS, STORAGE), quantity=2, started_at=utc(2026, 4, 1), now=utc(2026, 3, 31)
    )
    for name, amount in (("Seats", "8.00"), ("Storage", "0.0425")):
        subscription_price_override_set(
            subscription_id=subscription.pk,
            charge_id=_charge(subscription, name).pk,
            price=PriceInput(currency="USD", amount=D(amount)),
            now=utc(2026, 3, 31),
        )
    bill_due_subscriptions(now=utc(2026, 4, 1, 1))
    assert _invoice(subscription, utc(2026, 4, 1)).total == Money("16.00", "USD")  # 2 seats × 8.00
    _send(subscription.customer, "storage_gb", "gb", "1234")

    change = subscription_change(subscription_id=subscription.pk, quantity=5, now=utc(2026, 4, 16))
    assert change.preview.total == D("12.00")
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    subscription_price_override_remove(
        subscription_id=subscription.pk, charge_id=_charge(subscription, "Storage").pk, now=utc(2026, 5, 10)
    )
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": "acme-may",
                "external_customer_id": "acme",
                "metric_code": "storage_gb",
                "timestamp": utc(2026, 5, 12).isoformat(),
                "properties": {"gb": "1000"},
            }
        ],
        now=utc(2026, 5, 20),
    )
    assert result.rejected == []
    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    may = _invoice(subscription, utc(2026, 5, 1))
    assert sorted(line.amount.amount for line in may.lines.all()) == [D("-8.00"), D("20.00"), D("40.00"), D("52.45")]
    assert may.total == Money("104.45", "USD")
    june = _invoice(subscription, utc(2026, 6, 1))
    assert sorted(line.amount.amount for line in june.lines.all()) == [D("40.00"), D("50.00")]
    assert june.total == Money("90.00", "USD")


def test_late_usage_is_priced_again_at_the_custom_price():
    subscription = _subscribe(_plan(SEATS, STORAGE), "acme")
    _set(subscription, "Storage", amount=D("0.0425"))
    _send(subscription.customer, "storage_gb", "gb", "100")  # 100 × 0.0425 = 4.25 on May's invoice
    bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    result = usage_events_ingest(
        events=[
            {
                "transaction_id": "acme-late",
                "external_customer_id": "acme",
                "metric_code": "storage_gb",
                "timestamp": utc(2026, 4, 30, 23).isoformat(),
                "properties": {"gb": "200"},
            }
        ],
        now=utc(2026, 5, 2),
    )
    assert result.rejected == []

    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    may = _invoice(subscription, utc(2026, 5, 1))
    assert may.lines.get(description__endswith="Storage (usage)").amount == Money("4.25", "USD")
    june = _invoice(subscription, utc(2026, 6, 1))
    late = [line for line in june.lines.all() if line.period_start_at == utc(2026, 4, 1) and line.charge_id]
    # April's usage is now 300 GB × 0.0425 = 12.75; 4.25 was billed: 8.50 more (200 × 0.0425)
    assert [line.amount.amount for line in late] == [D("8.50")]
