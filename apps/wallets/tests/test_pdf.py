"""The credits an invoice consumed are a line of their own on the PDF bill, in English and Chinese."""

import subprocess
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.invoices.services.pdf import invoice_render_pdf_bytes
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.services.ledger import wallet_grant

from .factories import make_wallet

pytestmark = [pytest.mark.django_db]


def _text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "bill.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["Prepaid credits: Main", "60 credits at 0.50 USD a credit, taken off the total after tax.",
                "60 credits from the grant of 2026-01-01 (expiring: never).", "-30.00", "15.00"]),
        ("zh-hans", ["预付点数：Main", "60 点，每点 US$0.50，在税后从总额中扣除。",
                     "60 点，来自 2026-01-01 的赠送（到期：永不）。", "-US$30.00", "US$15.00"]),
    ],
)  # fmt: skip
@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_the_bill_shows_the_credits_line(language, expected, tmp_path):
    customer = make_customer(currency="USD", preferred_language=language)
    wallet = make_wallet(customer, rate="0.50")
    wallet_grant(wallet_id=wallet.pk, credits="60", category="promotion", reason="Offer", now=utc(2026, 1, 1))

    invoice = make_manual_invoice(customer=customer, lines=[("Consulting", "1", "45.00")], now=utc(2026, 1, 15))

    assert invoice.total.amount == Decimal("15.00")
    text = _text(invoice_render_pdf_bytes(invoice), tmp_path)
    for fragment in expected:
        assert fragment in text, (fragment, text)
