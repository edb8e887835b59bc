"""An upcoming-invoice preview reads as the invoice will be printed: every line (the period's usage,
the next period's fee, the discount) in the customer's language, whoever asks for it and in whatever
language (the portal, the staff API, the admin)."""

import re
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import translation
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import CouponFactory, PlanFactory, ProductFactory, add_charge
from apps.core import clock
from apps.core.errors import ApplicationError
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")


@pytest.fixture
def subscription():
    """A Chinese customer on a hybrid plan (a 10.00 monthly platform fee billed in advance, data transfer
    in arrears at 0.10 a GB up to 100 GB then 0.05), 120 GB used in October, 10 % off the next invoice."""
    billable_metric_create(code="transfer_gb", name="数据传输", aggregation="sum", field_name="gb")
    plan = PlanFactory(product=ProductFactory(name="云加速"), name="标准版", prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="平台费", price_model="flat", amount=D("10.00"))
    add_charge(
        version, name="数据传输", kind="usage", metric_code="transfer_gb", price_model="graduated", amount=0,
        tiers=[("100", "0.10", "0"), (None, "0.05", "0")],
    )  # fmt: skip
    customer = CustomerFactory(currency="USD", country="US", state="", external_id="lin", preferred_language="zh-hans")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 10, 1))
    usage_events_ingest(
        events=[{"transaction_id": "t-1", "external_customer_id": "lin", "metric_code": "transfer_gb",
                 "timestamp": utc(2026, 10, 10).isoformat(), "properties": {"gb": "120"}}],
        now=utc(2026, 10, 10, 1),
    )  # fmt: skip
    coupon_redeem(
        coupon=CouponFactory(code="q1", name="开业", percent_off=D("10"), duration="once"), subscription=subscription,
        now=utc(2026, 10, 11),
    )  # fmt: skip
    return subscription


def _texts(lines) -> list[str]:
    return [text for line in lines for text in (line.description, *line.explanation)]


def test_every_line_of_a_chinese_customers_preview_asked_for_in_english_is_chinese(subscription):
    with translation.override("en"):
        upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 10, 20))

    # Usage: 100 × 0.10 + 20 × 0.05 = 11.00; November's fee 10.00; 10 % off 21.00 = −2.10.
    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("usage", D("11.00")), ("recurring", D("10.00")), ("discount", D("-2.10")),
    ]  # fmt: skip
    assert upcoming.total == D("18.90")
    texts = _texts(upcoming.lines)
    assert [text for text in texts if ENGLISH_WORD.search(text)] == []
    assert upcoming.lines[1].description == "云加速 — 标准版: 平台费（按月）"

    # The billing run writes the same lines.
    with translation.override("en"):
        bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 11, 1))
    assert [(line.description, line.amount.amount) for line in invoice.lines.order_by("position")] == [
        (line.description, line.amount) for line in upcoming.lines
    ]


def test_the_staff_api_answers_in_english_with_the_lines_in_the_customers_language(api_client, superuser, subscription):
    api_client.force_authenticate(superuser)
    with clock.frozen_at(utc(2026, 10, 20)):
        response = api_client.get(
            reverse("api:subscription-upcoming-invoice", args=[subscription.pk]), HTTP_ACCEPT_LANGUAGE="en"
        )
    assert response.status_code == 200, response.data
    lines = response.json()["lines"]
    assert [line["kind"] for line in lines] == ["usage", "recurring", "discount"]
    texts = [text for line in lines for text in (line["description"], *line["explanation"])]
    assert [text for text in texts if ENGLISH_WORD.search(text)] == []


def test_a_refusal_of_the_preview_answers_in_the_language_of_the_request(subscription):
    """A plan version without a price in the customer's currency: the refusal reads in the asker's words."""
    version = subscription.plan_version
    version.charges.get(name="平台费").prices.update(currency="EUR")
    with translation.override("en"), pytest.raises(ApplicationError) as refused:
        subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 10, 20))
    assert "has no price in USD" in str(refused.value)


def test_an_english_customers_preview_asked_for_in_chinese_stays_english():
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("40.00", "USD")])
    customer = CustomerFactory(currency="USD", country="US", state="")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 5, 1))
    coupon_redeem(
        coupon=CouponFactory(name="Launch", percent_off=D("10"), duration="once"), subscription=subscription,
        now=utc(2026, 5, 2),
    )  # fmt: skip
    with translation.override("zh-hans"):
        upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 5, 3))
    assert [(line.description, line.amount) for line in upcoming.lines] == [
        ("Chat — Team (monthly)", D("40.00")),
        (upcoming.lines[1].description, D("-4.00")),
    ]
    assert not re.search(r"[\u4e00-\u9fff]", "".join(_texts(upcoming.lines)))
