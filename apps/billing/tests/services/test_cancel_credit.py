"""Cancel now with a credit for the unused time: the credit waits on the customer's account and is
taken off the next invoices, never below zero."""

from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import (
    bill_due_subscriptions,
    subscription_cancel_with_credit,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.core.errors import InvalidTransition
from apps.invoices.models import Invoice, InvoiceItem
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def test_the_credit_goes_on_the_next_invoices_of_the_customer_never_below_zero():
    customer = CustomerFactory(currency="USD")
    big = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("90.00", "USD")]), now=utc(2026, 4, 1))
    small = subscription_start(customer=customer, plan=PlanFactory(prices=[Money("25.00", "USD")]), now=utc(2026, 4, 1))

    result = subscription_cancel_with_credit(subscription_id=big.pk, reason="Moving on", now=utc(2026, 4, 11))

    assert [line.amount for line in result.preview.lines] == [Decimal("-60.00")]  # 20 of 30 days of 90.00
    big.refresh_from_db()
    assert (big.status, big.ended_at) == (SubscriptionStatus.CANCELED, utc(2026, 4, 11))
    upcoming = subscription_upcoming_invoice(subscription_id=small.pk, now=utc(2026, 4, 20))
    assert [(line.kind, line.amount) for line in upcoming.lines] == [
        ("recurring", Decimal("25.00")),
        ("proration", Decimal("-25.00")),
    ]

    bill_due_subscriptions(now=utc(2026, 6, 1, 1))

    may, june = Invoice.objects.filter(subscription=small, period_start_at__gte=utc(2026, 5, 1)).order_by(
        "period_start_at"
    )
    july_credit = InvoiceItem.objects.get(invoice=None)
    assert (may.total, june.total) == (Money("0.00", "USD"), Money("0.00", "USD"))
    assert june.lines.get(kind="proration").explanation[-1] == (
        "Credit of 35.00 USD: 25.00 USD taken here, the rest on the next invoice."
    )
    assert july_credit.amount == Money("-10.00", "USD")  # 60.00 - 25.00 - 25.00 still waiting
    assert big.invoices.count() == 1  # nothing more billed on the canceled subscription


def test_canceling_with_credit_twice_is_refused():
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=PlanFactory(prices=[Money("30.00", "USD")]), now=utc(2026, 4, 1)
    )
    subscription_cancel_with_credit(subscription_id=subscription.pk, now=utc(2026, 4, 11))

    with pytest.raises(InvalidTransition):
        subscription_cancel_with_credit(subscription_id=subscription.pk, now=utc(2026, 4, 12))
    assert InvoiceItem.objects.count() == 1


def test_api_cancel_now_with_credit(api_client, superuser):
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=PlanFactory(prices=[Money("30.00", "USD")]), now=utc(2026, 4, 1)
    )
    api_client.force_authenticate(superuser)
    url = reverse("api:subscription-cancel", args=[subscription.pk])

    refused = api_client.post(url, {"at_period_end": True, "prorate": True})
    with clock.frozen_at(utc(2026, 4, 16)):
        done = api_client.post(url, {"at_period_end": False, "prorate": True})

    assert refused.status_code == 400
    assert "prorate" in refused.json()["fields"]
    assert done.status_code == 200, done.data
    assert done.json()["status"] == "canceled"
    assert InvoiceItem.objects.get().amount == Money("-15.00", "USD")


def test_admin_cancel_now_with_credit_is_previewed(client, superuser):
    subscription = subscription_start(
        customer=CustomerFactory(currency="USD"), plan=PlanFactory(prices=[Money("30.00", "USD")]), now=utc(2026, 4, 1)
    )
    client.force_login(superuser)
    url = reverse("admin:subscriptions_subscription_cancel", args=[subscription.pk])

    with clock.frozen_at(utc(2026, 4, 16)):
        preview = client.post(url, {"when": "now", "prorate": "on"})
        assert not InvoiceItem.objects.exists()
        done = client.post(url, {"when": "now", "prorate": "on", "confirm": "1"}, follow=True)

    assert "-15.00" in preview.content.decode()
    assert [str(m) for m in done.context["messages"]] == ["Canceled now; 15.00 USD credited to the customer."]
