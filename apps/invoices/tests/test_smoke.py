import pytest

from apps.invoices.constants import InvoiceStatus
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice

pytestmark = pytest.mark.django_db


def test_factories_make_a_draft_and_an_open_invoice():
    draft = make_draft_invoice()
    assert draft.status == InvoiceStatus.DRAFT and draft.number is None
    opened = make_open_invoice()
    assert opened.status == InvoiceStatus.OPEN and opened.number.startswith("INV-2026-")
