"""The sweep that renders bills whose rendering was never queued (the broker was down)."""

from datetime import timedelta

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.constants import InvoiceEventType
from apps.invoices.models import Invoice, InvoiceEvent
from apps.invoices.selectors import invoice_ids_missing_pdf
from apps.invoices.tasks import invoice_render_missing_pdfs_task
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

ISSUED = utc(2026, 4, 1)


@pytest.fixture
def unrendered():
    plan = PlanFactory(prices=[Money("49.00", "USD")])
    subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=ISSUED)
    return Invoice.objects.get()


def test_finalized_invoices_without_a_bill_are_found_within_the_window(unrendered):
    window = {"min_age": timedelta(minutes=5), "max_age": timedelta(days=7)}

    assert invoice_ids_missing_pdf(now=ISSUED + timedelta(minutes=6), **window) == [unrendered.pk]
    assert invoice_ids_missing_pdf(now=ISSUED + timedelta(minutes=4), **window) == []  # the normal task's turn
    assert invoice_ids_missing_pdf(now=ISSUED + timedelta(days=8), **window) == []  # too old to chase


def test_the_sweep_renders_each_missing_bill_once(unrendered, settings, django_capture_on_commit_callbacks):
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    with clock.frozen_at(ISSUED + timedelta(hours=1)):
        first = invoice_render_missing_pdfs_task()
        second = invoice_render_missing_pdfs_task()

    unrendered.refresh_from_db()
    assert (first, second) == (1, 0)
    assert unrendered.pdf.name == f"invoices/2026/04/{unrendered.number}.pdf"
    assert InvoiceEvent.objects.filter(invoice=unrendered, type=InvoiceEventType.PDF_RENDERED).count() == 1
