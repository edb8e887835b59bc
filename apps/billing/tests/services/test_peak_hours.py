"""Peak and off-peak prices: a usage charge prices the usage in its peak hours (whole hours of the day in
the customer's time zone) at its peak price and the rest at its default price, each on its own line,
read from the hourly rollups (docs/pricing.md, "Peak and off-peak prices")."""

from datetime import datetime
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


@pytest.fixture
def transfer_plan():
    """Data transfer at 0.10 USD per GB from 08:00 to 22:00, 0.05 USD per GB the other hours; no fee."""
    billable_metric_create(code="transfer_gb", name="Transfer", aggregation="sum", field_name="gb")
    return plan_create(
        product=ProductFactory(name="CDN"),
        code="cdn",
        name="Edge",
        charges=[
            ChargeInput(
                name="Transfer",
                kind="usage",
                metric_code="transfer_gb",
                price_model="per_unit",
                peak_start_hour=8,
                peak_end_hour=22,
                prices=[
                    PriceInput(currency="USD", amount=D("0.05")),
                    PriceInput(currency="USD", amount=D("0.10"), time_window="peak"),
                ],
            ),
        ],
    )


def _subscribe(plan, external_id: str, time_zone: str, language: str = "en"):
    customer = CustomerFactory(
        currency="USD", external_id=external_id, time_zone=time_zone, preferred_language=language
    )
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))


def _send(external_id: str, *events: tuple[datetime, str]) -> None:
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"{external_id}-{index}", "external_customer_id": external_id,
             "metric_code": "transfer_gb", "timestamp": at.isoformat(), "properties": {"gb": gb}}
            for index, (at, gb) in enumerate(events)
        ],
        now=utc(2026, 4, 25),
    )  # fmt: skip
    assert result.rejected == [], result.rejected


# 10 April 2026 in Shanghai (UTC+8): 07:30, 08:00, 21:59, 22:00 and 23:30 local time.
SHANGHAI_DAY = [
    (utc(2026, 4, 9, 23, 30), "10"),  # 07:30 local: off-peak
    (utc(2026, 4, 10, 0, 0), "20"),  # 08:00 local: the first peak hour
    (utc(2026, 4, 10, 13, 59), "30"),  # 21:59 local: peak
    (utc(2026, 4, 10, 14, 0), "40"),  # 22:00 local: off-peak again (the end hour is excluded)
    (utc(2026, 4, 10, 15, 30), "5"),  # 23:30 local: off-peak
]


def _usage_lines(subscription):
    invoice = Invoice.objects.get(subscription=subscription)  # usage only: one invoice, in arrears
    lines = [
        (line.description, line.quantity, line.amount.amount, line.explanation[1])
        for line in invoice.lines.filter(kind="usage").order_by("position")
    ]
    return lines, invoice.total


def test_doc_peak_and_off_peak_prices_a_day_across_the_peak_window_in_asia_shanghai(transfer_plan):
    shanghai = _subscribe(transfer_plan, "shanghai", "Asia/Shanghai")
    in_utc = _subscribe(transfer_plan, "london", "UTC")
    _send("shanghai", *SHANGHAI_DAY)
    _send("london", *SHANGHAI_DAY)

    # Billed in bulk (tests/services/test_bulk_meters.py: the same invoices as one by one).
    outcome = billing_chunk_bill(subscription_ids=[shanghai.pk, in_utc.pk], now=utc(2026, 5, 1, 1))
    assert (len(outcome.invoice_ids), outcome.one_by_one_ids, outcome.errors) == (2, [], [])

    # Shanghai: peak 20 + 30 = 50 GB × 0.10 = 5.00; off-peak 10 + 40 + 5 = 55 GB × 0.05 = 2.75.
    assert _usage_lines(shanghai) == (
        [
            ("CDN — Edge: Transfer — peak hours 08:00–22:00 (usage)", D(50), D("5.00"),
             "Peak hours: 08:00–22:00 in Asia/Shanghai (the customer's time zone), at the peak price."),
            ("CDN — Edge: Transfer — off-peak hours (usage)", D(55), D("2.75"),
             "Off-peak: the hours outside 08:00–22:00 in Asia/Shanghai (the customer's time zone)."),
        ],
        Money("7.75", "USD"),
    )  # fmt: skip
    # The same events for a customer in UTC (23:30, 00:00, 13:59, 14:00, 15:30): peak 30 + 40 + 5 = 75 GB
    # × 0.10 = 7.50; off-peak 10 + 20 = 30 GB × 0.05 = 1.50.
    lines, total = _usage_lines(in_utc)
    assert [(line[1], line[2]) for line in lines] == [(D(75), D("7.50")), (D(30), D("1.50"))]
    assert total == Money("9.00", "USD")


def test_peak_hours_past_midnight_in_the_upcoming_invoice_and_on_the_bill_in_chinese():
    billable_metric_create(code="calls", name="Calls")
    plan = plan_create(
        product=ProductFactory(name="Voice"),
        code="night",
        name="Night",
        charges=[
            ChargeInput(
                name="Calls", kind="usage", metric_code="calls", price_model="per_unit",
                peak_start_hour=22, peak_end_hour=6,
                prices=[PriceInput(currency="USD", amount=D("0.01")),
                        PriceInput(currency="USD", amount=D("0.03"), time_window="peak")],
            ),
        ],
    )  # fmt: skip
    subscription = _subscribe(plan, "sh", "Asia/Shanghai", language="zh-hans")
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"c{index}", "external_customer_id": "sh", "metric_code": "calls",
             "timestamp": at.isoformat(), "properties": {}}
            # 21:00, 22:00, 23:59, 05:59 and 06:00 local (UTC+8)
            for index, at in enumerate([utc(2026, 4, 3, 13), utc(2026, 4, 3, 14), utc(2026, 4, 3, 15, 59),
                                        utc(2026, 4, 3, 21, 59), utc(2026, 4, 3, 22)])
        ],
        now=utc(2026, 4, 20),
    )  # fmt: skip
    assert result.rejected == []

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 4, 20))

    # Peak 22:00–06:00: 3 calls × 0.03 = 0.09; off-peak 2 calls × 0.01 = 0.02 — in the customer's
    # language, as the bill will be.
    assert [(line.description, line.quantity, line.amount) for line in upcoming.lines if line.kind == "usage"] == [
        ("Voice — Night: Calls — 高峰时段 22:00–06:00（用量）", D(3), D("0.09")),
        ("Voice — Night: Calls — 非高峰时段（用量）", D(2), D("0.02")),
    ]
    subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 5, 1, 1))
    lines, total = _usage_lines(subscription)
    assert lines == [
        ("Voice — Night: Calls — 高峰时段 22:00–06:00（用量）", D(3), D("0.09"),
         "高峰时段：Asia/Shanghai（客户所在时区）22:00–06:00，按高峰价格计费。"),
        ("Voice — Night: Calls — 非高峰时段（用量）", D(2), D("0.02"),
         "非高峰时段：Asia/Shanghai（客户所在时区）22:00–06:00 以外的时间。"),
    ]  # fmt: skip
    assert total == Money("0.11", "USD")


def test_a_time_zone_with_a_half_hour_offset_is_read_from_the_events():
    """Asia/Kolkata is UTC+05:30: the UTC hour 02:00–03:00 holds 07:30–08:30 local time, across the
    peak's start at 08:00; the events are split exactly."""
    billable_metric_create(code="calls", name="Calls")
    plan = plan_create(
        product=ProductFactory(name="Voice"),
        code="day",
        name="Day",
        charges=[
            ChargeInput(
                name="Calls", kind="usage", metric_code="calls", price_model="per_unit",
                peak_start_hour=8, peak_end_hour=20,
                prices=[PriceInput(currency="USD", amount=D("1")),
                        PriceInput(currency="USD", amount=D("2"), time_window="peak")],
            ),
        ],
    )  # fmt: skip
    subscription = _subscribe(plan, "in", "Asia/Kolkata")
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"k{index}", "external_customer_id": "in", "metric_code": "calls",
             "timestamp": at.isoformat(), "properties": {}}
            for index, at in enumerate([utc(2026, 4, 3, 2, 15), utc(2026, 4, 3, 2, 45)])  # 07:45, 08:15 local
        ],
        now=utc(2026, 4, 20),
    )  # fmt: skip
    assert result.rejected == []

    subscription_bill_due(subscription_id=subscription.pk, now=utc(2026, 5, 1, 1))

    lines, total = _usage_lines(subscription)
    assert [(line[1], line[2]) for line in lines] == [(D(1), D("2.00")), (D(1), D("1.00"))]
    assert total == Money("3.00", "USD")
