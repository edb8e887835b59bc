from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.models import InvoiceItem
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    basic = PlanFactory(name="Basic", product__name="Hosting", prices=[Money("30.00", "USD")])
    PlanFactory(name="Pro", code="pro", product=basic.product, prices=[Money("60.00", "USD")])
    return subscription_start(customer=CustomerFactory(currency="USD"), plan=basic, now=utc(2026, 4, 1))


def _url(name, subscription):
    return reverse(f"admin:subscriptions_subscription_{name}", args=[subscription.pk])


def test_the_subscription_page_offers_operations_the_upcoming_invoice_and_a_timeline(client, superuser, subscription):
    client.force_login(superuser)

    with clock.frozen_at(utc(2026, 4, 10)):
        page = client.get(_url("change", subscription))

    body = page.content.decode()
    assert page.status_code == 200
    for element in ('id="subscription-change_plan"', 'id="subscription-cancel"', 'id="subscription-pause"',
                    'id="upcoming-invoice"', 'id="subscription-timeline"'):  # fmt: skip
        assert element in body
    assert "Hosting — Basic (monthly)" in body
    assert "Invoice INV-" in body  # the first invoice is on the timeline


def test_change_is_previewed_then_confirmed(client, superuser, subscription):
    client.force_login(superuser)
    pro = subscription.plan.product.plans.get(code="pro")
    data = {"plan": pro.pk, "timing": "now", "proration": "prorate"}

    with clock.frozen_at(utc(2026, 4, 10)):
        preview = client.post(_url("change_plan", subscription), data)
        assert InvoiceItem.objects.count() == 0  # a preview changes nothing
        done = client.post(_url("change_plan", subscription), {**data, "confirm": "1"}, follow=True)

    assert 'id="operation-preview"' in preview.content.decode()
    assert "-21.00 USD" in preview.content.decode() and "42.00 USD" in preview.content.decode()
    assert [str(m) for m in done.context["messages"]] == ["Changed; 2 proration line(s) go on the next invoice."]
    subscription.refresh_from_db()
    assert subscription.plan == pro


def test_a_refused_change_is_a_form_error_and_changes_nothing(client, superuser, subscription):
    client.force_login(superuser)

    with clock.frozen_at(utc(2026, 4, 10)):
        response = client.post(
            _url("change_plan", subscription), {"quantity": 1, "timing": "now", "proration": "prorate", "confirm": "1"}
        )

    assert response.status_code == 200
    assert "Nothing to change" in response.content.decode()
    assert InvoiceItem.objects.count() == 0


def test_cancel_at_period_end_then_undo(client, superuser, subscription):
    client.force_login(superuser)

    with clock.frozen_at(utc(2026, 4, 10)):
        client.post(_url("cancel", subscription), {"when": "period_end", "reason": "Too dear", "confirm": "1"})
        subscription.refresh_from_db()
        assert subscription.cancel_at_period_end
        client.post(_url("cancel_undo", subscription))

    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end


def test_pause_and_resume(client, superuser, subscription):
    client.force_login(superuser)

    with clock.frozen_at(utc(2026, 4, 11)):
        client.post(_url("pause", subscription), {"prorate": "on", "confirm": "1"})
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAUSED
    assert InvoiceItem.objects.get().amount == Money(Decimal("-20.00"), "USD")

    with clock.frozen_at(utc(2026, 5, 2)):
        done = client.post(_url("resume", subscription), {"confirm": "1"}, follow=True)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert str(list(done.context["messages"])[-1]).startswith("Resumed; INV-")


def test_operations_need_change_permission(client, make_staff, subscription):
    client.force_login(make_staff("subscriptions.view_subscription"))

    response = client.post(_url("cancel", subscription), {"when": "now", "confirm": "1"})

    assert response.status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
