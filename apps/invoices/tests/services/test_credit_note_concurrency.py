"""Two credit notes for one invoice at once cannot credit more than the invoice (PostgreSQL row locks)."""

from decimal import Decimal

import pytest
from django.db import connection

from apps.core.errors import ValidationFailed
from apps.core.tests.concurrency import run_in_threads
from apps.invoices.models import CreditNote
from apps.invoices.services import credit_note_issue
from apps.invoices.tests.factories import make_manual_invoice

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


def test_concurrent_credit_notes_cannot_over_credit_an_invoice():
    invoice = make_manual_invoice(lines=[("Plan", "1", "100.00")])

    def credit(_):
        try:
            return credit_note_issue(invoice_id=invoice.pk, reason="duplicate", amount=Decimal("60.00")).number
        except ValidationFailed as refused:
            return refused.fields

    results = run_in_threads(credit, count=4)

    issued = [result for result in results if isinstance(result, str)]
    refused = [result for result in results if not isinstance(result, str)]
    assert len(issued) == 1
    assert len(refused) == 3
    assert all(list(fields) == ["amount"] for fields in refused)
    assert list(CreditNote.objects.values_list("total", flat=True)) == [Decimal("60.00")]


def test_concurrent_credit_notes_of_different_invoices_get_gapless_numbers():
    invoices = [make_manual_invoice(lines=[("Plan", "1", "10.00")]) for _ in range(6)]

    numbers = run_in_threads(
        lambda index: credit_note_issue(invoice_id=invoices[index].pk, reason="other", full=True).number, count=6
    )

    year = CreditNote.objects.first().issued_at.year
    assert sorted(numbers) == [f"CN-{year}-{n:06d}" for n in range(1, 7)]
