"""Dimension prices on invoices: a usage charge on a metric grouped by one or two event properties
prices each group at its own price when it has one, at the default price otherwise, one line per
group (docs/pricing.md, "Prices per dimension")."""

from datetime import timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start, subscription_upcoming_invoice
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


def _price(amount: str, **values: str) -> PriceInput:
    return PriceInput(currency="USD", amount=D(amount), dimension_values=values)


@pytest.fixture
def lago_plan():
    """Lago's charges-with-filters example: API calls at 2.00 USD, 1.00 USD from Africa on AWS."""
    billable_metric_create(code="api_calls", name="API calls", group_by="region,provider")
    return plan_create(
        product=ProductFactory(name="Gateway"),
        code="standard",
        name="Standard",
        charges=[
            ChargeInput(name="Platform fee", price_model="flat", prices=[_price("10")]),
            ChargeInput(
                name="Calls",
                kind="usage",
                metric_code="api_calls",
                price_model="per_unit",
                prices=[_price("2.00"), _price("1.00", region="africa", provider="aws")],
            ),
        ],
    )


def _send(customer, *groups: tuple[str, str, int]) -> None:
    events = [
        {
            "transaction_id": f"{customer.external_id}-{region}-{provider}-{index}",
            "external_customer_id": customer.external_id,
            "metric_code": "api_calls",
            "timestamp": (utc(2026, 4, 2) + timedelta(minutes=index)).isoformat(),
            "properties": {"region": region, "provider": provider},
        }
        for region, provider, count in groups
        for index in range(count)
    ]
    result = usage_events_ingest(events=events, now=utc(2026, 4, 20))
    assert result.rejected == [], result.rejected


def _subscribe(plan, external_id: str):
    return subscription_start(
        customer=CustomerFactory(currency="USD", external_id=external_id), plan=plan, now=utc(2026, 4, 1)
    )


def _usage_lines(subscription):
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    return [
        (line.description, line.quantity, line.amount.amount, line.explanation[1])
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ]


def test_each_group_is_its_own_line_at_its_own_price_or_the_default_in_bulk_and_one_by_one(lago_plan):
    in_bulk, one_by_one = _subscribe(lago_plan, "bulk"), _subscribe(lago_plan, "single")
    for subscription in (in_bulk, one_by_one):
        _send(subscription.customer, ("africa", "aws", 10), ("africa", "gcp", 5), ("europe", "aws", 3))

    outcome = billing_chunk_bill(subscription_ids=[in_bulk.pk], now=utc(2026, 5, 1, 1))
    subscription_bill_due(subscription_id=one_by_one.pk, now=utc(2026, 5, 1, 1))

    assert (len(outcome.invoice_ids), outcome.one_by_one_ids) == (1, [])  # priced in bulk
    expected = [
        # 10 × 1.00 (Africa on AWS has its own price); 5 × 2.00 and 3 × 2.00 at the default price
        (
            "Gateway — Standard: Calls — region africa, provider aws (usage)",
            D(10),
            D("10.00"),
            "Price for region africa, provider aws.",
        ),
        (
            "Gateway — Standard: Calls — region africa, provider gcp (usage)",
            D(5),
            D("10.00"),
            "Default price (the charge has no price of its own for region africa, provider gcp).",
        ),
        (
            "Gateway — Standard: Calls — region europe, provider aws (usage)",
            D(3),
            D("6.00"),
            "Default price (the charge has no price of its own for region europe, provider aws).",
        ),
    ]
    assert _usage_lines(in_bulk) == expected
    assert _usage_lines(one_by_one) == expected
    may = Invoice.objects.get(subscription=in_bulk, period_start_at=utc(2026, 5, 1))
    assert may.total == Money("36.00", "USD")  # 26.00 of usage + the 10.00 fee


def test_one_property_dimension_prices_with_tiers_and_the_preview():
    billable_metric_create(code="egress_gb", name="Egress", aggregation="sum", field_name="gb", group_by="region")
    tiers = [("1000", "0.09"), (None, "0.05")]
    plan = plan_create(
        product=ProductFactory(name="CDN"),
        code="cdn",
        name="CDN",
        charges=[
            ChargeInput(name="Platform fee", price_model="flat", prices=[_price("0")]),
            ChargeInput(
                name="Egress",
                kind="usage",
                metric_code="egress_gb",
                price_model="graduated",
                prices=[
                    PriceInput(currency="USD", tiers=_tiers(tiers)),
                    PriceInput(
                        currency="USD",
                        tiers=_tiers([("1000", "0.12"), (None, "0.08")]),
                        dimension_values={"region": "ap"},
                    ),
                ],
            ),
        ],
    )
    subscription = _subscribe(plan, "acme")
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"e-{region}", "external_customer_id": "acme", "metric_code": "egress_gb",
             "timestamp": utc(2026, 4, 3).isoformat(), "properties": {"region": region, "gb": "1500"}}
            for region in ("ap", "eu")
        ],
        now=utc(2026, 4, 20),
    )  # fmt: skip
    assert result.rejected == []

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    # ap: 1,000 × 0.12 + 500 × 0.08 = 160.00; eu (default): 1,000 × 0.09 + 500 × 0.05 = 115.00
    assert [(line.description, line.amount) for line in upcoming.lines if line.kind == "usage"] == [
        ("CDN — CDN: Egress — region ap (usage)", D("160.00")),
        ("CDN — CDN: Egress — region eu (usage)", D("115.00")),
    ]


def _tiers(rows):
    from apps.catalog.services import TierInput

    return [TierInput(up_to=None if up_to is None else D(up_to), unit_amount=D(price)) for up_to, price in rows]


def test_an_event_missing_one_of_two_group_properties_is_refused_with_its_reason(lago_plan):
    customer = CustomerFactory(currency="USD", external_id="acme")

    result = usage_events_ingest(
        events=[
            {"transaction_id": "no-provider", "external_customer_id": "acme", "metric_code": "api_calls",
             "timestamp": utc(2026, 4, 2).isoformat(), "properties": {"region": "africa"}},
            {"transaction_id": "pipe", "external_customer_id": "acme", "metric_code": "api_calls",
             "timestamp": utc(2026, 4, 2).isoformat(), "properties": {"region": "a|b", "provider": "aws"}},
        ],
        now=utc(2026, 4, 20),
    )  # fmt: skip

    assert [rejection.index for rejection in result.rejected] == [0, 1]
    assert "grouped by 'provider'" in result.rejected[0].reason
    assert "contains '|'" in result.rejected[1].reason
    assert not customer.usage_events.exists()
