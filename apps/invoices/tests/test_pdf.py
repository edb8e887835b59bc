import hashlib
import io
from datetime import date
from decimal import Decimal

import pytest
from django.template import Context, Template
from djmoney.money import Money
from pypdf import PdfReader

from apps.accounts.services import customer_update
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import NotEditable
from apps.core.pdf import _local_only_fetcher
from apps.invoices.models import Invoice, InvoiceLine
from apps.invoices.services import invoice_finalize, invoice_render_pdf, invoice_void
from apps.invoices.services.lifecycle import invoice_recompute_totals
from apps.invoices.templatetags.invoice_format import bill_date, money, quantity, service_period, unit_price
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice
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


def test_long_invoice_breaks_across_pages_with_total_on_the_last_page_only():
    draft = make_draft_invoice()
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
        )
    invoice_recompute_totals(draft)
    draft.save(update_fields=["subtotal", "subtotal_currency", "total", "total_currency"])
    invoice = invoice_finalize(invoice_id=draft.pk, now=draft.period_start_at)
    assert invoice.total == Money("934.00", "USD")  # 49.00 + 59 × 15.00

    pages = _pages(invoice_render_pdf(invoice_id=invoice.pk))

    count = len(pages)
    assert count >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in text
        assert "DESCRIPTION" in text.upper()  # the table header repeats on every page
    assert "934.00 USD" in pages[-1]
    assert all("934.00 USD" not in text for text in pages[:-1])
    assert "API requests — batch 60" in pages[-1]
    assert "0.00012 USD" in pages[0]
    text = "\n".join(pages)
    assert all(f"batch {position:02d}" in text for position in range(2, 61))


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
