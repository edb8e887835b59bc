"""Prepaid credits pay an invoice at its finalization: after the customer's money balance, soonest
expiry first across wallets (then the wallet's priority), each wallet on a line of its own, taken off
the total after tax, never below zero; the card is charged for what is left."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.billing.services import subscription_start
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import ValidationFailed
from apps.invoices.constants import InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, TaxRate
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.constants import PaymentStatus
from apps.payments.stripe.collection import invoice_collect
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.tests.factories import make_customer
from apps.payments.tests.stripe.helpers import CARD_OK, setup_intent_confirm
from apps.subscriptions.periods import utc
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.ledger import wallet_grant, wallet_lot_void

from .factories import make_wallet, money_balance_credit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


def _lines(invoice):
    return [
        (line.kind, line.description, line.quantity, line.amount.amount) for line in invoice.lines.order_by("position")
    ]


def _german_customer(**kwargs):
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    return make_customer(currency="USD", country="DE", **kwargs)


def _attach_card(customer):
    intent = stripe_setup_intent_create(customer_id=customer.pk)
    setup_intent_confirm(intent["id"], CARD_OK)
    stripe_payment_method_attach(customer_id=customer.pk, setup_intent_id=intent["id"])


def test_credits_pay_a_subscription_invoice_in_expiry_order_before_the_card_is_charged(localstripe):
    customer = _german_customer(collection_method="charge_automatically")
    _attach_card(customer)
    main = make_wallet(customer, "Main", rate="0.50", priority=2)
    promo = make_wallet(customer, "Promo", rate="1.00", priority=1)
    day = utc(2025, 12, 20)
    soon = wallet_grant(wallet_id=main.pk, credits="100", category="goodwill", reason="Outage on 18 December",
                        expires_on=date(2026, 1, 20), now=day)  # fmt: skip
    later = wallet_grant(wallet_id=promo.pk, credits="30", category="promotion", reason="Launch offer",
                         expires_on=date(2026, 3, 1), now=day)  # fmt: skip
    never = wallet_grant(wallet_id=main.pk, credits="40", category="promotion", reason="Welcome", now=day)
    money_balance_credit(customer, "10.00", created_at=day)
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])  # per seat, monthly

    subscription = subscription_start(customer=customer, plan=plan, quantity=10, now=utc(2026, 1, 1))

    invoice = Invoice.objects.get(subscription=subscription)
    # 10 seats × 10.00 = 100.00, VAT 19% = 19.00, total 119.00; the money balance (10.00) comes off
    # when the draft is built: 109.00 left. Credits at finalization, soonest expiry first:
    #   Main's lot expiring 20 Jan: 100 credits × 0.50 = 50.00 (all of it)  → 59.00 left
    #   Promo's lot expiring 1 Mar:  30 credits × 1.00 = 30.00 (all of it)  → 29.00 left
    #   Main's lot that never expires: 40 credits × 0.50 = 20.00 (all of it) → 9.00 due, by card.
    assert _lines(invoice) == [
        (InvoiceLineKind.RECURRING, "Chat — Team (monthly)", Decimal(10), Decimal("100.00")),
        (InvoiceLineKind.PAYMENT_CREDIT, "Credit from payment", Decimal(1), Decimal("-10.00")),
        (InvoiceLineKind.PREPAID_CREDITS, "Prepaid credits: Main", Decimal(140), Decimal("-70.00")),
        (InvoiceLineKind.PREPAID_CREDITS, "Prepaid credits: Promo", Decimal(30), Decimal("-30.00")),
    ]
    assert (invoice.subtotal.amount, invoice.tax_total.amount, invoice.total.amount) == (
        Decimal("-10.00"), Decimal("19.00"), Decimal("9.00"),
    )  # fmt: skip
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.amount_due == Money("9.00", "USD")
    consumed = WalletEntry.objects.filter(kind=WalletEntryKind.CONSUMPTION).order_by("id")
    assert [(entry.lot_id, entry.credits, entry.amount.amount) for entry in consumed] == [
        (soon.pk, Decimal("-100"), Decimal("-50.00")),
        (later.pk, Decimal("-30"), Decimal("-30.00")),
        (never.pk, Decimal("-40"), Decimal("-20.00")),
    ]
    assert {entry.invoice_id for entry in consumed} == {invoice.pk}
    assert (wallet_balance(wallet=main), wallet_balance(wallet=promo)) == (Decimal(0), Decimal(0))

    payment = invoice_collect(invoice_id=invoice.pk, attempt=1)

    assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, Money("9.00", "USD"))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_part_of_a_lot_pays_what_is_due_and_the_rest_stays(settings):
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.04")
    lot = wallet_grant(wallet_id=wallet.pk, credits="1000", category="promotion", reason="Trial", now=utc(2026, 1, 1))

    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "12.34")], now=utc(2026, 1, 15))

    # 12.34 / 0.04 = 308.5 credits; 1000 × 0.04 = 40.00 available.
    assert invoice.status == InvoiceStatus.PAID  # nothing left to pay
    assert _lines(invoice)[1] == (
        InvoiceLineKind.PREPAID_CREDITS,
        "Prepaid credits: Main",
        Decimal("308.5"),
        Decimal("-12.34"),
    )
    assert invoice.total.amount == Decimal("0.00")
    assert wallet_balance(wallet=wallet) == Decimal("691.5")
    # The rest of the lot is worth the rest of its money: 40.00 − 12.34 = 27.66.
    void = wallet_lot_void(entry_id=lot.pk, reason="Closing the account", now=utc(2026, 1, 16))
    assert (void.credits, void.amount.amount) == (Decimal("-691.5"), Decimal("-27.66"))
    assert wallet_balance(wallet=wallet) == Decimal(0)


def test_lots_of_the_same_expiry_day_go_by_wallet_priority():
    customer = make_customer(currency="USD")
    low = make_wallet(customer, "Low first", priority=1)
    high = make_wallet(customer, "High", priority=5)
    expires = date(2026, 6, 1)
    wallet_grant(
        wallet_id=high.pk, credits="50", category="promotion", reason="A", expires_on=expires, now=utc(2026, 1, 1)
    )
    wallet_grant(
        wallet_id=low.pk, credits="50", category="promotion", reason="B", expires_on=expires, now=utc(2026, 1, 2)
    )

    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "70.00")], now=utc(2026, 1, 15))

    assert [line[1:] for line in _lines(invoice)[1:]] == [
        ("Prepaid credits: Low first", Decimal(50), Decimal("-50.00")),
        ("Prepaid credits: High", Decimal(20), Decimal("-20.00")),
    ]
    assert (wallet_balance(wallet=low), wallet_balance(wallet=high)) == (Decimal(0), Decimal(30))


def test_credits_expiring_on_the_day_of_the_invoice_are_not_used():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer)
    wallet_grant(wallet_id=wallet.pk, credits="50", category="promotion", reason="A", expires_on=date(2026, 1, 15),
                 now=utc(2026, 1, 1))  # fmt: skip

    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "70.00")], now=utc(2026, 1, 15, 9))

    assert invoice.total.amount == Decimal("70.00")
    assert not WalletEntry.objects.filter(kind=WalletEntryKind.CONSUMPTION).exists()


def test_a_customer_with_credits_is_billed_one_by_one_where_credits_are_applied():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer)
    wallet_grant(wallet_id=wallet.pk, credits="5", category="goodwill", reason="Sorry", now=utc(2025, 12, 1))
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 1, 1))
    assert wallet_balance(wallet=wallet) == Decimal(0)  # the first invoice took them
    wallet_grant(wallet_id=wallet.pk, credits="5", category="goodwill", reason="Sorry again", now=utc(2026, 1, 10))

    outcome = billing_chunk_bill(subscription_ids=[subscription.pk], now=utc(2026, 2, 1, 1))

    assert outcome.one_by_one_ids == [subscription.pk]


def test_ledger_entries_are_append_only():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer)
    entry = wallet_grant(wallet_id=wallet.pk, credits="5", category="goodwill", reason="Sorry", now=utc(2026, 1, 1))
    entry.reason = "changed"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        WalletEntry.objects.filter(pk=entry.pk).update(reason="changed")
    from django.db import IntegrityError, connection, transaction

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE wallets_walletentry SET credits = 500 WHERE id = %s", [entry.pk])
    assert WalletEntry.objects.get(pk=entry.pk).credits == Decimal(5)


def test_a_grant_without_a_reason_or_with_a_past_expiry_is_refused_and_nothing_is_written():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer)
    with pytest.raises(ValidationFailed) as error:
        wallet_grant(wallet_id=wallet.pk, credits="-5", category="gift", reason=" ", expires_on=date(2025, 12, 1),
                     now=utc(2026, 1, 1))  # fmt: skip
    assert set(error.value.fields) == {"credits", "category", "reason", "expires_on"}
    assert not WalletEntry.objects.exists()


def test_a_cent_of_a_very_dear_credit_takes_the_smallest_part_of_a_credit():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1000.00")
    wallet_grant(wallet_id=wallet.pk, credits="1", category="promotion", reason="Offer", now=utc(2026, 1, 1))

    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "0.01")], now=utc(2026, 1, 15))

    # 0.01 / 1000 = 0.00001 credits, below the 4 decimals credits are counted to: 0.0001 is taken.
    assert _lines(invoice)[1][2:] == (Decimal("0.0001"), Decimal("-0.01"))
    assert wallet_balance(wallet=wallet) == Decimal("0.9999")
