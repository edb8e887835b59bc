"""The newer meters on the billing run's bulk path: a subscription with a weighted-sum, percentile,
unique-count or latest-value charge, a percentage price or peak-hour prices is billed in bulk, and its
invoice is the one the one-by-one path makes, line by line (amounts, quantities, descriptions,
explanations, periods, taxes). Pooled charges stay one by one (test_pooled_allowances.py).

Each meter has twins: two customers with the same events (some before the period, some at an hour
boundary or exactly at the period's end), one billed by `billing_chunk_bill` (all meters in one chunk)
and the other by `subscription_bill_due`. Usage quantities worked by hand below."""

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_bill_due, subscription_start
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.core.money import quantize_amount
from apps.invoices.models import Invoice, TaxRate
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

from .test_billing_run_engine import _bill_view

pytestmark = pytest.mark.django_db

APRIL, MAY = utc(2026, 4, 1), utc(2026, 5, 1)
BILLED_AT = utc(2026, 5, 1, 1)


def _usage_charge(name: str, metric_code: str, **fields) -> ChargeInput:
    prices = fields.pop("prices", None) or [PriceInput(currency="USD", amount=fields.pop("amount"))]
    return ChargeInput(name=name, kind="usage", metric_code=metric_code, prices=prices, **fields)


# Per meter: the metric, the usage charge, the events ((moment, properties)) and the usage lines
# (description, quantity, amount) worked by hand. Every plan also has a 10.00 fee and a count charge
# (API calls, read in bulk), so a chunk mixes windows read in bulk and window by window.
METERS = {
    "weighted_sum": dict(
        metric=dict(aggregation="weighted_sum", field_name="gb", time_unit="hour"),
        charge=dict(price_model="per_unit", amount=D("0.01")),
        # 10 GB from 28 Mar (carried into April), 4 GB from 10 Apr 00:30, 0 from 20 Apr 12:00 (an hour
        # boundary), 100 GB from 1 May 00:00 (the next period's).
        events=[
            (utc(2026, 3, 28, 10), {"gb": "10"}),
            (utc(2026, 4, 10, 0, 30), {"gb": "4"}),
            (utc(2026, 4, 20, 12), {"gb": "0"}),
            (MAY, {"gb": "100"}),
        ],
        # 10 GB × (9 days + 0.5 h = 216.5 h) = 2,165 + 4 GB × (10 days + 11.5 h = 251.5 h) = 1,006:
        # 3,171 GB-hours × 0.01 = 31.71.
        lines=[("Storage (usage)", D("3171"), D("31.71"))],
    ),
    "storage_months": dict(
        # GB-months per region (a month of April is 30 days), with a price of its own for eu.
        metric=dict(aggregation="weighted_sum", field_name="gb", time_unit="month", group_by="region"),
        charge=dict(
            price_model="per_unit",
            prices=[
                PriceInput(currency="USD", amount=D("0.10")),
                PriceInput(currency="USD", amount=D("0.08"), dimension_values={"region": "eu"}),
            ],
        ),
        events=[
            (utc(2026, 3, 28, 10), {"gb": "30", "region": "eu"}),  # carried into April
            (utc(2026, 4, 16), {"gb": "60", "region": "eu"}),  # from the middle of the month
            (utc(2026, 4, 21), {"gb": "12", "region": "us"}),
            (MAY, {"gb": "500", "region": "us"}),  # May's
        ],
        # eu: 30 GB × 15/30 + 60 GB × 15/30 = 45 GB-months × 0.08 = 3.60; us: 12 GB × 10/30 = 4 × 0.10 = 0.40.
        lines=[
            ("Storage per region — region eu (usage)", D("45"), D("3.60")),
            ("Storage per region — region us (usage)", D("4"), D("0.40")),
        ],
    ),
    "percentile": dict(
        # 8,640 five-minute samples in April; the 99.95th percentile drops floor(8,640 × 0.05 / 100) = 4.
        metric=dict(aggregation="percentile", field_name="mbps", percentile=D("99.95"), interval_minutes=5),
        charge=dict(price_model="per_unit", amount=D("2.00")),
        events=[
            (utc(2026, 3, 31, 23, 59), {"mbps": "1000"}),  # March's: not a sample of April
            (APRIL, {"mbps": "100"}),  # 1 Apr 00:00–00:05: 100 + 50 = 150
            (utc(2026, 4, 1, 0, 4, 59), {"mbps": "50"}),
            (utc(2026, 4, 5, 12), {"mbps": "80"}),  # an hour boundary
            (utc(2026, 4, 5, 12, 5), {"mbps": "90"}),  # the next interval
            (utc(2026, 4, 15, 9, 17), {"mbps": "60"}),
            (utc(2026, 4, 16, 9, 17), {"mbps": "40"}),
            (utc(2026, 4, 30, 23, 59, 59), {"mbps": "70"}),  # the last interval
            (MAY, {"mbps": "1000"}),  # May's
        ],
        # Samples 150, 90, 80, 70, 60, 40 and zeros: the 4 highest dropped, the 5th is 60 × 2.00 = 120.00.
        lines=[("Bandwidth (usage)", D("60"), D("120.00"))],
    ),
    "unique_count": dict(
        metric=dict(aggregation="unique_count", field_name="device"),
        charge=dict(price_model="per_unit", amount=D("1.50")),
        events=[
            (utc(2026, 3, 31, 23), {"device": "c"}),
            (APRIL, {"device": "a"}),
            (utc(2026, 4, 2, 10, 15), {"device": "b"}),
            (utc(2026, 4, 20, 23, 59), {"device": "a"}),
            (MAY, {"device": "d"}),
        ],
        lines=[("Devices (usage)", D("2"), D("3.00"))],  # a and b: 2 × 1.50
    ),
    "latest": dict(
        metric=dict(aggregation="latest", field_name="seats"),
        charge=dict(price_model="per_unit", amount=D("2.00")),
        events=[
            (utc(2026, 4, 3, 8), {"seats": "5"}),
            (utc(2026, 4, 30, 23, 59, 59), {"seats": "7"}),
            (MAY, {"seats": "100"}),
        ],
        lines=[("Seats (usage)", D("7"), D("14.00"))],  # the last value in April: 7 × 2.00
    ),
    "percentage": dict(
        metric=dict(aggregation="sum", field_name="amount"),
        charge=dict(
            price_model="percentage",
            prices=[PriceInput(currency="USD", percentage=D("2.9"), fixed_fee=D("0.30"))],
        ),
        events=[
            (utc(2026, 3, 31, 23, 59, 59), {"amount": "999.00"}),
            (utc(2026, 4, 7, 13), {"amount": "100.00"}),
            (utc(2026, 4, 27, 18, 30), {"amount": "250.00"}),
        ],
        # Two transactions: 2.9 % × 100.00 + 0.30 = 3.20; 2.9 % × 250.00 + 0.30 = 7.55; 10.75.
        lines=[("Payments (usage)", D("2"), D("10.75"))],
    ),
    # Grouped by region, one group at a price of its own: each group's transactions in event order (the
    # first of each group free), its distinct devices, its latest seat count.
    "percentage_regions": dict(
        metric=dict(aggregation="sum", field_name="amount", group_by="region"),
        charge=dict(
            price_model="percentage",
            prices=[
                PriceInput(currency="USD", percentage=D("2.9"), fixed_fee=D("0.30"), included_units=D(1)),
                PriceInput(
                    currency="USD",
                    percentage=D("1.5"),
                    fixed_fee=D("0.10"),
                    included_units=D(1),
                    dimension_values={"region": "eu"},
                ),
            ],
        ),
        events=[
            (utc(2026, 3, 31, 23, 59, 59), {"amount": "999.00", "region": "eu"}),  # March's
            (APRIL, {"amount": "10.00", "region": "eu"}),  # the first of eu: free
            (utc(2026, 4, 7, 13), {"amount": "100.00", "region": "eu"}),
            (utc(2026, 4, 7, 13), {"amount": "200.00", "region": "us"}),  # the first of us: free
            (utc(2026, 4, 30, 23, 59, 59), {"amount": "300.00", "region": "us"}),
            (MAY, {"amount": "5000.00", "region": "us"}),  # May's
        ],
        # eu: 1.5 % × 100.00 + 0.10 = 1.60; us: 2.9 % × 300.00 + 0.30 = 9.00.
        lines=[
            ("Payments per region — region eu (usage)", D("2"), D("1.60")),
            ("Payments per region — region us (usage)", D("2"), D("9.00")),
        ],
    ),
    "unique_regions": dict(
        metric=dict(aggregation="unique_count", field_name="device", group_by="region"),
        charge=dict(price_model="per_unit", amount=D("1.50")),
        events=[
            (utc(2026, 3, 31, 23), {"device": "c", "region": "eu"}),
            (APRIL, {"device": "a", "region": "eu"}),
            (utc(2026, 4, 2, 10, 15), {"device": "b", "region": "eu"}),
            (utc(2026, 4, 2, 10, 15), {"device": "a", "region": "us"}),  # a again, in another group
            (utc(2026, 4, 20, 23, 59), {"device": "a", "region": "eu"}),
            (MAY, {"device": "d", "region": "us"}),
        ],
        lines=[
            ("Devices per region — region eu (usage)", D("2"), D("3.00")),  # a, b
            ("Devices per region — region us (usage)", D("1"), D("1.50")),  # a
        ],
    ),
    "latest_regions": dict(
        metric=dict(aggregation="latest", field_name="seats", group_by="region"),
        charge=dict(price_model="per_unit", amount=D("2.00")),
        events=[
            (utc(2026, 3, 28), {"seats": "40", "region": "us"}),  # March's only: no April line
            (utc(2026, 4, 3, 8), {"seats": "5", "region": "eu"}),
            (utc(2026, 4, 30, 23), {"seats": "7", "region": "eu"}),  # on an hour boundary
            (MAY, {"seats": "100", "region": "eu"}),
        ],
        lines=[("Seats per region — region eu (usage)", D("7"), D("14.00"))],
    ),
    "peak": dict(
        metric=dict(aggregation="sum", field_name="gb"),
        charge=dict(
            price_model="per_unit",
            peak_start_hour=8,
            peak_end_hour=22,
            prices=[
                PriceInput(currency="USD", amount=D("0.05")),
                PriceInput(currency="USD", amount=D("0.10"), time_window="peak"),
            ],
        ),
        # Asia/Shanghai (UTC+8), peak 08:00–22:00 local.
        events=[
            (utc(2026, 3, 31, 23, 59), {"gb": "1000"}),  # March's
            (APRIL, {"gb": "7"}),  # 08:00 local: peak
            (utc(2026, 4, 9, 23, 30), {"gb": "10"}),  # 07:30: off-peak
            (utc(2026, 4, 10, 0, 0), {"gb": "20"}),  # 08:00: peak
            (utc(2026, 4, 10, 13, 59), {"gb": "30"}),  # 21:59: peak
            (utc(2026, 4, 10, 14, 0), {"gb": "40"}),  # 22:00: off-peak
            (utc(2026, 4, 10, 15, 30), {"gb": "5"}),  # 23:30: off-peak
            (MAY, {"gb": "1000"}),  # May's
        ],
        # Peak 7 + 20 + 30 = 57 GB × 0.10 = 5.70; off-peak 10 + 40 + 5 = 55 GB × 0.05 = 2.75.
        lines=[
            ("Transfer — peak hours 08:00–22:00 (usage)", D("57"), D("5.70")),
            ("Transfer — off-peak hours (usage)", D("55"), D("2.75")),
        ],
    ),
}
CHARGE_NAMES = {
    "weighted_sum": "Storage",
    "storage_months": "Storage per region",
    "percentile": "Bandwidth",
    "unique_count": "Devices",
    "latest": "Seats",
    "percentage": "Payments",
    "percentage_regions": "Payments per region",
    "unique_regions": "Devices per region",
    "latest_regions": "Seats per region",
    "peak": "Transfer",
}
# API calls: 3 in April (one exactly at its start), one at 1 May 00:00 (May's): 3 × 0.50 = 1.50.
CALLS = [APRIL, utc(2026, 4, 11, 6, 59, 59), utc(2026, 4, 30, 23, 59, 59), MAY]


def _plan(meter: str):
    spec = METERS[meter]
    billable_metric_create(code=f"{meter}_metric", name=CHARGE_NAMES[meter], **spec["metric"])
    return plan_create(
        product=ProductFactory(name="Cloud"), code=meter, name=meter.title(),
        charges=[
            ChargeInput(name="Platform fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("10"))]),
            _usage_charge("API calls", "calls", amount=D("0.50")),
            _usage_charge(CHARGE_NAMES[meter], f"{meter}_metric", **spec["charge"]),
        ],
    )  # fmt: skip


def _subscribe(plan, external_id: str, events: list[tuple[str, datetime, dict]], **customer_fields):
    customer = CustomerFactory(
        currency="USD", external_id=external_id, country="NL", city="Amsterdam", postal_code="1017 BZ",
        **customer_fields,
    )  # fmt: skip
    subscription = subscription_start(customer=customer, plan=plan, now=APRIL)
    result = usage_events_ingest(
        events=[
            {"transaction_id": f"{external_id}-{index}", "external_customer_id": external_id, "metric_code": code,
             "timestamp": moment.isoformat(), "properties": properties}
            for index, (code, moment, properties) in enumerate(events)
        ],
        now=MAY + timedelta(minutes=30),
    )  # fmt: skip
    assert result.rejected == [], result.rejected
    return subscription


def _events(meter: str) -> list[tuple[str, datetime, dict]]:
    return [("calls", moment, {}) for moment in CALLS] + [
        (f"{meter}_metric", moment, properties) for moment, properties in METERS[meter]["events"]
    ]


def _invoice_view(invoice: Invoice) -> dict:
    """Everything on an invoice that is not the customer's identity or its number: the engine test's
    view of a bill, and the periods it invoiced."""
    return {
        **_bill_view(invoice),
        "periods": list(invoice.invoiced_periods.values_list("period_start_at", "period_end_at")),
    }


def test_every_meter_but_pooled_is_billed_in_bulk_as_one_by_one_line_by_line():
    TaxRate.objects.create(name="VAT", percentage=D("21"), country="NL")
    billable_metric_create(code="calls", name="API calls")
    twins = {}
    for meter in METERS:
        plan = _plan(meter)
        twins[meter] = tuple(
            _subscribe(plan, f"{path}-{meter}", _events(meter), time_zone="Asia/Shanghai" if meter == "peak" else "UTC")
            for path in ("bulk", "single")
        )
    # The peak-hour lines in Chinese too: the customer's language on both paths.
    plan = plan_create(
        product=ProductFactory(name="CDN"), code="peak_zh", name="Edge",
        charges=[_usage_charge("Transfer", "peak_metric", **METERS["peak"]["charge"])],
    )  # fmt: skip
    twins["peak_zh"] = tuple(
        _subscribe(plan, f"{path}-peak-zh", [("peak_metric", m, p) for m, p in METERS["peak"]["events"]],
                   time_zone="Asia/Shanghai", preferred_language="zh-hans")
        for path in ("bulk", "single")
    )  # fmt: skip

    outcome = billing_chunk_bill(subscription_ids=[bulk.pk for bulk, _ in twins.values()], now=BILLED_AT)
    # All of them on the bulk path: none left to the one-by-one path, one invoice each, no error.
    assert (outcome.one_by_one_ids, outcome.errors, outcome.not_due_ids) == ([], [], [])
    assert sorted(outcome.billed_subscription_ids) == sorted(bulk.pk for bulk, _ in twins.values())
    assert len(outcome.invoice_ids) == len(twins)
    one_by_one = {}
    for meter, (_, single) in twins.items():
        [one_by_one[meter]] = subscription_bill_due(subscription_id=single.pk, now=BILLED_AT)

    for meter, (bulk, _) in twins.items():
        bulk_invoice = Invoice.objects.get(subscription=bulk, pk__in=outcome.invoice_ids)
        single_invoice = one_by_one[meter]
        assert _invoice_view(bulk_invoice) == _invoice_view(single_invoice), meter
        if meter == "peak_zh":
            continue
        title = f"Cloud — {meter.title()}: "
        usage = [(f"{title}{line}", quantity, amount) for line, quantity, amount in METERS[meter]["lines"]]
        assert [
            (line.description, line.quantity, line.amount.amount)
            for line in bulk_invoice.lines.filter(kind="usage").order_by("position")
        ] == [(f"{title}API calls (usage)", D(3), D("1.50")), *usage], meter
        subtotal = D("10.00") + D("1.50") + sum(amount for _, _, amount in usage)
        assert bulk_invoice.subtotal == Money(subtotal, "USD"), meter
        assert bulk_invoice.tax_total == Money(quantize_amount(subtotal * D("0.21"), "USD"), "USD"), meter  # 21 % VAT


USAGE_TABLES = ("usage_usageevent", "usage_usagerollup", "usage_usagedistinctvalue", "usage_usageintervalrollup")


def test_a_chunk_reads_unique_counts_latest_values_and_transactions_in_as_many_statements_for_3_as_for_30():
    # Subscriptions with a unique-count, a latest-value and a percentage charge (grouped, each group with
    # events): the chunk's usage reads are as many for 30 subscriptions as for 3.
    if connection.vendor != "postgresql":
        pytest.skip("SQLite reads count and sum metrics window by window (test_latest_unique_many.py counts ours)")
    TaxRate.objects.create(name="VAT", percentage=D("21"), country="NL")
    billable_metric_create(code="calls", name="API calls")
    meters = ("unique_regions", "latest_regions", "percentage_regions")
    for meter in meters:
        billable_metric_create(code=f"{meter}_metric", name=CHARGE_NAMES[meter], **METERS[meter]["metric"])
    plan = plan_create(
        product=ProductFactory(name="Cloud"), code="mixed", name="Mixed",
        charges=[
            ChargeInput(name="Platform fee", price_model="flat", prices=[PriceInput(currency="USD", amount=D("10"))]),
            _usage_charge("API calls", "calls", amount=D("0.50")),
            *[_usage_charge(CHARGE_NAMES[meter], f"{meter}_metric", **METERS[meter]["charge"]) for meter in meters],
        ],
    )  # fmt: skip
    events = [("calls", moment, {}) for moment in CALLS] + [
        (f"{meter}_metric", moment, properties) for meter in meters for moment, properties in METERS[meter]["events"]
    ]
    counts, totals = [], set()
    for size in (3, 30):
        ids = [_subscribe(plan, f"s{size}-{number}", events).pk for number in range(size)]
        with CaptureQueriesContext(connection) as queries:
            outcome = billing_chunk_bill(subscription_ids=ids, now=BILLED_AT)
        assert (outcome.one_by_one_ids, outcome.errors, len(outcome.invoice_ids)) == ([], [], size)
        counts.append(sum(1 for query in queries if any(table in query["sql"] for table in USAGE_TABLES)))
        totals |= set(Invoice.objects.filter(pk__in=outcome.invoice_ids).values_list("subtotal", flat=True))
    # 10.00 + 1.50 calls + devices 3.00 + 1.50 + seats 14.00 + payments 1.60 + 9.00 = 40.60, for everyone.
    assert totals == {D("40.60")}
    assert counts[0] == counts[1], counts
