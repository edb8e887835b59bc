"""A one-off invoice's bill: numbered in the same series as run invoices, its lines, its own tax rate
and its totals on the PDF (pdftotext), in English and Simplified Chinese, and emailed like every bill."""

import subprocess
from decimal import Decimal

import pytest
from django.core import mail
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions
from apps.billing.services.one_off import OneOffCharge, invoice_one_off_create
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import TaxRate
from apps.invoices.services import invoice_email_send, invoice_render_pdf
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_GROUPING = "per_subscription"


def _text(invoice, tmp_path) -> str:
    path = tmp_path / "bill.pdf"
    with invoice.pdf.open("rb") as stored:
        path.write_bytes(stored.read())
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _charges(reduced: TaxRate) -> list[OneOffCharge]:
    return [
        OneOffCharge(quantity="1", unit_amount="1200.00", description="Installation on site",
                     period_start_at=utc(2026, 1, 12), period_end_at=utc(2026, 1, 14)),
        OneOffCharge(quantity="4", unit_amount="19.995", description="Gateway", tax_rate_id=reduced.pk),
    ]  # fmt: skip


def test_one_off_bill_is_numbered_in_sequence_and_shows_its_lines_taxes_and_totals(tmp_path):
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    reduced = TaxRate.objects.create(name="Reduced VAT", percentage=Decimal("5"), country="GB", region="ZZ")
    customer = CustomerFactory(currency="USD", name="Acme Devices Ltd.", email="ap@acme.example")
    make_subscription(customer=customer, plan=PlanFactory(prices=[Money("99.00", "USD")]), started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))  # INV-2026-000001

    invoice = invoice_one_off_create(
        customer_id=customer.pk, charges=_charges(reduced), memo="PO 4711", now=utc(2026, 1, 15)
    )
    invoice_render_pdf(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    text = _text(invoice, tmp_path)

    assert invoice.number == "INV-2026-000002"
    assert "INV-2026-000002" in text and "Acme Devices Ltd." in text and "PO 4711" in text
    assert "Installation on site" in text and "12 Jan 2026 – 14 Jan 2026" in text
    assert "1,200.00 USD" in text
    # 4 × 19.995 = 79.98, at its own 5 %: 4.00 (3.999); the rest at the customer's 20 %: 240.00.
    assert "4 × 19.995 USD" in text and "Taxed at Reduced VAT 5 %" in text and "79.98 USD" in text
    assert "VAT 20 %" in text and "240.00 USD" in text and "4.00 USD" in text
    assert "1,523.98 USD" in text  # 1,279.98 + 244.00

    result = invoice_email_send(invoice_id=invoice.pk)
    assert result.event is not None
    [message] = [message for message in mail.outbox if invoice.number in message.subject]
    assert message.to == ["ap@acme.example"]
    assert [name for name, _content, _type in message.attachments] == ["INV-2026-000002.pdf"]


def test_one_off_bill_in_simplified_chinese(tmp_path):
    reduced = TaxRate.objects.create(name="Reduced VAT", percentage=Decimal("5"), country="GB", region="ZZ")
    customer = CustomerFactory(currency="USD", name="北京云科技有限公司", preferred_language="zh-hans")

    invoice = invoice_one_off_create(customer_id=customer.pk, charges=_charges(reduced), now=utc(2026, 1, 15))
    invoice_render_pdf(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    text = _text(invoice, tmp_path)

    assert "北京云科技有限公司" in text and "发票" in text
    assert "Installation on site" in text and "Gateway" in text
    assert "按 Reduced VAT 5 % 计税" in text
