"""An invoice prepaid credits paid in full comes to 0.00; a credit note on it credits what it billed
before the credits (its lines and tax), gives the credits' share back to the wallet lots, pro rata,
and refunds nothing as money (docs/credits.md, "Credit notes and voids give credits back").

The worked example, by hand (a German customer, VAT 19 % exclusive, credits at 0.50 EUR):

- lot A: 60 credits granted (30.00), expiring 1 Mar; lot B: 200 credits granted (100.00), never expiring;
- 10 Feb, invoice "Support" 31.45 + "Build" 49.56 = 81.01, VAT 19 % of 81.01 = 15.3919 → 15.39, total
  96.40: lot A (soonest expiry) pays 60 credits = 30.00, lot B pays 66.40 / 0.50 = 132.8 credits.
  The invoice comes to 0.00 and is paid; 67.2 credits are left in lot B;
- 15 Feb, credit note for "Support": 31.45 of 81.01 of the charges. VAT 31.45 × 19 % = 5.9755 → 5.98.
  The credits' share, 96.40 × 31.45 / 81.01 = 37.4245 → 37.42, would leave 31.45 + 5.98 − 37.42 = 0.01
  in money on an invoice nobody paid in money: on an invoice the credits paid in full the credit note
  credits no money, so the share is exactly 31.45 + 5.98 = 37.43 and the total 0.00. The lots get
  31.45 / 81.01 of what each paid: A 60 × 0.388223… = 23.2934 credits (30.00 × … = 11.6467 → 11.65),
  B 132.8 × 0.388223… = 51.5561 credits (66.40 × … = 25.7780 → 25.78) — 37.43 in all;
- 20 Feb, the full credit note: "Build" 49.56, VAT 15.39 − 5.98 = 9.41, share −58.97, total 0.00; the
  rest of each lot comes back: A 60 − 23.2934 = 36.7066, B 132.8 − 51.5561 = 81.2439; the wallet holds
  its 260 credits again.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.core.errors import ValidationFailed
from apps.invoices.constants import CreditNoteLineKind, InvoiceStatus
from apps.invoices.models import CreditNote, TaxRate
from apps.invoices.selectors import invoice_creditable_amount, invoice_creditable_before_credits
from apps.invoices.services import CreditNoteLineRequest, credit_note_issue, credit_note_preview
from apps.invoices.tests.factories import make_manual_invoice
from apps.subscriptions.periods import utc
from apps.wallets.constants import WalletEntryKind
from apps.wallets.models import WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grace")]


@pytest.fixture
def no_grace():
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=0):
        yield


@pytest.fixture
def paid_by_credits():
    """The worked example's invoice, paid in full by the two lots."""
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    customer = CustomerFactory(country="DE", currency="EUR")
    wallet = make_wallet(customer, rate="0.50")
    wallet_grant(wallet_id=wallet.pk, credits="60", category="promotion", reason="Launch offer",
                 expires_on=date(2026, 3, 1), now=utc(2026, 1, 7))  # fmt: skip
    wallet_grant(wallet_id=wallet.pk, credits="200", category="goodwill", reason="Outage", now=utc(2026, 1, 8))
    invoice = make_manual_invoice(
        customer=customer, lines=[("Support", "1", "31.45"), ("Build", "1", "49.56")], now=utc(2026, 2, 10)
    )
    return invoice, wallet


def _returns(invoice) -> list[tuple]:
    return [
        (entry.returned_from.expires_on, entry.credits, entry.amount.amount)
        for entry in WalletEntry.objects.filter(kind=WalletEntryKind.RETURN, invoice=invoice)
        .select_related("returned_from")
        .order_by("id")
    ]


def test_the_example_invoice_is_paid_by_credits_in_full(paid_by_credits):
    invoice, wallet = paid_by_credits

    assert (invoice.subtotal.amount, invoice.tax_total.amount) == (Decimal("-15.39"), Decimal("15.39"))
    assert invoice.total == Money("0.00", "EUR")
    assert invoice.status == InvoiceStatus.PAID
    assert wallet_balance(wallet=wallet) == Decimal("67.2")
    # Nothing left of the total, but all that it billed before the credits can be credited.
    assert invoice_creditable_amount(invoice) == Decimal("0.00")
    assert invoice_creditable_before_credits(invoice) == Decimal("96.40")


def test_a_credit_note_gives_the_credits_back_pro_rata_per_lot_and_refunds_no_money(paid_by_credits):
    invoice, wallet = paid_by_credits
    support = invoice.lines.get(description="Support")

    preview = credit_note_preview(invoice_id=invoice.pk, lines=[CreditNoteLineRequest(invoice_line_id=support.pk)])
    assert [(line.kind, line.amount) for line in preview.lines] == [
        (CreditNoteLineKind.INVOICE_LINE, Decimal("31.45")),
        (CreditNoteLineKind.BALANCE_SHARE, Decimal("-37.43")),
    ]
    assert (preview.tax_total, preview.total, preview.returns_prepaid_credits) == (Decimal("5.98"), Decimal(0), True)
    assert (preview.creditable_before_credits, preview.creditable_before) == (Decimal("96.40"), Decimal("0.00"))

    partial = credit_note_issue(
        invoice_id=invoice.pk, reason="order_change", lines=[CreditNoteLineRequest(invoice_line_id=support.pk)],
        now=utc(2026, 2, 15),
    )  # fmt: skip

    assert (partial.subtotal.amount, partial.tax_total.amount, partial.total.amount) == (
        Decimal("-5.98"), Decimal("5.98"), Decimal("0.00"),
    )  # fmt: skip
    assert (partial.refund_amount.amount, partial.credit_to_balance.amount, partial.amount_due_reduction.amount) == (
        Decimal(0), Decimal(0), Decimal(0),
    )  # fmt: skip
    assert partial.balance_item is None
    assert partial.refunds.count() == 0
    assert _returns(invoice) == [
        (date(2026, 3, 1), Decimal("23.2934"), Decimal("11.65")),
        (None, Decimal("51.5561"), Decimal("25.78")),
    ]
    assert wallet_balance(wallet=wallet) == Decimal("67.2") + Decimal("23.2934") + Decimal("51.5561")
    assert invoice_creditable_before_credits(invoice) == Decimal("96.40") - Decimal("37.43")

    full = credit_note_issue(invoice_id=invoice.pk, reason="order_change", full=True, now=utc(2026, 2, 20))

    assert [(line.kind, line.amount.amount) for line in full.lines.order_by("position")] == [
        (CreditNoteLineKind.INVOICE_LINE, Decimal("49.56")),
        (CreditNoteLineKind.BALANCE_SHARE, Decimal("-58.97")),
    ]
    assert (full.tax_total.amount, full.total.amount) == (Decimal("9.41"), Decimal("0.00"))
    assert _returns(invoice)[2:] == [
        (date(2026, 3, 1), Decimal("36.7066"), Decimal("18.35")),
        (None, Decimal("81.2439"), Decimal("40.62")),
    ]
    assert wallet_balance(wallet=wallet) == Decimal(260)
    assert invoice_creditable_before_credits(invoice) == Decimal(0)
    with pytest.raises(ValidationFailed) as refused:
        credit_note_preview(invoice_id=invoice.pk, full=True)
    assert list(refused.value.fields) == ["invoice"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        # A plain amount is a money credit: nothing was paid in money (0.00 left of the total).
        ({"amount": Decimal("10.00")}, "amount"),
        ({"lines": [("Build", None, Decimal("49.57"))]}, "lines.0.amount"),
        # Lines give credits back, but an amount beside them is still money nobody paid.
        ({"lines": [("Build", None, None)], "amount": Decimal("1.00")}, "lines"),
        ({"lines": [("Build", Decimal("2"), None)]}, "lines.0.quantity"),
        ({"full": True, "refund_amount": Decimal("1.00")}, "refund_amount"),
        ({"full": True, "credit_to_balance": Decimal("1.00")}, "credit_to_balance"),
    ],
)
def test_over_crediting_an_invoice_paid_by_credits_is_refused_on_its_field(paid_by_credits, arguments, field):
    invoice, wallet = paid_by_credits
    if "lines" in arguments:
        arguments = {
            **arguments,
            "lines": [
                CreditNoteLineRequest(invoice.lines.get(description=name).pk, quantity=quantity, amount=amount)
                for name, quantity, amount in arguments["lines"]
            ],
        }

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, reason="other", now=utc(2026, 2, 15), **arguments)

    assert field in refused.value.fields
    assert not CreditNote.objects.exists()
    assert wallet_balance(wallet=wallet) == Decimal("67.2")


def test_a_line_credited_twice_is_refused(paid_by_credits):
    invoice, _wallet = paid_by_credits
    support = invoice.lines.get(description="Support")
    credit_note_issue(invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(support.pk)],
                      now=utc(2026, 2, 15))  # fmt: skip

    with pytest.raises(ValidationFailed) as refused:
        credit_note_issue(invoice_id=invoice.pk, reason="other", lines=[CreditNoteLineRequest(support.pk)],
                          now=utc(2026, 2, 16))  # fmt: skip

    assert list(refused.value.fields) == ["lines.0.invoice_line"]
    assert CreditNote.objects.count() == 1


def test_the_api_previews_and_issues_it(paid_by_credits, api_client, superuser):
    invoice, wallet = paid_by_credits
    build = invoice.lines.get(description="Build")
    api_client.force_authenticate(superuser)
    payload = {"reason": "other", "lines": [{"invoice_line": build.pk}]}

    preview = api_client.post(reverse("api:invoice-credit-notes-preview", args=[invoice.pk]), payload, format="json")

    assert preview.status_code == 200, preview.json()
    body = preview.json()
    # Build 49.56 + VAT 9.42 (49.56 × 19 % = 9.4164) less the credits' share 58.98: nothing in money.
    assert (body["subtotal"]["amount"], body["tax_total"]["amount"], body["total"]["amount"]) == (
        "-9.42", "9.42", "0.00",
    )  # fmt: skip
    assert body["creditable_before_credits"] == {"amount": "96.40", "currency": "EUR"}
    assert body["returns_prepaid_credits"] is True

    issued = api_client.post(
        reverse("api:invoice-credit-notes", args=[invoice.pk]), payload, format="json", HTTP_IDEMPOTENCY_KEY="cn-1"
    )

    assert issued.status_code == 201, issued.json()
    assert issued.json()["total"] == {"amount": "0.00", "currency": "EUR"}
    # 49.56 / 81.01 of each lot: A 60 × … = 36.7066, B 132.8 × … = 81.2439.
    assert [credits for _, credits, _ in _returns(invoice)] == [Decimal("36.7066"), Decimal("81.2439")]

    over = api_client.post(
        reverse("api:invoice-credit-notes", args=[invoice.pk]),
        {"reason": "other", "amount": {"amount": "5.00", "currency": "EUR"}}, format="json",
        HTTP_IDEMPOTENCY_KEY="cn-2",
    )  # fmt: skip
    assert over.status_code == 400
    assert list(over.json()["fields"]) == ["amount"]
    assert CreditNote.objects.count() == 1


def test_the_admin_offers_previews_and_issues_it(paid_by_credits, client, superuser):
    invoice, wallet = paid_by_credits
    support = invoice.lines.get(description="Support")
    url = reverse("admin:invoices_invoice_credit_note", args=[invoice.pk])
    client.force_login(superuser)

    page = client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()
    assert f'href="{url}"' in page
    form = client.get(url).content.decode()
    assert "96.40" in form  # what it billed before the credits, left to credit

    data = {"mode": "lines", "reason": "other", "memo": "", f"line_{support.pk}_quantity": "1"}
    preview = client.post(url, data).content.decode()
    assert "goes back to the wallets they came from" in preview
    assert "-37.43" in preview.replace("\u2212", "-")

    issued = client.post(url, {**data, "confirm": "1"})
    assert issued.status_code == 302
    assert CreditNote.objects.get().total == Money("0.00", "EUR")
    # Issued today, after lot A's expiry day (1 Mar 2026): its 23.2934 credits come back and expire at once.
    assert [credits for _, credits, _ in _returns(invoice)] == [Decimal("23.2934"), Decimal("51.5561")]
    assert WalletEntry.objects.get(kind=WalletEntryKind.EXPIRY).credits == Decimal("-23.2934")
    assert wallet_balance(wallet=wallet) == Decimal("67.2") + Decimal("51.5561")

    over = client.post(url, {"mode": "amount", "reason": "other", "memo": "", "amount": "5.00"})
    assert over.status_code == 200
    assert over.context["form"].errors["amount"]
    assert CreditNote.objects.count() == 1
