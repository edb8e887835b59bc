"""Credits an invoice consumed go back to the wallet when it is credited (pro rata to the charges
credited) or voided, as `return` entries that keep the expiry of the credits they were — see
docs/credits.md, "Credit notes and voids give credits back", whose worked example this is."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.core import clock
from apps.core.errors import InvalidTransition
from apps.invoices.constants import InvoiceStatus
from apps.invoices.services.credit_notes import CreditNoteLineRequest, credit_note_issue, credit_note_void
from apps.invoices.services.lifecycle import invoice_void
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.payments.tests.factories import make_customer
from apps.reports.models import RevenueMonth
from apps.reports.services import revenue_months_rebuild
from apps.subscriptions.periods import utc
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import PrepaidStatusChange, WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.expiry import wallet_credits_expire
from apps.wallets.services.ledger import wallet_grant
from apps.wallets.services.purchases import wallet_purchase

from .factories import make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


def _returns(invoice) -> list[tuple]:
    return [
        (entry.returned_from.kind, entry.credits, entry.amount.amount, entry.expires_on)
        for entry in WalletEntry.objects.filter(kind=WalletEntryKind.RETURN, invoice=invoice)
        .select_related("returned_from")
        .order_by("id")
    ]


def test_a_partial_then_a_full_credit_note_give_the_credits_back_pro_rata_within_their_expiry():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    purchase = wallet_purchase(wallet_id=wallet.pk, credits="50", now=utc(2026, 1, 5))
    with clock.frozen_at(utc(2026, 1, 6)):
        invoice_mark_paid(invoice_id=purchase.invoice_id, reference="BANK-7", now=utc(2026, 1, 6))
    wallet_grant(wallet_id=wallet.pk, credits="30", category="promotion", reason="Offer",
                 expires_on=date(2026, 3, 1), now=utc(2026, 1, 7))  # fmt: skip
    invoice = make_manual_invoice(
        customer=customer, lines=[("Build", "1", "60.00"), ("Support", "1", "40.00")], now=utc(2026, 2, 10)
    )
    assert invoice.total.amount == Decimal("20.00")  # 30 granted + 50 bought credits paid 80.00
    assert wallet_balance(wallet=wallet) == Decimal(0)
    support = invoice.lines.get(description="Support")

    # 15 Feb: the support line (40.00 of 100.00 of charges, 2/5) is credited.
    partial = credit_note_issue(
        invoice_id=invoice.pk, reason="order_change", lines=[CreditNoteLineRequest(invoice_line_id=support.pk)],
        now=utc(2026, 2, 15),
    )  # fmt: skip

    # Money: 40.00 less 2/5 of the 80.00 the credits paid = 8.00. Credits: 2/5 of each lot back.
    assert partial.total == Money("8.00", "USD")
    assert _returns(invoice) == [
        (WalletEntryKind.GRANT, Decimal(12), Decimal("12.00"), date(2026, 3, 1)),
        (WalletEntryKind.PURCHASE, Decimal(20), Decimal("20.00"), None),
    ]
    assert wallet_balance(wallet=wallet) == Decimal(32)
    # The customer had run out (the invoice took every credit); the credit note made it usable again.
    assert list(PrepaidStatusChange.objects.order_by("id").values_list("credits_exhausted", flat=True)) == [
        True,
        False,
    ]

    # 1 Mar: the 12 granted credits given back expire with their lot.
    [expired] = wallet_credits_expire(now=utc(2026, 3, 1, 0, 1))
    assert (expired.credits, expired.lot.kind) == (Decimal(-12), WalletEntryKind.RETURN)

    # 5 Mar: the rest is credited. The last 18 granted credits are past their expiry: they come back
    # and expire at once; the 30 bought ones come back for good.
    full = credit_note_issue(invoice_id=invoice.pk, reason="order_change", full=True, now=utc(2026, 3, 5))
    assert full.total == Money("12.00", "USD")  # 60.00 less the other 48.00 the credits paid
    assert _returns(invoice)[2:] == [
        (WalletEntryKind.GRANT, Decimal(18), Decimal("18.00"), date(2026, 3, 1)),
        (WalletEntryKind.PURCHASE, Decimal(30), Decimal("30.00"), None),
    ]
    expired_at_once = WalletEntry.objects.filter(kind=WalletEntryKind.EXPIRY, occurred_at=utc(2026, 3, 5)).get()
    assert expired_at_once.credits == Decimal(-18)
    assert wallet_balance(wallet=wallet) == Decimal(50)  # the 50 bought credits, whole again
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID  # nothing left due: settled by its credit notes

    # Revenue: February 100.00 of work − 30.00 granted − 40.00 credited + 12.00 of the grant given back
    # = 42.00 (the 60.00 kept, less the 18.00 of granted credits it kept); March undoes the rest.
    revenue_months_rebuild(from_month=None, as_of=utc(2026, 3, 31))
    recognized, deferred = defaultdict(Decimal), defaultdict(Decimal)
    for row in RevenueMonth.objects.filter(currency="USD"):
        recognized[row.month] += row.recognized
        deferred[row.month] += row.deferred
    assert (recognized[date(2026, 2, 1)], deferred[date(2026, 2, 1)]) == (Decimal("42.00"), Decimal("20.00"))
    assert (recognized[date(2026, 3, 1)], deferred[date(2026, 3, 1)]) == (Decimal("-42.00"), Decimal("50.00"))


def test_credits_come_back_pro_rata_rounded_once_and_add_up_to_what_was_consumed():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.70")
    wallet_grant(wallet_id=wallet.pk, credits="10", category="goodwill", reason="Sorry", now=utc(2026, 1, 1))
    invoice = make_manual_invoice(
        customer=customer, lines=[("A", "1", "30.00"), ("B", "1", "30.00"), ("C", "1", "30.00")], now=utc(2026, 1, 5)
    )
    assert invoice.total.amount == Decimal("83.00")  # 10 credits × 0.70 = 7.00 paid
    lines = list(invoice.lines.filter(description__in=["A", "B", "C"]).order_by("position"))

    for day, line in enumerate(lines, start=6):
        credit_note_issue(
            invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(invoice_line_id=line.pk)],
            now=utc(2026, 1, day),
        )  # fmt: skip

    # ⅓ each: 3.3333 credits (2.33), then ⅔ cumulated 6.6667 − 3.3333 = 3.3334 (4.67 − 2.33 = 2.34), then
    # the rest, 3.3333 (2.33): 10 credits and 7.00 in all.
    assert [(credits, amount) for _, credits, amount, _ in _returns(invoice)] == [
        (Decimal("3.3333"), Decimal("2.33")),
        (Decimal("3.3334"), Decimal("2.34")),
        (Decimal("3.3333"), Decimal("2.33")),
    ]
    assert wallet_balance(wallet=wallet) == Decimal(10)


def test_a_voided_invoice_gives_every_credit_back_and_a_voided_credit_note_takes_its_return_back():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    wallet_grant(wallet_id=wallet.pk, credits="25", category="goodwill", reason="Sorry", now=utc(2026, 1, 1))
    credited = make_manual_invoice(customer=customer, lines=[("A", "1", "20.00")], now=utc(2026, 1, 5))
    voided = make_manual_invoice(customer=customer, lines=[("B", "1", "40.00")], now=utc(2026, 1, 5))
    assert (credited.total.amount, voided.total.amount, wallet_balance(wallet=wallet)) == (0, Decimal(35), 0)
    assert credited.status == InvoiceStatus.PAID  # paid by 20 credits; the other 5 went to the second

    invoice_void(invoice_id=voided.pk, reason="Sent by mistake", now=utc(2026, 1, 6))
    assert _returns(voided) == [(WalletEntryKind.GRANT, Decimal(5), Decimal("5.00"), None)]
    assert wallet_balance(wallet=wallet) == Decimal(5)

    # An invoice the credits paid in full comes to 0.00: there is no money a credit note could credit
    # (docs/credits.md, known limits). One paid half by credits is credited, and its credits come back.
    half = make_manual_invoice(customer=customer, lines=[("C", "1", "6.00"), ("D", "1", "4.00")], now=utc(2026, 1, 7))
    assert (half.total.amount, wallet_balance(wallet=wallet)) == (Decimal("5.00"), 0)
    line = half.lines.get(description="D")
    note = credit_note_issue(
        invoice_id=half.pk, reason="other", lines=[CreditNoteLineRequest(invoice_line_id=line.pk)], now=utc(2026, 1, 8)
    )
    assert note.total == Money("2.00", "USD")  # 4.00 less 4/10 of the 5.00 the credits paid
    assert _returns(half) == [(WalletEntryKind.GRANT, Decimal(2), Decimal("2.00"), None)]
    assert wallet_balance(wallet=wallet) == Decimal(2)

    credit_note_void(credit_note_id=note.pk, reason="Issued by mistake", now=utc(2026, 1, 9))
    assert wallet_balance(wallet=wallet) == Decimal(0)  # the 2 it returned are taken back (a void entry)
    void = WalletEntry.objects.filter(kind=WalletEntryKind.VOID).get()
    assert (void.credits, void.lot.kind) == (Decimal(-2), WalletEntryKind.RETURN)
    assert void.reason == f"Credit note {note.number} voided"


def test_a_credit_note_whose_returned_credits_were_spent_cannot_be_voided():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    wallet_grant(wallet_id=wallet.pk, credits="10", category="goodwill", reason="Sorry", now=utc(2026, 1, 1))
    invoice = make_manual_invoice(
        customer=customer, lines=[("A", "1", "10.00"), ("B", "1", "5.00")], now=utc(2026, 1, 5)
    )
    line = invoice.lines.get(description="A")
    note = credit_note_issue(
        invoice_id=invoice.pk,
        reason="other",
        lines=[CreditNoteLineRequest(invoice_line_id=line.pk)],
        now=utc(2026, 1, 6),
    )
    assert wallet_balance(wallet=wallet) == Decimal("6.6667")  # 10 credits × 10/15
    make_manual_invoice(customer=customer, lines=[("E", "1", "4.00")], now=utc(2026, 1, 7))  # spends 4 of them
    entries_before = WalletEntry.objects.count()

    with pytest.raises(InvalidTransition) as refused:
        credit_note_void(credit_note_id=note.pk, reason="Mistake", now=utc(2026, 1, 8))

    assert "already paid another invoice" in str(refused.value)
    assert WalletEntry.objects.count() == entries_before
    note.refresh_from_db()
    assert note.status == "issued"
