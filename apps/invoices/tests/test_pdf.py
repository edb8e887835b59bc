import hashlib
import io
import re
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template import Context, Template
from djmoney.money import Money
from PIL import Image
from pypdf import PdfReader

from apps.accounts.services import customer_update
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import NotEditable
from apps.core.pdf import PdfAlreadyStored, PdfIntegrity, _local_only_fetcher
from apps.invoices.constants import InvoiceEventType
from apps.invoices.models import Invoice, InvoiceLine, TaxRate
from apps.invoices.services import (
    invoice_finalize,
    invoice_pdf_ensure,
    invoice_pdf_verify,
    invoice_render_pdf,
    invoice_void,
)
from apps.invoices.services.pdf import PdfNotAvailable, invoice_pdf_context
from apps.invoices.templatetags.invoice_format import (
    address_text,
    bill_date,
    money,
    quantity,
    service_period,
    unit_price,
)
from apps.invoices.tests.factories import DEFAULT_START, make_draft_invoice, make_open_invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _pages(invoice: Invoice) -> list[str]:
    invoice.refresh_from_db()
    with invoice.pdf.open("rb") as stored:
        reader = PdfReader(io.BytesIO(stored.read()))
    return [page.extract_text() for page in reader.pages]


def _open_invoice_in(currency: str, price: str, *, quantity: int = 1) -> Invoice:
    customer = CustomerFactory(currency=currency, name=f"Kunde {currency} GmbH")
    plan = PlanFactory(prices=[Money(Decimal(price), currency)])
    subscription = make_subscription(customer=customer, plan=plan, quantity=quantity, started_at=utc(2026, 1, 15, 9))
    return make_open_invoice(subscription=subscription)


# --- The bill ---------------------------------------------------------------------------------


def test_pdf_of_a_finalized_invoice_shows_number_total_buyer_and_due_date():
    invoice = make_open_invoice()

    rendered = invoice_render_pdf(invoice_id=invoice.pk)

    [text] = _pages(rendered)
    assert invoice.number in text
    assert "49.00 USD" in text  # total
    assert invoice.customer.name in text
    assert invoice.due_on == date(2026, 1, 29)
    assert "29 Jan 2026" in text
    assert "15 Jan 2026 – 15 Feb 2026" in text  # service period of the line and of the invoice
    assert "BILL TO" in text  # headings are set in capitals by the stylesheet
    assert f"reference: {invoice.number}" in text
    assert "IE29 AIBK 9311 5212 3456 78" in text and "AIBKIE2D" in text
    assert "Page 1 of 1" in text


def test_stored_sha256_is_the_hash_of_the_stored_file():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    with invoice.pdf.open("rb") as stored:
        content = stored.read()

    assert content.startswith(b"%PDF-")
    assert invoice.pdf_sha256 == hashlib.sha256(content).hexdigest()
    assert invoice.pdf.name.startswith(f"invoices/2026/01/{invoice.number}")
    assert invoice.pdf.name.endswith(".pdf")


def test_bill_is_rendered_from_the_snapshot_not_the_live_customer():
    invoice = make_open_invoice()
    old_name = invoice.customer.name
    customer_update(customer_id=invoice.customer_id, name="Renamed After Issue Inc.")

    [text] = _pages(invoice_render_pdf(invoice_id=invoice.pk))

    assert old_name in text
    assert "Renamed After Issue" not in text


def test_a_draft_has_no_pdf():
    draft = make_draft_invoice()

    with pytest.raises(NotEditable):
        invoice_render_pdf(invoice_id=draft.pk)

    draft.refresh_from_db()
    assert not draft.pdf and draft.pdf_sha256 == ""


def test_void_bill_says_void_and_that_nothing_is_due():
    invoice = make_open_invoice()
    invoice_void(invoice_id=invoice.pk, reason="duplicate")

    [text] = _pages(invoice_render_pdf(invoice_id=invoice.pk))

    assert "VOID" in text
    assert "Nothing is due." in text
    assert "HOW TO PAY" not in text and "IBAN" not in text


def test_jpy_bill_shows_no_decimals():
    invoice = _open_invoice_in("JPY", "4800", quantity=3)

    [text] = _pages(invoice_render_pdf(invoice_id=invoice.pk))

    assert invoice.total == Money(14400, "JPY")
    assert "14,400 JPY" in text
    assert "14,400.0" not in text
    assert "4,800 JPY" in text  # unit price


def test_kwd_bill_shows_three_decimals():
    invoice = _open_invoice_in("KWD", "15.25")

    [text] = _pages(invoice_render_pdf(invoice_id=invoice.pk))

    assert "15.250 KWD" in text
    assert "15.25 KWD" not in text


def _sixty_line_invoice() -> Invoice:
    """A finalized invoice of 60 lines with periods, a third of them explained, and VAT 20 %."""
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    customer = CustomerFactory(tax_id="GB123456789")  # in the UK, billed in USD
    draft = make_draft_invoice(subscription=make_subscription(customer=customer, started_at=DEFAULT_START))
    for position in range(2, 61):
        InvoiceLine.objects.create(
            invoice=draft,
            position=position,
            description=f"API requests — batch {position:02d}",
            period_start_at=draft.period_start_at,
            period_end_at=draft.period_end_at,
            quantity=Decimal(125_000),
            unit_amount=Money(Decimal("0.00012"), "USD"),
            amount=Money(Decimal("15.00"), "USD"),
            explanation=["125,000 requests × 0.00012 USD"] if position % 3 == 0 else [],
        )
    invoice = invoice_finalize(invoice_id=draft.pk, now=draft.period_start_at)
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Money("934.00", "USD"), Money("186.80", "USD"), Money("1120.80", "USD"),
    )  # fmt: skip  # 49.00 + 59 × 15.00, and 20 % of it
    return invoice


def _layout_pages(path: Path) -> list[str]:
    """Each page's text as `pdftotext -layout` lays it out (columns kept on one line)."""
    count = len(PdfReader(path).pages)
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(number), "-l", str(number), str(path), "-"],
            check=True, capture_output=True, text=True,
        ).stdout
        for number in range(1, count + 1)
    ]  # fmt: skip


def test_sixty_line_invoice_runs_over_pages_with_headers_and_the_totals_on_the_last_page_only(tmp_path):
    invoice = invoice_render_pdf(invoice_id=_sixty_line_invoice().pk)
    path = tmp_path / "bill.pdf"
    path.write_bytes(invoice.pdf.read())

    pages = _layout_pages(path)

    count = len(pages)
    assert count >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in text
        assert re.search(r"DESCRIPTION +QTY +UNIT PRICE +AMOUNT", text), number  # the header row, every page
        assert "Acme Cloud Ltd. · Registered in Ireland No. 654321 · VAT IE1234567X" in text  # legal footer
        assert ("BILL TO" in text) is (number == 1)  # the parties open the bill only
        if number > 1:  # continuation pages say whose invoice they continue
            assert f"Invoice {invoice.number} · {invoice.customer.name} · continued" in text
    *earlier, last = pages
    for closing in ["TAX SUMMARY", "VAT 20 %", "186.80 USD", "1,120.80 USD", "HOW TO PAY", "IE29 AIBK"]:
        assert closing in last, closing
        assert all(closing not in text for text in earlier), closing
    assert re.search(r"Subtotal +934\.00 USD", last)
    assert re.search(r"Total +1,120\.80 USD", last)
    assert f"reference: {invoice.number}" in last
    assert "API requests — batch 60" in last  # the last line comes along with the totals
    text = "\n".join(pages)
    assert all(text.count(f"batch {position:02d}") == 1 for position in range(2, 61))  # no line lost or split
    assert text.count("15 Jan 2026 – 15 Feb 2026") >= 60  # every line shows its period
    assert text.count("125,000 requests × 0.00012 USD") == 20  # and its explanation
    assert re.search(r"VAT / Tax ID +IE1234567X +VAT / Tax ID +GB123456789", pages[0])  # seller's, buyer's
    assert "Customer VAT / Tax ID: GB123456789" in last


def test_sixty_line_invoice_pages_render_to_non_blank_a4_images(tmp_path):
    invoice = invoice_render_pdf(invoice_id=_sixty_line_invoice().pk)
    path = tmp_path / "bill.pdf"
    path.write_bytes(invoice.pdf.read())

    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(tmp_path / "page")], check=True)

    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(PdfReader(path).pages) >= 2
    for image_path in images:
        with Image.open(image_path) as image:
            width, height = image.size
            assert abs(width / height - 210 / 297) < 0.01  # A4 portrait
            grey = image.convert("L")
            dark = sum(grey.histogram()[:200])  # pixels with ink on them
            assert dark > 0.01 * width * height, image_path.name
            assert grey.getextrema()[0] < 100  # some text is actually dark


# --- Immutability --------------------------------------------------------------------------------


def test_a_rendered_bill_is_never_rendered_again():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    stored = invoice.pdf.read()
    invoice.pdf.close()

    with pytest.raises(PdfAlreadyStored, match="already has its PDF bill"):
        invoice_render_pdf(invoice_id=invoice.pk)

    again = Invoice.objects.get(pk=invoice.pk)
    assert (again.pdf.name, again.pdf_sha256, again.pdf_rendered_at) == (
        invoice.pdf.name, invoice.pdf_sha256, invoice.pdf_rendered_at,
    )  # fmt: skip
    with again.pdf.open("rb") as handle:
        assert handle.read() == stored
    assert again.events.filter(type=InvoiceEventType.PDF_RENDERED).count() == 1


def test_ensure_leaves_a_stored_bill_alone():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)

    again = invoice_pdf_ensure(invoice_id=invoice.pk)

    assert (again.pdf.name, again.pdf_sha256) == (invoice.pdf.name, invoice.pdf_sha256)
    assert again.events.filter(type=InvoiceEventType.PDF_RENDERED).count() == 1


def test_an_existing_file_is_never_overwritten():
    invoice = make_open_invoice()
    name = f"invoices/2026/01/{invoice.number}.pdf"
    default_storage.save(name, ContentFile(b"%PDF- not ours"))

    with pytest.raises(PdfAlreadyStored, match="never overwritten"):
        invoice_render_pdf(invoice_id=invoice.pk)

    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"%PDF- not ours"
    invoice.refresh_from_db()
    assert not invoice.pdf and invoice.pdf_sha256 == ""
    assert default_storage.listdir("invoices/2026/01")[1] == [f"{invoice.number}.pdf"]  # no copy beside it


def test_a_failed_save_removes_the_file_it_stored(monkeypatch):
    invoice = make_open_invoice()

    def fail(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("apps.invoices.services.pdf.invoice_event_record", fail)
    with pytest.raises(RuntimeError):
        invoice_render_pdf(invoice_id=invoice.pk)

    assert not default_storage.exists(f"invoices/2026/01/{invoice.number}.pdf")
    invoice.refresh_from_db()
    assert invoice.pdf_sha256 == ""
    monkeypatch.undo()
    assert invoice_render_pdf(invoice_id=invoice.pk).pdf_sha256  # and a later try succeeds


def test_verify_recomputes_the_hash_of_the_stored_file():
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    assert invoice_pdf_verify(invoice_id=invoice.pk) == PdfIntegrity.INTACT

    with open(invoice.pdf.path, "ab") as handle:  # someone edits the stored file
        handle.write(b"%%tampered")
    assert invoice_pdf_verify(invoice_id=invoice.pk) == PdfIntegrity.ALTERED

    default_storage.delete(invoice.pdf.name)
    assert invoice_pdf_verify(invoice_id=invoice.pk) == PdfIntegrity.MISSING


def test_verify_without_a_pdf_is_refused():
    with pytest.raises(PdfNotAvailable):
        invoice_pdf_verify(invoice_id=make_open_invoice().pk)


def test_the_logo_comes_from_the_seller_settings(tmp_path, settings):
    logo = tmp_path / "brand.svg"
    logo.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>'
    )
    settings.SELLER = {**settings.SELLER, "logo": str(logo)}
    invoice = make_open_invoice()  # the snapshot takes the logo setting

    assert invoice.seller_details["logo"] == str(logo)
    assert invoice_pdf_context(invoice)["logo_url"] == logo.as_uri()
    settings.SELLER = {**settings.SELLER, "logo": "invoices/logo.svg"}
    assert invoice_pdf_context(invoice)["logo_url"] == logo.as_uri()  # the issued bill keeps its own
    invoice.seller_details.pop("logo")
    assert invoice_pdf_context(invoice)["logo_url"].endswith("/static/invoices/logo.svg")


def test_renderer_refuses_network_urls_and_loads_local_files():
    fetcher = _local_only_fetcher()

    for url in ("http://example.com/logo.png", "https://example.com/a.css", "ftp://example.com/x"):
        with pytest.raises(ValueError, match="refusing to fetch"):
            fetcher(url)

    from django.conf import settings

    response = _local_only_fetcher()((settings.BASE_DIR / "static" / "invoices" / "logo.svg").as_uri())
    try:
        assert b"<svg" in response.read()
    finally:
        response.close()


# --- Template filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Money(Decimal("1234.5"), "USD"), "1,234.50 USD"),
        (Money(Decimal("1234567.891"), "EUR"), "1,234,567.89 EUR"),
        (Money(Decimal("0"), "GBP"), "0.00 GBP"),
        (Money(Decimal("-12.3"), "USD"), "-12.30 USD"),
        (Money(Decimal("123456"), "JPY"), "123,456 JPY"),
        (Money(Decimal("1.25"), "KWD"), "1.250 KWD"),
        (Money(Decimal("1234.5000"), "KWD"), "1,234.500 KWD"),
    ],
)
def test_money_filter_uses_thousands_separators_and_the_currency_decimals(value, expected):
    assert money(value) == expected


def test_money_filter_takes_a_bare_amount_with_a_currency():
    assert money(Decimal("9876.5"), "USD") == "9,876.50 USD"
    assert money(None) == ""
    with pytest.raises(ValueError):
        money(Decimal(1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Money(Decimal("0.000120000000"), "USD"), "0.00012 USD"),
        (Money(Decimal("49.000000000000"), "USD"), "49.00 USD"),
        (Money(Decimal("1249.5"), "EUR"), "1,249.50 EUR"),
        (Money(Decimal("0.123456789012"), "USD"), "0.123456789012 USD"),
        (Money(Decimal("1500.000000"), "JPY"), "1,500 JPY"),
        (Money(Decimal("0.5"), "JPY"), "0.5 JPY"),
        (Money(Decimal("2.5"), "KWD"), "2.500 KWD"),
    ],
)
def test_unit_price_filter_shows_the_significant_decimals(value, expected):
    assert unit_price(value) == expected


def test_quantity_and_date_filters():
    assert quantity(Decimal("1.000000")) == "1"
    assert quantity(Decimal("12500.500000")) == "12,500.5"
    assert quantity(Decimal("0.000001")) == "0.000001"
    assert bill_date(utc(2026, 1, 5, 23, 30)) == "5 Jan 2026"
    assert bill_date(date(2026, 2, 28)) == "28 Feb 2026"
    assert bill_date(None) == ""
    assert service_period(utc(2026, 1, 15, 9), utc(2026, 2, 15, 9)) == "15 Jan 2026 – 15 Feb 2026"
    assert service_period(None, utc(2026, 2, 15)) == ""


def test_address_text_is_one_escaped_text_with_a_line_break_between_lines():
    """The bill shows an address as one `white-space: pre-line` text (fewer boxes than <br> lines):
    lines are escaped, joined by line breaks, and a line's own spaces and breaks collapse to one space."""
    assert (
        address_text(["1 Market Street", "Dublin  D02\nXY45", "Ireland"]) == "1 Market Street\nDublin D02 XY45\nIreland"
    )
    assert address_text(["<b>Rue & Co</b>"]) == "&lt;b&gt;Rue &amp; Co&lt;/b&gt;"
    assert address_text([]) == ""
    assert address_text(None) == ""


def test_filters_work_from_a_template():
    rendered = Template(
        "{% load invoice_format %}{{ amount|money }} | {{ unit|unit_price }} | {{ qty|quantity }} | "
        "{% service_period start end %}"
    ).render(
        Context(
            {
                "amount": Money(Decimal("1234.5"), "USD"),
                "unit": Money(Decimal("0.00012"), "USD"),
                "qty": Decimal("3.000000"),
                "start": utc(2026, 1, 15),
                "end": utc(2026, 2, 15),
            }
        )
    )
    assert rendered == "1,234.50 USD | 0.00012 USD | 3 | 15 Jan 2026 – 15 Feb 2026"
