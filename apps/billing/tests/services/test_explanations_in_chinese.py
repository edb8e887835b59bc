"""Invoice lines are explained in the language of the customer's bills: whole sentences translated
when the lines are written (`bill_language`), on the one-by-one path and in bulk alike; an English
customer's explanations read exactly as before."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.services import ChargeInput, PriceInput, TierInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal


def _tiers(*rows: tuple[str | None, str]) -> list[TierInput]:
    return [TierInput(up_to=None if up_to is None else D(up_to), unit_amount=D(price)) for up_to, price in rows]


@pytest.fixture
def plan():
    """Calls priced in graduated tiers: 10.00 USD each for the first 5, 5.00 USD beyond; region cn
    has its own tiers, 8.00 USD then 4.00 USD."""
    billable_metric_create(code="api_calls", name="API calls", group_by="region")
    return plan_create(
        product=ProductFactory(name="Gateway"),
        code="standard",
        name="Standard",
        charges=[
            ChargeInput(name="Platform fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("10"))]),
            ChargeInput(
                name="Calls",
                kind="usage",
                metric_code="api_calls",
                price_model="graduated",
                prices=[
                    PriceInput(currency="USD", tiers=_tiers(("5", "10.00"), (None, "5.00"))),
                    PriceInput(
                        currency="USD", tiers=_tiers(("5", "8.00"), (None, "4.00")), dimension_values={"region": "cn"}
                    ),
                ],
            ),
        ],
    )


def _subscribe(plan, external_id: str, language: str):
    customer = CustomerFactory(currency="USD", external_id=external_id, preferred_language=language)
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    events = [
        {
            "transaction_id": f"{external_id}-{region}-{index}",
            "external_customer_id": external_id,
            "metric_code": "api_calls",
            "timestamp": (utc(2026, 4, 2) + timedelta(minutes=index)).isoformat(),
            "properties": {"region": region},
        }
        for region, count in (("cn", 8), ("eu", 6))
        for index in range(count)
    ]
    assert usage_events_ingest(events=events, now=utc(2026, 4, 20)).rejected == []
    return subscription


def _usage_lines(subscription) -> list[tuple[str, Decimal, tuple[str, ...]]]:
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))
    return [
        (line.description, line.amount.amount, tuple(line.explanation))
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ]


# cn at its own tiers: 5 × 8.00 + 3 × 4.00 = 52.00; eu at the default tiers: 5 × 10.00 + 1 × 5.00 = 55.00.
CHINESE = [
    (
        "Gateway — Standard: Calls — region cn（用量）",
        D("52.00"),
        ("API calls：8（事件数）", "region cn 的价格。", "第 1–5 个单位：5 × US$8.00", "第 6–8 个单位：3 × US$4.00"),
    ),
    (
        "Gateway — Standard: Calls — region eu（用量）",
        D("55.00"),
        (
            "API calls：6（事件数）",
            "默认价格（此收费项没有为 region eu 单独定价）。",
            "第 1–5 个单位：5 × US$10.00",
            "第 6 个单位：1 × US$5.00",
        ),
    ),
]
ENGLISH = [
    (
        "Gateway — Standard: Calls — region cn (usage)",
        D("52.00"),
        (
            "API calls: 8 (Count of events)",
            "Price for region cn.",
            "Units 1–5: 5 × 8.00 USD",
            "Units 6–8: 3 × 4.00 USD",
        ),
    ),
    (
        "Gateway — Standard: Calls — region eu (usage)",
        D("55.00"),
        (
            "API calls: 6 (Count of events)",
            "Default price (the charge has no price of its own for region eu).",
            "Units 1–5: 5 × 10.00 USD",
            "Unit 6: 1 × 5.00 USD",
        ),
    ),
]


@pytest.mark.parametrize(("language", "expected"), [("zh-hans", CHINESE), ("en", ENGLISH)])
def test_tier_and_dimension_price_explanations_are_in_the_customers_language(plan, language, expected):
    in_bulk = _subscribe(plan, "bulk", language)
    one_by_one = _subscribe(plan, "single", language)

    outcome = billing_chunk_bill(subscription_ids=[in_bulk.pk], now=utc(2026, 5, 1, 1))
    subscription_bill_due(subscription_id=one_by_one.pk, now=utc(2026, 5, 1, 1))

    assert (len(outcome.invoice_ids), outcome.one_by_one_ids) == (1, [])  # billed in bulk
    assert _usage_lines(in_bulk) == expected
    assert _usage_lines(one_by_one) == expected
