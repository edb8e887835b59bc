"""MRR values a subscription at its custom prices (SubscriptionPriceOverride), from when they were set,
as the billing run bills it (worked by hand in the comments)."""

from datetime import date
from decimal import Decimal

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.reports.models import MrrSegment
from apps.reports.selectors import ReportFilters, mrr_report
from apps.reports.services import reports_refresh
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_price_override_remove, subscription_price_override_set

D = Decimal


def test_mrr_uses_the_subscriptions_custom_prices_from_when_they_were_set(db, settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    billable_metric_create(code="storage_gb", name="Storage", aggregation="sum", field_name="gb")
    plan = plan_create(
        product=ProductFactory(name="Cloud"), code="team", name="Team",
        charges=[
            ChargeInput(name="Platform", price_model="flat", prices=[PriceInput(currency="USD", amount=D("49.00"))]),
            ChargeInput(name="Seats", price_model="per_unit", prices=[PriceInput(currency="USD", amount=D("10.00"))]),
            ChargeInput(name="Storage", kind="usage", metric_code="storage_gb", price_model="per_unit",
                        prices=[PriceInput(currency="USD", amount=D("0.05"))]),
        ],
    )  # fmt: skip
    acme = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, quantity=5, now=utc(2026, 4, 1)
    )
    other = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="other"), plan=plan, quantity=2, now=utc(2026, 4, 1)
    )
    charges = {charge.name: charge for charge in acme.plan_version.charges.all()}
    # 16 April: Acme's seats at 8.00 instead of 10.00; its storage at 0.04 (usage: no MRR either way).
    for name, amount in [("Seats", "8.00"), ("Storage", "0.04")]:
        subscription_price_override_set(
            subscription_id=acme.pk, charge_id=charges[name].pk, price=PriceInput(currency="USD", amount=D(amount)),
            note="Contract 2026-17", now=utc(2026, 4, 16),
        )  # fmt: skip

    reports_refresh(full=True, now=utc(2026, 5, 20))

    segments = list(
        MrrSegment.objects.filter(subscription=acme).order_by("valid_from").values_list("mrr", "valid_from", "valid_to")
    )
    # Acme: 49.00 + 5 × 10.00 = 99.00 until 16 April, then 49.00 + 5 × 8.00 = 89.00.
    assert segments == [(D("99.0000"), utc(2026, 4, 1), utc(2026, 4, 16)), (D("89.0000"), utc(2026, 4, 16), None)]
    # The other subscription keeps the plan's prices: 49.00 + 2 × 10.00 = 69.00.
    assert list(MrrSegment.objects.filter(subscription=other).values_list("mrr", flat=True)) == [D("69.0000")]
    rows = mrr_report(ReportFilters(currency="USD", first_month=date(2026, 4, 1), last_month=date(2026, 5, 1)))
    # Month ends: April 89.00 + 69.00 = 158.00 (at the plan's prices it would be 99.00 + 69.00 = 168.00).
    assert [row.mrr for row in rows] == [D("158.00"), D("158.00")]


def test_mrr_history_replays_a_custom_price_that_was_later_replaced_or_removed(db, settings):
    """Acme, 5 seats at the plan's 10.00 plus the 49.00 platform fee, from 1 April. By hand:

    - 1–16 April, the plan's prices: 49.00 + 5 × 10.00 = 99.00;
    - 16 April, seats at 8.00: 49.00 + 5 × 8.00 = 89.00 (in force at the end of April);
    - 10 May, replaced by 9.00: 49.00 + 5 × 9.00 = 94.00 (in force at the end of May);
    - 5 June, removed: the plan's 99.00 again (now, 20 June).
    April's history keeps the 8.00 that was in force then, though the row now is gone."""
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    plan = plan_create(
        product=ProductFactory(name="Cloud"), code="team", name="Team",
        charges=[
            ChargeInput(name="Platform", price_model="flat", prices=[PriceInput(currency="USD", amount=D("49.00"))]),
            ChargeInput(name="Seats", price_model="per_unit", prices=[PriceInput(currency="USD", amount=D("10.00"))]),
        ],
    )  # fmt: skip
    acme = subscription_start(
        customer=CustomerFactory(currency="USD", external_id="acme"), plan=plan, quantity=5, now=utc(2026, 4, 1)
    )
    seats = acme.plan_version.charges.get(name="Seats")
    for amount, day in [("8.00", utc(2026, 4, 16)), ("9.00", utc(2026, 5, 10))]:
        subscription_price_override_set(
            subscription_id=acme.pk, charge_id=seats.pk, price=PriceInput(currency="USD", amount=D(amount)), now=day
        )
    reports_refresh(full=True, now=utc(2026, 5, 20))
    rows = mrr_report(ReportFilters(currency="USD", first_month=date(2026, 4, 1), last_month=date(2026, 5, 1)))
    assert [row.mrr for row in rows] == [D("89.00"), D("94.00")]

    subscription_price_override_remove(subscription_id=acme.pk, charge_id=seats.pk, now=utc(2026, 6, 5))
    reports_refresh(full=True, now=utc(2026, 6, 20))

    segments = list(
        MrrSegment.objects.filter(subscription=acme).order_by("valid_from").values_list("mrr", "valid_from", "valid_to")
    )
    assert segments == [
        (D("99.0000"), utc(2026, 4, 1), utc(2026, 4, 16)),
        (D("89.0000"), utc(2026, 4, 16), utc(2026, 5, 10)),
        (D("94.0000"), utc(2026, 5, 10), utc(2026, 6, 5)),
        (D("99.0000"), utc(2026, 6, 5), None),
    ]
    rows = mrr_report(ReportFilters(currency="USD", first_month=date(2026, 4, 1), last_month=date(2026, 6, 1)))
    assert [row.mrr for row in rows] == [D("89.00"), D("94.00"), D("99.00")]
