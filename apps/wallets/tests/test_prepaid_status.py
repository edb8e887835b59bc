"""A prepaid customer running out of credits, and having credits again, is one webhook event per
transition (`customer.prepaid_credits_exhausted`, `customer.prepaid_credits_restored`)."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.alerts.selectors import customer_spend_status
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.models import PrepaidStatusChange
from apps.wallets.services.expiry import wallet_credits_expire
from apps.wallets.services.ledger import wallet_grant, wallet_lot_void
from apps.wallets.services.purchases import wallet_purchase
from apps.webhooks.models import WebhookEvent
from apps.webhooks.services import webhook_events_collect

from .factories import make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


def _changes(customer) -> list[tuple[bool, Decimal]]:
    return list(
        PrepaidStatusChange.objects.filter(customer=customer).order_by("id").values_list("credits_exhausted", "credits")
    )


def test_running_out_and_a_grant_are_one_event_each():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.50")
    webhook_events_collect(now=utc(2026, 1, 1))  # the sources' cursors start here
    # The first grant only records the state: a customer that never had credits has not run out.
    wallet_grant(wallet_id=wallet.pk, credits="40", category="promotion", reason="Offer", now=utc(2026, 1, 1))
    assert _changes(customer) == []

    # 40 credits × 0.50 = 20.00: a 15.00 invoice leaves 10 credits, a 12.00 one takes the last 5.00.
    make_manual_invoice(customer=customer, lines=[("Consulting", "1", "15.00")], now=utc(2026, 1, 5))
    assert _changes(customer) == []
    last = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "12.00")], now=utc(2026, 1, 6))
    assert last.total.amount == Decimal("7.00")
    assert _changes(customer) == [(True, Decimal(0))]
    make_manual_invoice(customer=customer, lines=[("Consulting", "1", "3.00")], now=utc(2026, 1, 7))
    assert _changes(customer) == [(True, Decimal(0))]  # still none: no second event
    assert customer_spend_status(customer=customer).prepaid_credits_exhausted is True

    wallet_grant(wallet_id=wallet.pk, credits="6", category="goodwill", reason="Sorry", now=utc(2026, 1, 8))
    wallet_grant(wallet_id=wallet.pk, credits="4", category="goodwill", reason="More", now=utc(2026, 1, 8))
    assert _changes(customer) == [(True, Decimal(0)), (False, Decimal(6))]

    webhook_events_collect(now=utc(2026, 1, 9))
    prepaid = WebhookEvent.objects.filter(type__startswith="customer.prepaid").order_by("id")
    events = list(prepaid.values_list("type", "object_type", "object_id"))
    assert events == [
        ("customer.prepaid_credits_exhausted", "customer", customer.pk),
        ("customer.prepaid_credits_restored", "customer", customer.pk),
    ]
    exhausted = WebhookEvent.objects.get(type="customer.prepaid_credits_exhausted")
    assert exhausted.data["object"] == {"id": customer.pk, "object": "customer", "prepaid_credits_exhausted": True}
    assert exhausted.data["details"]["change"]["credits"] == "0"
    restored = WebhookEvent.objects.get(type="customer.prepaid_credits_restored")
    assert restored.data["details"]["change"]["credits"] == "6"
    webhook_events_collect(now=utc(2026, 1, 10))
    assert prepaid.count() == 2  # collected once


def test_expiry_and_void_run_a_customer_out_and_a_paid_purchase_restores_it():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    other = make_wallet(customer, name="Second", rate="1.00")
    expiring = wallet_grant(wallet_id=wallet.pk, credits="10", category="promotion", reason="Offer",
                            expires_on=date(2026, 2, 1), now=utc(2026, 1, 1))  # fmt: skip
    kept = wallet_grant(wallet_id=other.pk, credits="5", category="goodwill", reason="Kept", now=utc(2026, 1, 1))

    wallet_credits_expire(now=utc(2026, 2, 1, 0, 1))
    assert _changes(customer) == []  # 5 credits are left in the other wallet
    wallet_lot_void(entry_id=kept.pk, reason="Granted by mistake", now=utc(2026, 2, 2))
    assert _changes(customer) == [(True, Decimal(0))]
    assert expiring.pk  # (expired: its credits left as an expiry entry)

    purchase = wallet_purchase(wallet_id=wallet.pk, credits="20", now=utc(2026, 2, 3))
    assert _changes(customer) == [(True, Decimal(0))]  # bought, not yet paid
    invoice_mark_paid(invoice_id=purchase.invoice_id, now=utc(2026, 2, 4))
    assert _changes(customer) == [(True, Decimal(0)), (False, Decimal(20))]
    assert customer_spend_status(customer=customer).prepaid_credits_exhausted is False
