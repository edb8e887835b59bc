from datetime import date

import pytest
from django.db import transaction
from django.test import override_settings
from djmoney.money import Money

from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import InvalidTransition, NotEditable, ValidationFailed
from apps.invoices.constants import InvoiceEventType, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceNumberSequence
from apps.invoices.services import (
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_update_draft,
    invoice_void,
)
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _snapshot(invoice: Invoice) -> dict:
    invoice.refresh_from_db()
    row = {f.attname: getattr(invoice, f.attname) for f in Invoice._meta.concrete_fields if f.attname != "updated_at"}
    row["lines"] = list(invoice.lines.values())
    return row


def test_finalize_numbers_snapshots_and_freezes_the_invoice():
    draft = make_draft_invoice()
    invoice = invoice_finalize(invoice_id=draft.pk, now=utc(2026, 1, 16, 8))
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.number == "INV-2026-000001"
    assert invoice.issued_at == utc(2026, 1, 16, 8)
    assert invoice.due_on == date(2026, 1, 30)  # 14 days' default terms
    assert invoice.seller_details["name"] == "Acme Cloud Ltd."
    assert invoice.customer_details["name"] == draft.customer.name
    assert invoice.customer_details["address_lines"] == ["10 Downing Street", "London", "SW1A 2AA", "United Kingdom"]
    assert [e.type for e in invoice.events.all()] == [InvoiceEventType.CREATED, InvoiceEventType.FINALIZED]


def test_customer_payment_terms_set_the_due_date():
    subscription = make_subscription(started_at=utc(2026, 1, 15, 9))
    subscription.customer.payment_terms_days = 45
    subscription.customer.save()
    draft = make_draft_invoice(subscription=subscription)
    assert invoice_finalize(invoice_id=draft.pk, now=utc(2026, 1, 15, 9)).due_on == date(2026, 3, 1)


def test_snapshot_does_not_follow_later_customer_changes():
    invoice = make_open_invoice()
    invoice.customer.name = "Renamed Inc."
    invoice.customer.save()
    invoice.refresh_from_db()
    assert invoice.customer_details["name"] != "Renamed Inc."


def test_numbers_are_gapless_and_restart_each_year():
    numbers = []
    for start in (utc(2025, 12, 1), utc(2025, 12, 5), utc(2026, 1, 3)):
        draft = make_draft_invoice(subscription=make_subscription(started_at=start))
        numbers.append(invoice_finalize(invoice_id=draft.pk, now=start).number)
    assert numbers == ["INV-2025-000001", "INV-2025-000002", "INV-2026-000001"]
    assert dict(InvoiceNumberSequence.objects.values_list("key", "last_value")) == {"INV-2025": 2, "INV-2026": 1}


@override_settings(INVOICE_NUMBER_FORMAT="{prefix}{sequence:05d}", INVOICE_NUMBER_PREFIX="AC")
def test_number_format_and_series_are_configurable():
    assert make_open_invoice().number == "AC00001"
    assert InvoiceNumberSequence.objects.get().key == "AC"


def test_a_rolled_back_finalization_gives_its_number_back():
    first, second = make_draft_invoice(), make_draft_invoice()
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice_id=first.pk, now=utc(2026, 1, 16))
        raise RuntimeError("crash after numbering, before commit")
    first.refresh_from_db()
    assert (first.status, first.number) == (InvoiceStatus.DRAFT, None)
    assert invoice_finalize(invoice_id=second.pk, now=utc(2026, 1, 16)).number == "INV-2026-000001"


def test_a_finalized_invoice_cannot_be_changed_through_services():
    invoice = make_open_invoice()
    before = _snapshot(invoice)
    with pytest.raises(NotEditable, match="never changes"):
        invoice_update_draft(invoice_id=invoice.pk, memo="changed")
    with pytest.raises(InvalidTransition):
        invoice_finalize(invoice_id=invoice.pk)
    assert _snapshot(invoice) == before


def test_draft_edits_are_recorded():
    draft = make_draft_invoice()
    invoice_update_draft(invoice_id=draft.pk, memo="PO 4711", due_on=date(2099, 1, 1))
    draft.refresh_from_db()
    assert (draft.memo, draft.due_on) == ("PO 4711", date(2099, 1, 1))
    assert draft.events.last().data == {"memo": "PO 4711", "due_on": "2099-01-01"}
    with pytest.raises(ValidationFailed) as excinfo:
        invoice_update_draft(invoice_id=draft.pk, due_on=date(2000, 1, 1))
    assert "due_on" in excinfo.value.fields


@pytest.mark.parametrize(
    ("steps", "final_status"),
    [
        (["mark_paid"], InvoiceStatus.PAID),
        (["void"], InvoiceStatus.VOID),
        (["mark_uncollectible", "mark_paid"], InvoiceStatus.PAID),
        (["mark_uncollectible", "void"], InvoiceStatus.VOID),
    ],
)
def test_allowed_transitions(steps, final_status):
    invoice = make_open_invoice()
    services = {"mark_paid": invoice_mark_paid, "void": invoice_void, "mark_uncollectible": invoice_mark_uncollectible}
    for step in steps:
        invoice = services[step](invoice_id=invoice.pk)
    assert invoice.status == final_status
    assert invoice.number == "INV-2026-000001"  # a voided number stays used: no gap


@pytest.mark.parametrize(
    ("setup", "service"),
    [
        (invoice_mark_paid, invoice_void),
        (invoice_void, invoice_mark_paid),
        (invoice_void, invoice_mark_uncollectible),
        (invoice_mark_paid, invoice_mark_uncollectible),
    ],
)
def test_forbidden_transitions_change_nothing(setup, service):
    invoice = setup(invoice_id=make_open_invoice().pk)
    before = _snapshot(invoice)
    with pytest.raises(InvalidTransition):
        service(invoice_id=invoice.pk)
    assert _snapshot(invoice) == before


def test_a_draft_cannot_be_marked_paid_but_can_be_voided_without_a_number():
    draft = make_draft_invoice()
    with pytest.raises(InvalidTransition, match="Finalize the draft"):
        invoice_mark_paid(invoice_id=draft.pk)
    voided = invoice_void(invoice_id=draft.pk, reason="duplicate")
    assert (voided.status, voided.number) == (InvoiceStatus.VOID, None)


def test_a_zero_amount_invoice_is_settled_at_finalization():
    subscription = make_subscription(plan=PlanFactory(prices=[Money("0.00", "USD")]), started_at=utc(2026, 1, 15, 9))
    invoice = invoice_finalize(invoice_id=make_draft_invoice(subscription=subscription).pk, now=utc(2026, 1, 15, 9))
    assert (invoice.status, invoice.paid_at, invoice.number) == (
        InvoiceStatus.PAID,
        utc(2026, 1, 15, 9),
        "INV-2026-000001",
    )
