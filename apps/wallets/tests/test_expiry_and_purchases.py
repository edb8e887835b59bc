"""Credits expire as explicit ledger entries (idempotent), purchases grant their credits once the
invoice is paid (exactly once), and an automatic top-up is charged to the default card."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.core.errors import InvalidTransition, ValidationFailed
from apps.invoices.constants import BillingReason, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import TaxRate
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid, payment_create_pending, payment_mark_succeeded
from apps.payments.stripe.collection import invoice_collect
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.factories import make_customer
from apps.payments.tests.stripe.helpers import CARD_OK, setup_intent_confirm
from apps.subscriptions.periods import utc
from apps.wallets.constants import PurchaseStatus, PurchaseTrigger, WalletEntryKind
from apps.wallets.models import CreditPurchase, WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.expiry import wallet_credits_expire
from apps.wallets.services.ledger import wallet_grant
from apps.wallets.services.purchases import wallet_purchase, wallet_top_up
from apps.wallets.tasks import wallet_top_up_task

from .factories import make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


def test_credits_left_on_their_expiry_day_leave_as_an_expiry_entry_once():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.50")
    lot = wallet_grant(wallet_id=wallet.pk, credits="50", category="promotion", reason="Spring offer",
                       expires_on=date(2026, 2, 1), now=utc(2026, 1, 1))  # fmt: skip
    wallet_grant(wallet_id=wallet.pk, credits="8", category="goodwill", reason="Kept", now=utc(2026, 1, 1))
    # 10.00 due: the lot expiring first pays it, 20 credits (20 × 0.50).
    make_manual_invoice(customer=customer, lines=[("Consulting", "1", "10.00")], now=utc(2026, 1, 10))

    assert wallet_credits_expire(now=utc(2026, 1, 31, 23, 59)) == []
    [expiry] = wallet_credits_expire(now=utc(2026, 2, 1, 0, 1))

    assert (expiry.kind, expiry.lot_id, expiry.credits, expiry.amount) == (
        WalletEntryKind.EXPIRY, lot.pk, Decimal("-30"), Money("-15.00", "USD"),
    )  # fmt: skip
    assert expiry.reason == "Expired on 2026-02-01."
    assert wallet_balance(wallet=wallet) == Decimal(8)
    assert wallet_credits_expire(now=utc(2026, 2, 2)) == []  # idempotent
    assert WalletEntry.objects.filter(kind=WalletEntryKind.EXPIRY).count() == 1


def test_a_purchase_invoice_carries_no_tax_and_grants_its_credits_once_paid_by_hand():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    customer = make_customer(currency="USD", country="DE")
    wallet = make_wallet(customer, rate="0.05")

    purchase = wallet_purchase(wallet_id=wallet.pk, credits="1000", expires_on=date(2027, 1, 1), now=utc(2026, 1, 5))

    invoice = purchase.invoice
    assert (invoice.billing_reason, invoice.status) == (BillingReason.CREDIT_PURCHASE, InvoiceStatus.OPEN)
    [line] = invoice.lines.all()
    assert (line.kind, line.description, line.quantity, line.amount) == (
        InvoiceLineKind.CREDIT_PURCHASE, "Prepaid credits: 1,000 credits (Main)", Decimal(1000), Money("50.00", "USD"),
    )  # fmt: skip
    # A prepayment: no VAT now (it is charged on the invoices the credits pay).
    assert (invoice.tax_total.amount, invoice.total.amount) == (Decimal(0), Decimal("50.00"))
    assert wallet_balance(wallet=wallet) == Decimal(0)

    invoice_mark_paid(invoice_id=invoice.pk, reference="BANK-1", now=utc(2026, 1, 8))

    [entry] = WalletEntry.objects.all()
    assert (entry.kind, entry.credits, entry.amount, entry.expires_on, entry.invoice_id) == (
        WalletEntryKind.PURCHASE, Decimal(1000), Money("50.00", "USD"), date(2027, 1, 1), invoice.pk,
    )  # fmt: skip
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.GRANTED
    with pytest.raises(InvalidTransition):
        invoice_mark_paid(invoice_id=invoice.pk, reference="BANK-2", now=utc(2026, 1, 9))
    assert wallet_balance(wallet=wallet) == Decimal(1000)


def test_a_payment_event_delivered_twice_grants_the_credits_once():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    purchase = wallet_purchase(wallet_id=wallet.pk, credits="25", now=utc(2026, 1, 5))
    payment = payment_create_pending(
        customer_id=customer.pk, invoice_ids=[purchase.invoice_id], amount=None, provider="stripe", method="card",
        idempotency_key="twice",
    )  # fmt: skip

    payment_mark_succeeded(payment_id=payment.pk, provider_payment_id="pi_1")
    payment_mark_succeeded(payment_id=payment.pk, provider_payment_id="pi_1")

    assert WalletEntry.objects.filter(kind=WalletEntryKind.PURCHASE).count() == 1
    assert wallet_balance(wallet=wallet) == Decimal(25)


def test_a_purchase_is_never_paid_with_credits_and_bad_input_is_refused():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    wallet_grant(wallet_id=wallet.pk, credits="100", category="promotion", reason="Offer", now=utc(2026, 1, 1))

    purchase = wallet_purchase(wallet_id=wallet.pk, credits="10", now=utc(2026, 1, 5))

    assert purchase.invoice.total == Money("10.00", "USD")
    assert purchase.invoice.status == InvoiceStatus.OPEN
    with pytest.raises(ValidationFailed) as error:
        wallet_purchase(wallet_id=wallet.pk, credits="0.00001", expires_on=date(2026, 1, 1), now=utc(2026, 1, 5))
    assert set(error.value.fields) == {"credits", "expires_on"}
    assert CreditPurchase.objects.count() == 1


def _customer_with_card():
    customer = make_customer(currency="USD", collection_method="send_invoice")
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])
    return customer


def test_falling_under_the_threshold_buys_a_top_up_charged_to_the_default_card(
    localstripe, django_capture_on_commit_callbacks, monkeypatch
):
    customer = _customer_with_card()
    wallet = make_wallet(
        customer, rate="0.10", top_up_threshold=Decimal(100), top_up_credits=Decimal(500), top_up_valid_days=365
    )
    wallet_grant(wallet_id=wallet.pk, credits="300", category="promotion", reason="Offer", now=utc(2026, 1, 1))

    # 25.00 due takes 250 credits: 50 left, under the threshold of 100.
    queued = []
    monkeypatch.setattr(wallet_top_up_task, "delay", lambda wallet_id: queued.append(wallet_id))
    with django_capture_on_commit_callbacks(execute=True):
        make_manual_invoice(customer=customer, lines=[("Consulting", "1", "25.00")], now=utc(2026, 1, 10))
    assert wallet_balance(wallet=wallet) == Decimal(50)
    assert queued == [wallet.pk]

    purchase = wallet_top_up(wallet_id=wallet.pk, now=utc(2026, 1, 10))

    assert purchase is not None
    assert (purchase.trigger, purchase.credits, purchase.expires_on) == (
        PurchaseTrigger.AUTO_TOP_UP, Decimal(500), date(2027, 1, 10),
    )  # fmt: skip
    invoice = purchase.invoice
    assert (invoice.collection_method, invoice.total) == ("charge_automatically", Money("50.00", "USD"))
    assert wallet_top_up(wallet_id=wallet.pk, now=utc(2026, 1, 10)) is None  # one waits already

    invoice_collect(invoice_id=invoice.pk, attempt=1)

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert wallet_balance(wallet=wallet) == Decimal(550)
    assert wallet_top_up_task.run(wallet.pk) is None  # above the threshold again


def test_credits_expiring_under_the_threshold_queue_a_top_up(django_capture_on_commit_callbacks, monkeypatch):
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00", top_up_threshold=Decimal(10), top_up_credits=Decimal(50))
    wallet_grant(wallet_id=wallet.pk, credits="20", category="promotion", reason="Offer", expires_on=date(2026, 2, 1),
                 now=utc(2026, 1, 1))  # fmt: skip
    queued = []
    monkeypatch.setattr(wallet_top_up_task, "delay", lambda wallet_id: queued.append(wallet_id))

    with django_capture_on_commit_callbacks(execute=True):
        wallet_credits_expire(now=utc(2026, 2, 1))

    assert queued == [wallet.pk]


def test_credits_of_a_customer_on_a_test_clock_expire_by_its_clock_not_the_real_one():
    from apps.accounts.models import SimulatedClock
    from apps.billing.services.simulated_clocks import simulated_clock_advance
    from apps.core import clock

    test_clock = SimulatedClock.objects.create(name="Prepaid walk-through", frozen_at=utc(2026, 1, 1))
    customer = make_customer(currency="USD", test_clock=test_clock)
    real = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    # Granted on the customer's clock (1 Jan 2026), not the real day: a date after it is accepted.
    lot = wallet_grant(wallet_id=wallet.pk, credits="10", category="promotion", reason="Offer",
                       expires_on=date(2026, 2, 1))  # fmt: skip
    assert lot.occurred_at == utc(2026, 1, 1)
    real_wallet = make_wallet(real, rate="1.00")
    wallet_grant(wallet_id=real_wallet.pk, credits="7", category="promotion", reason="Offer",
                 expires_on=date(2026, 2, 1), now=utc(2026, 1, 1))  # fmt: skip

    # The daily task runs on the real clock: the real customer's lot expires, the simulated one's
    # does not (its clock is still in January).
    with clock.frozen_at(utc(2026, 2, 1, 0, 1)):
        expired = wallet_credits_expire()
    assert [entry.wallet_id for entry in expired] == [real_wallet.pk]
    assert wallet_balance(wallet=wallet) == Decimal(10)

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 31, 23))
    assert wallet_balance(wallet=wallet) == Decimal(10)  # the day has not come on its clock
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 2, 3))

    [expiry] = WalletEntry.objects.filter(wallet=wallet, kind=WalletEntryKind.EXPIRY)
    assert (expiry.credits, expiry.occurred_at) == (Decimal(-10), utc(2026, 2, 1))  # at the start of its day
    assert wallet_balance(wallet=wallet) == Decimal(0)
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 1))  # nothing more to expire
    assert WalletEntry.objects.filter(wallet=wallet, kind=WalletEntryKind.EXPIRY).count() == 1
