"""An invoice paid partly by prepaid credits and partly by a money-balance credit (an overpayment's, a
credit note's), credited by credit notes, gives back both shares in proportion to the charges credited:
the credits to their wallets, the balance credit to the customer's balance (docs/credits.md, "Credit
notes and voids give credits back"). Every amount is computed by hand below."""

from decimal import Decimal

import pytest
from django.test import override_settings
from djmoney.money import Money

from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem
from apps.invoices.services.credit_notes import (
    CreditNoteLineRequest,
    credit_note_issue,
    credit_note_preview,
    credit_note_void,
)
from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet, money_balance_credit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]

D = Decimal


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


def _waiting_balance(customer) -> list[Decimal]:
    return [
        item.amount.amount
        for item in InvoiceItem.objects.filter(
            customer=customer, invoice__isnull=True, kind=InvoiceLineKind.CREDIT_NOTE
        ).order_by("id")
    ]


def _invoice(customer, *, seats: int, balance: str, credits: str, rate: str = "1.00"):
    wallet = make_wallet(customer, rate=rate)
    day = utc(2025, 12, 20)
    wallet_grant(wallet_id=wallet.pk, credits=credits, category="goodwill", reason="Outage", now=day)
    money_balance_credit(customer, balance, created_at=day)
    plan = PlanFactory(name="Team", product__name="Chat", prices=[Money("10.00", "USD")])  # per seat, monthly
    subscription = subscription_start(customer=customer, plan=plan, quantity=seats, now=utc(2026, 1, 1))
    return wallet, Invoice.objects.get(subscription=subscription)


def test_a_partial_then_a_full_credit_note_give_back_the_credits_and_the_balance_credit_in_proportion():
    """10 seats × 10.00 = 100.00 (no tax); the money balance 30.00 comes off when the draft is built,
    then 50 credits at 1.00 pay 50.00 at finalization: 20.00 due.

    4 seats credited (40.00 of 100.00 of charges, 2/5): "Less the balance credit applied" 2/5 × 80.00 =
    32.00, total 8.00 (due 20.00 → 12.00); back: 2/5 × 50 = 20 credits, and 2/5 × 30.00 = 12.00 on the
    balance. 40.00 = 8.00 + 20.00 + 12.00.
    The rest (6 seats, cumulative share 1): 80.00 − 32.00 = 48.00 off, total 12.00 (due 12.00 → 0.00);
    back: 50 − 20 = 30 credits and 30.00 − 12.00 = 18.00 on the balance: 30.00 in all, what was used."""
    customer = make_customer(currency="USD")
    wallet, invoice = _invoice(customer, seats=10, balance="30.00", credits="50")
    assert [(line.kind, line.amount.amount) for line in invoice.lines.order_by("position")] == [
        (InvoiceLineKind.RECURRING, D("100.00")),
        (InvoiceLineKind.PAYMENT_CREDIT, D("-30.00")),
        (InvoiceLineKind.PREPAID_CREDITS, D("-50.00")),
    ]
    assert invoice.total == Money("20.00", "USD") and invoice.status == InvoiceStatus.OPEN
    seats = invoice.lines.get(kind=InvoiceLineKind.RECURRING)

    request = [CreditNoteLineRequest(invoice_line_id=seats.pk, quantity=D(4))]
    assert credit_note_preview(invoice_id=invoice.pk, lines=request).balance_returned == D("12.00")
    partial = credit_note_issue(invoice_id=invoice.pk, reason="order_change", lines=request, now=utc(2026, 1, 5))

    assert (partial.total, partial.amount_due_reduction) == (Money("8.00", "USD"), Money("8.00", "USD"))
    assert partial.balance_returned == D("12.00")
    assert partial.credit_to_balance == Money("0.00", "USD")  # the credit note's own money reduced what was due
    assert _waiting_balance(customer) == [D("-12.00")]
    assert wallet_balance(wallet=wallet) == D(20)

    full = credit_note_issue(invoice_id=invoice.pk, reason="order_change", full=True, now=utc(2026, 1, 6))

    assert (full.total, full.amount_due_reduction) == (Money("12.00", "USD"), Money("12.00", "USD"))
    assert full.balance_returned == D("18.00")
    assert _waiting_balance(customer) == [D("-12.00"), D("-18.00")]  # 30.00: the balance credit used
    assert wallet_balance(wallet=wallet) == D(50)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID  # settled by the credit notes
    returned = WalletEntry.objects.filter(invoice=invoice, kind=WalletEntryKind.RETURN).order_by("id")
    assert [entry.credits for entry in returned] == [D(20), D(30)]


def test_a_third_at_a_time_rounds_the_balance_share_once_on_the_cumulative_share_and_adds_up():
    """3 seats × 10.00 = 30.00; balance 10.00, then 20 credits at 0.50 = 10.00: 10.00 due. One seat at a
    time (cumulative 1/3, 2/3, 1): the balance share 10.00 × 1/3 = 3.333 → 3.33; 10.00 × 2/3 = 6.667 →
    6.67, less 3.33 = 3.34; the rest 10.00 − 6.67 = 3.33: 10.00 in all, never more. Voiding the second
    credit note takes its 3.34 back off the balance (still waiting); crediting that seat again gives it
    again."""
    customer = make_customer(currency="USD")
    _, invoice = _invoice(customer, seats=3, balance="10.00", credits="20", rate="0.50")
    assert invoice.total == Money("10.00", "USD")
    seats = invoice.lines.get(kind=InvoiceLineKind.RECURRING)
    one = [CreditNoteLineRequest(invoice_line_id=seats.pk, quantity=D(1))]

    first = credit_note_issue(invoice_id=invoice.pk, reason="order_change", lines=one, now=utc(2026, 1, 5))
    second = credit_note_issue(invoice_id=invoice.pk, reason="order_change", lines=one, now=utc(2026, 1, 6))
    assert (first.balance_returned, second.balance_returned) == (D("3.33"), D("3.34"))
    assert _waiting_balance(customer) == [D("-3.33"), D("-3.34")]

    credit_note_void(credit_note_id=second.pk, now=utc(2026, 1, 7))
    assert _waiting_balance(customer) == [D("-3.33")]

    again = credit_note_issue(invoice_id=invoice.pk, reason="order_change", lines=one, now=utc(2026, 1, 8))
    last = credit_note_issue(invoice_id=invoice.pk, reason="order_change", lines=one, now=utc(2026, 1, 9))
    assert (again.balance_returned, last.balance_returned) == (D("3.34"), D("3.33"))
    assert sum(_waiting_balance(customer)) == D("-10.00")


def test_a_plain_amount_credits_no_line_and_gives_no_balance_credit_back():
    customer = make_customer(currency="USD")
    _, invoice = _invoice(customer, seats=10, balance="30.00", credits="50")

    note = credit_note_issue(invoice_id=invoice.pk, reason="other", amount=D("5.00"), now=utc(2026, 1, 5))

    assert note.balance_returned == D(0)
    assert _waiting_balance(customer) == []
