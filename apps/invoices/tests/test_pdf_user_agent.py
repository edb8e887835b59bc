"""Bills and credit notes are styled with the documents' own user-agent stylesheet
(apps/core/pdf_user_agent.css) instead of WeasyPrint's full HTML one, for speed: the pages must come
out the same, pixel for pixel, in English and in Chinese, on one page and on several."""

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.models import TaxRate
from apps.invoices.services import CreditNoteLineRequest, credit_note_issue
from apps.invoices.services.pdf import credit_note_render_pdf_bytes, invoice_render_pdf_bytes
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 2, 3, 10)


def _pages(pdf: bytes, folder: Path, name: str) -> list[Image.Image]:
    path = folder / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "72", str(path), str(folder / name)], check=True)  # noqa: S607
    return [Image.open(page).convert("RGB") for page in sorted(folder.glob(f"{name}-*.png"))]


def _assert_same_pages(ours: bytes, weasyprints: bytes, folder: Path) -> int:
    mine, theirs = _pages(ours, folder, "ours"), _pages(weasyprints, folder, "weasyprint")
    assert len(mine) == len(theirs) >= 1
    for number, (page, reference) in enumerate(zip(mine, theirs, strict=True), start=1):
        assert page.size == reference.size
        assert ImageChops.difference(page, reference).getbbox() is None, f"page {number} differs"
    # The pages are not blank: the comparison compared something.
    assert ImageChops.difference(mine[0], Image.new("RGB", mine[0].size, "white")).getbbox() is not None
    return len(mine)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_paid_bill_with_several_lines_and_tax_is_the_same_with_either_stylesheet(tmp_path, language):
    TaxRate.objects.create(name="VAT", percentage=Decimal("23"), country="IE")
    customer = CustomerFactory(
        country="IE", currency="EUR", name="Kilkenny Data Ltd", address_line1="2 Parade", city="Kilkenny",
        postal_code="R95 X2E3", tax_id="IE6388047V", preferred_language=language,
    )  # fmt: skip
    invoice = make_manual_invoice(
        customer=customer, lines=[(f"Line {n} of the bill", str(n), "12.50") for n in range(1, 8)]
    )
    invoice = invoice_mark_paid(invoice_id=invoice.pk, now=NOW)

    pages = _assert_same_pages(
        invoice_render_pdf_bytes(invoice), invoice_render_pdf_bytes(invoice, user_agent="weasyprint"), tmp_path
    )

    assert pages == 1


def test_a_bill_of_sixty_lines_over_several_pages_is_the_same_with_either_stylesheet(tmp_path):
    customer = CustomerFactory(country="GB", currency="GBP", name="Long Bill Ltd")
    invoice = make_manual_invoice(customer=customer, lines=[(f"Usage item {n:02d}", "3", "1.25") for n in range(60)])

    pages = _assert_same_pages(
        invoice_render_pdf_bytes(invoice), invoice_render_pdf_bytes(invoice, user_agent="weasyprint"), tmp_path
    )

    assert pages > 1


def test_a_credit_note_is_the_same_with_either_stylesheet(tmp_path):
    customer = CustomerFactory(country="DE", currency="EUR", name="Beispiel GmbH", address_line1="Hauptstr. 1")
    invoice = make_manual_invoice(customer=customer, lines=[("Seats", "4", "200.00")])
    invoice = invoice_mark_paid(invoice_id=invoice.pk, now=NOW)
    note = credit_note_issue(
        invoice_id=invoice.pk, reason="product_unsatisfactory", memo="Two seats were never used.",
        lines=[CreditNoteLineRequest(invoice.lines.get().pk, quantity=Decimal(2))], refund_amount=Decimal("19.00"),
        refund_reference="SEPA-77", now=NOW,
    )  # fmt: skip

    _assert_same_pages(
        credit_note_render_pdf_bytes(note), credit_note_render_pdf_bytes(note, user_agent="weasyprint"), tmp_path
    )


def test_every_element_of_the_document_templates_has_its_rules_in_the_documents_user_agent_sheet():
    """A later document template (or a new element in one) must not silently lose the styles
    WeasyPrint's own sheet would give it: each element the PDF templates use is named in ours, or is one
    that WeasyPrint's sheet gives nothing to either."""
    import re

    from django.conf import settings

    from apps.core.pdf import USER_AGENT_STYLESHEET

    styled = set(re.findall(r"(?<![\w.#:-])([a-z][a-z0-9]*)(?=[\s,{:.\[>)])", USER_AGENT_STYLESHEET.read_text()))
    unstyled_by_weasyprint_too = {"span"}
    templates = Path(settings.BASE_DIR) / "templates"
    documents = [path for path in templates.rglob("*.html") if "_pdf" in path.name or path.name == "_parties.html"]
    assert len(documents) >= 4
    used = {
        tag
        for path in documents
        for tag in re.findall(r"<([a-z][a-z0-9]*)\b", re.sub(r"{%.*?%}|{#.*?#}", "", path.read_text(), flags=re.S))
    }
    assert {"table", "td", "div", "h1"} <= used
    assert used - styled - unstyled_by_weasyprint_too == set()
