from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.core import clock
from apps.core.tests.test_admin import change_form_data
from apps.invoices.constants import BillingRunTrigger, InvoiceEventType, InvoiceStatus
from apps.invoices.models import BillingRun, Invoice, InvoiceEvent, InvoiceNumberSequence, TaxRate
from apps.invoices.services import invoice_render_pdf
from apps.invoices.tests.factories import DEFAULT_START, make_draft_invoice, make_open_invoice
from apps.payments.models import Payment
from apps.payments.services import invoice_mark_paid
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

OPERATIONS = ["finalize", "void", "mark_paid", "mark_uncollectible", "render_pdf", "send"]


def changelist_url() -> str:
    return reverse("admin:invoices_invoice_changelist")


def change_url(invoice: Invoice) -> str:
    return reverse("admin:invoices_invoice_change", args=[invoice.pk])


def operation_url(invoice: Invoice, operation: str) -> str:
    return reverse(f"admin:invoices_invoice_{operation}", args=[invoice.pk])


def pdf_url(invoice: Invoice) -> str:
    return reverse("admin:invoices_invoice_pdf", args=[invoice.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


def snapshot(invoice: Invoice) -> dict:
    invoice.refresh_from_db()
    return {
        "status": invoice.status,
        "number": invoice.number,
        "memo": invoice.memo,
        "due_on": invoice.due_on,
        "total": invoice.total,
        "updated_at": invoice.updated_at,
        "events": list(invoice.events.values_list("type", flat=True)),
    }


def paid_invoice() -> Invoice:
    invoice = make_open_invoice()
    return invoice_mark_paid(invoice_id=invoice.pk, reference="bank transfer")


# --- list -------------------------------------------------------------------------------------------


def test_changelist_shows_numbers_drafts_and_pdf_links(client, superuser):
    draft = make_draft_invoice()
    issued = make_open_invoice()
    invoice_render_pdf(invoice_id=issued.pk)
    client.force_login(superuser)

    response = client.get(changelist_url())

    assert response.status_code == 200
    content = response.content.decode()
    assert f"Draft #{draft.pk}" in content
    assert issued.number in content
    assert pdf_url(issued) in content
    assert pdf_url(draft) not in content


@pytest.mark.parametrize(
    "query",
    [
        "status__exact=open",
        "status__exact=draft",
        "total_currency=USD",
        "overdue=yes",
        "overdue=no",
        "issued_at__gte=2026-01-01%2000:00:00%2B00:00&issued_at__lt=2027-01-01%2000:00:00%2B00:00",
        "issued_at__isnull=True",
        "customer__id__exact=1",
    ],
)
def test_changelist_filters(client, superuser, query):
    make_open_invoice()
    client.force_login(superuser)
    response = client.get(f"{changelist_url()}?{query}")
    assert response.status_code == 200
    assert "errornote" not in response.content.decode()


def test_changelist_filters_by_status(client, superuser):
    draft = make_draft_invoice()
    issued = make_open_invoice()
    client.force_login(superuser)

    response = client.get(f"{changelist_url()}?status__exact=draft")

    assert list(response.context["cl"].result_list) == [draft]
    response = client.get(f"{changelist_url()}?status__exact=open")
    assert list(response.context["cl"].result_list) == [issued]


def test_changelist_search_by_number_customer_name_and_external_id(client, superuser):
    # Distinctive names: generic ones ("Customer 202 Ltd.") hold terms such as "202" that every
    # number (INV-2026-…) contains, and admin search matches each term separately.
    issued = make_open_invoice(
        subscription=make_subscription(
            customer=CustomerFactory(name="Zephyr Analytics", external_id="zephyr-7"), started_at=DEFAULT_START
        )
    )
    other = make_open_invoice(
        subscription=make_subscription(customer=CustomerFactory(name="Quokka Foods"), started_at=DEFAULT_START)
    )
    client.force_login(superuser)

    for term in [issued.number, issued.customer.name, issued.customer.external_id]:
        response = client.get(changelist_url(), {"q": term})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [issued], term
    assert other not in response.context["cl"].result_list


def test_changelist_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    for _ in range(10):
        make_draft_invoice()
        invoice_render_pdf(invoice_id=make_open_invoice().pk)
    client.force_login(superuser)
    client.get(changelist_url())  # warm up (session, content types)

    with django_assert_max_num_queries(12):
        response = client.get(changelist_url())

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 20


def test_no_add_and_no_delete(client, superuser):
    invoice = make_draft_invoice()
    client.force_login(superuser)

    assert client.get(reverse("admin:invoices_invoice_add")).status_code == 403
    assert client.post(reverse("admin:invoices_invoice_delete", args=[invoice.pk])).status_code == 403
    response = client.get(changelist_url())
    assert "delete_selected" not in response.context["action_form"].fields["action"].choices.__repr__()
    assert Invoice.objects.filter(pk=invoice.pk).exists()


# --- change page ------------------------------------------------------------------------------------


def test_draft_change_page_edits_memo_and_due_date_only(client, superuser):
    invoice = make_draft_invoice()
    client.force_login(superuser)

    response = client.get(change_url(invoice))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"memo", "due_on"}
    content = response.content.decode()
    assert 'name="memo"' in content
    assert operation_url(invoice, "finalize") in content
    assert operation_url(invoice, "void") in content
    assert operation_url(invoice, "mark_paid") not in content


def test_draft_memo_edit_goes_through_the_service_and_records_an_event(client, superuser):
    invoice = make_draft_invoice()
    client.force_login(superuser)
    form_page = client.get(change_url(invoice))

    response = client.post(change_url(invoice), change_form_data(form_page, memo="PO 4711"))

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.memo == "PO 4711"
    event = invoice.events.get(type=InvoiceEventType.UPDATED)
    assert event.actor == superuser
    assert event.data == {"memo": "PO 4711"}


def test_draft_due_date_in_the_past_is_a_form_error_and_nothing_changes(client, superuser):
    invoice = make_draft_invoice()
    client.force_login(superuser)
    form_page = client.get(change_url(invoice))
    before = snapshot(invoice)
    yesterday = (clock.now() - timedelta(days=1)).date()

    response = client.post(
        change_url(invoice), change_form_data(form_page, memo="changed", due_on=yesterday.isoformat())
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"due_on": ["Cannot be in the past."]}
    assert snapshot(invoice) == before


def test_finalized_invoice_page_is_read_only(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.get(change_url(invoice))

    assert response.status_code == 200
    content = response.content.decode()
    assert response.context["has_change_permission"] is False
    assert 'name="memo"' not in content
    assert 'name="due_on"' not in content
    assert 'name="_save"' not in content
    for inline in response.context["inline_admin_formsets"]:
        assert inline.has_change_permission is False and inline.has_add_permission is False
    assert invoice.number in content


def test_posting_to_a_finalized_invoice_changes_nothing(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)
    before = snapshot(invoice)

    response = client.post(
        change_url(invoice), {"memo": "sneaky", "due_on": "2031-01-01", "status": "paid", "_save": "Save"}
    )

    assert response.status_code == 403
    assert snapshot(invoice) == before


def test_change_page_shows_lines_and_history(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.get(change_url(invoice))

    content = response.content.decode()
    assert invoice.lines.get().description in content
    assert "Finalized" in content and "Created" in content
    assert invoice.customer_details["name"] in content


def test_viewer_sees_lines_and_history_without_line_permissions(client, make_staff):
    invoice = make_open_invoice()
    client.force_login(make_staff("invoices.view_invoice"))

    response = client.get(change_url(invoice))

    assert response.status_code == 200
    assert invoice.lines.get().description in response.content.decode()
    assert operation_url(invoice, "void") not in response.content.decode()


# --- operations: buttons ------------------------------------------------------------------------------


def test_confirmation_page_explains_the_operation(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.get(operation_url(invoice, "void"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Voiding cancels the invoice" in content
    assert 'name="note"' in content
    assert snapshot(invoice)["status"] == InvoiceStatus.OPEN


def test_finalize_button(client, superuser):
    invoice = make_draft_invoice()
    client.force_login(superuser)

    response = client.post(operation_url(invoice, "finalize"))

    assert response.status_code == 302
    assert response["Location"] == change_url(invoice)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.number.startswith("INV-")
    assert messages_of(response) == [("success", f"Finalized Draft #{invoice.pk} as {invoice.number}.")]
    assert invoice.events.get(type=InvoiceEventType.FINALIZED).actor == superuser


def test_void_button_records_the_reason(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.post(operation_url(invoice, "void"), {"note": "duplicate of INV-7"})

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert messages_of(response) == [("success", f"Voided {invoice.number}.")]
    assert invoice.events.get(type=InvoiceEventType.VOIDED).data == {"reason": "duplicate of INV-7"}


def test_mark_paid_button_records_the_reference(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.post(operation_url(invoice, "mark_paid"), {"note": "SEPA 123"})

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.paid_at is not None
    assert messages_of(response) == [("success", f"Marked paid {invoice.number}.")]
    payment = Payment.objects.get()  # a manual bank transfer of what was due
    assert (payment.reference, payment.amount, payment.created_by) == ("SEPA 123", invoice.total, superuser)
    assert invoice.events.get(type=InvoiceEventType.PAID).data == {
        "payment": payment.pk,
        "reference": "SEPA 123",
        "method": "bank_transfer",
    }


def test_mark_uncollectible_button(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    client.post(operation_url(invoice, "mark_uncollectible"))

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE


def test_render_pdf_button_renders_synchronously(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.post(operation_url(invoice, "render_pdf"))

    invoice.refresh_from_db()
    assert invoice.pdf and len(invoice.pdf_sha256) == 64
    assert messages_of(response) == [("success", f"Rendered the PDF of {invoice.number}.")]


@pytest.mark.parametrize(
    ("make", "operation"),
    [
        (paid_invoice, "void"),
        (paid_invoice, "mark_uncollectible"),
        (paid_invoice, "finalize"),
        (make_draft_invoice, "mark_paid"),
        (make_draft_invoice, "mark_uncollectible"),
        (make_draft_invoice, "render_pdf"),
    ],
)
def test_refused_button_shows_an_error_and_changes_nothing(client, superuser, make, operation):
    invoice = make()
    client.force_login(superuser)
    before = snapshot(invoice)

    response = client.post(operation_url(invoice, operation))

    assert response.status_code == 302
    assert response["Location"] == change_url(invoice)
    [(level, message)] = messages_of(response)
    assert level == "error"
    assert message.startswith(f"{invoice}: ")
    assert snapshot(invoice) == before


# --- operations: list actions ----------------------------------------------------------------------


def run_action(client, action: str, invoices: list[Invoice], *, confirmed: bool = True, **extra):
    data = {"action": action, "_selected_action": [invoice.pk for invoice in invoices], **extra}
    if confirmed:
        data["post"] = "yes"
    return client.post(changelist_url(), data)


@pytest.mark.parametrize("action", ["finalize_selected", "void_selected", "mark_paid_selected"])
def test_state_actions_ask_for_confirmation_first(client, superuser, action):
    invoice = make_draft_invoice() if action == "finalize_selected" else make_open_invoice()
    before = snapshot(invoice)
    client.force_login(superuser)

    response = run_action(client, action, [invoice], confirmed=False)

    assert response.status_code == 200
    content = response.content.decode()
    assert str(invoice) in content
    assert f'value="{action}"' in content and 'name="post" value="yes"' in content
    assert snapshot(invoice) == before


def test_void_action_records_the_reason_on_each_invoice(client, superuser):
    invoices = [make_open_invoice(), make_open_invoice()]
    client.force_login(superuser)

    run_action(client, "void_selected", invoices, note="customer churned")

    for invoice in invoices:
        assert invoice.events.get(type=InvoiceEventType.VOIDED).data == {"reason": "customer churned"}


def test_finalize_action_reports_each_success_and_each_failure(client, superuser):
    first, second = make_draft_invoice(), make_draft_invoice()
    paid = paid_invoice()
    before_paid = snapshot(paid)
    client.force_login(superuser)

    response = run_action(client, "finalize_selected", [first, second, paid])

    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == InvoiceStatus.OPEN
    assert messages_of(response) == [
        ("error", f"{paid.number}: Invoice {paid.number} is paid and cannot become open."),
        (
            "success",
            f"Finalized 2 invoice(s): Draft #{first.pk} as {first.number}, Draft #{second.pk} as {second.number}.",
        ),
        ("warning", "1 invoice(s) were left unchanged (see the errors above)."),
    ]
    assert snapshot(paid) == before_paid


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("void_selected", InvoiceStatus.VOID),
        ("mark_paid_selected", InvoiceStatus.PAID),
        ("mark_uncollectible_selected", InvoiceStatus.UNCOLLECTIBLE),
    ],
)
def test_state_actions_on_open_invoices(client, superuser, action, status):
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = run_action(client, action, [invoice])

    invoice.refresh_from_db()
    assert invoice.status == status
    assert [level for level, _ in messages_of(response)] == ["success"]


def test_void_action_on_a_paid_invoice_is_an_error_not_a_crash(client, superuser):
    invoice = paid_invoice()
    before = snapshot(invoice)
    client.force_login(superuser)

    response = run_action(client, "void_selected", [invoice])

    assert response.status_code == 302
    assert messages_of(response)[0] == (
        "error",
        f"{invoice.number}: Invoice {invoice.number} is paid and cannot become void.",
    )
    assert snapshot(invoice) == before


def test_render_pdf_action(client, superuser):
    issued = make_open_invoice()
    draft = make_draft_invoice()
    client.force_login(superuser)

    response = run_action(client, "render_pdf_selected", [issued, draft])

    issued.refresh_from_db()
    assert issued.pdf
    assert messages_of(response) == [
        ("error", f"Draft #{draft.pk}: Only finalized invoices have a PDF bill."),
        ("success", f"Rendered the PDF of 1 invoice(s): {issued.number}."),
        ("warning", "1 invoice(s) were left unchanged (see the errors above)."),
    ]


def test_render_pdf_is_offered_only_while_the_bill_has_no_pdf(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    offered = [operation["name"] for operation in client.get(change_url(invoice)).context["invoice_operations"]]
    assert "render_pdf" in offered and "send" not in offered

    invoice_render_pdf(invoice_id=invoice.pk)
    offered = [operation["name"] for operation in client.get(change_url(invoice)).context["invoice_operations"]]
    assert "render_pdf" not in offered and "send" in offered


def test_a_second_render_from_the_admin_is_refused_and_changes_nothing(client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    client.force_login(superuser)

    response = client.post(operation_url(invoice, "render_pdf"))

    [(level, message)] = messages_of(response)
    assert level == "error"
    assert "already has its PDF bill" in message and "a rendered bill never changes" in message
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert (fresh.pdf.name, fresh.pdf_sha256) == (invoice.pdf.name, invoice.pdf_sha256)


def test_change_page_shows_the_pdf_hash_and_whether_the_file_still_has_it(client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    client.force_login(superuser)

    content = client.get(change_url(invoice)).content.decode()
    assert invoice.pdf_sha256 in content
    assert "intact: the stored file has this SHA-256" in content

    with open(invoice.pdf.path, "ab") as handle:
        handle.write(b"%%tampered")
    assert "ALTERED" in client.get(change_url(invoice)).content.decode()


def test_send_button_emails_the_bill_after_confirmation(client, superuser):
    invoice = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    client.force_login(superuser)

    confirmation = client.get(operation_url(invoice, "send"))
    assert confirmation.status_code == 200 and mail.outbox == []
    response = client.post(operation_url(invoice, "send"))

    assert messages_of(response) == [("success", f"Emailed {invoice.number}.")]
    [message] = mail.outbox
    assert message.to == [invoice.customer.email]
    event = invoice.events.get(type=InvoiceEventType.EMAILED)
    assert (event.actor, event.data["resend"]) == (superuser, True)


def test_send_action_reports_each_success_and_each_failure(client, superuser):
    sent = invoice_render_pdf(invoice_id=make_open_invoice().pk)
    unrendered = make_open_invoice()
    client.force_login(superuser)

    response = run_action(client, "send_selected", [sent, unrendered])

    assert messages_of(response) == [
        ("error", f"{unrendered.number}: Invoice {unrendered.number} has no PDF bill yet; it is rendered shortly "
                  "after finalization."),
        ("success", f"Emailed 1 invoice(s): {sent.number}."),
        ("warning", "1 invoice(s) were left unchanged (see the errors above)."),
    ]  # fmt: skip
    assert len(mail.outbox) == 1


# --- PDF download ------------------------------------------------------------------------------------


def test_pdf_download_streams_the_rendered_bill(client, superuser):
    invoice = make_open_invoice()
    invoice_render_pdf(invoice_id=invoice.pk)
    client.force_login(superuser)

    response = client.get(pdf_url(invoice))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF")


def test_pdf_download_before_rendering_is_a_clear_404(client, superuser):
    invoice = make_open_invoice()
    draft = make_draft_invoice()
    client.force_login(superuser)

    response = client.get(pdf_url(invoice))
    assert response.status_code == 404
    assert "has not been rendered yet" in response.content.decode()

    response = client.get(pdf_url(draft))
    assert response.status_code == 404
    assert "it is a draft" in response.content.decode()


def test_change_page_links_to_the_pdf(client, superuser):
    invoice = make_open_invoice()
    invoice_render_pdf(invoice_id=invoice.pk)
    client.force_login(superuser)

    response = client.get(change_url(invoice))

    assert pdf_url(invoice) in response.content.decode()


# --- permission matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_anonymous_is_sent_to_login_for_operations(client, operation):
    invoice = make_open_invoice()
    before = snapshot(invoice)

    response = client.post(operation_url(invoice, operation))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert snapshot(invoice) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_viewer_without_change_permission_may_not_run_operations(client, make_staff, operation):
    invoice = make_draft_invoice() if operation == "finalize" else make_open_invoice()
    before = snapshot(invoice)
    client.force_login(make_staff("invoices.view_invoice"))

    assert client.get(operation_url(invoice, operation)).status_code == 403
    assert client.post(operation_url(invoice, operation)).status_code == 403
    run_action(client, f"{operation}_selected", [invoice])

    assert snapshot(invoice) == before


def test_viewer_sees_no_actions_and_no_buttons(client, make_staff):
    invoice = make_open_invoice()
    client.force_login(make_staff("invoices.view_invoice"))

    response = client.get(changelist_url())
    assert response.status_code == 200
    assert response.context["action_form"] is None or not [
        name for name, _ in response.context["action_form"].fields["action"].choices if name
    ]
    response = client.get(change_url(invoice))
    assert response.context["invoice_operations"] == []


@pytest.mark.parametrize("operation", ["void", "mark_paid", "mark_uncollectible"])
def test_staff_with_change_permission_runs_operations(client, make_staff, operation):
    invoice = make_open_invoice()
    staff = make_staff("invoices.view_invoice", "invoices.change_invoice")
    client.force_login(staff)

    response = client.post(operation_url(invoice, operation))

    assert [level for level, _ in messages_of(response)] == ["success"]
    invoice.refresh_from_db()
    assert invoice.status != InvoiceStatus.OPEN
    assert invoice.events.order_by("-id").first().actor == staff


def test_staff_with_change_permission_runs_actions(client, make_staff):
    invoice = make_draft_invoice()
    client.force_login(make_staff("invoices.view_invoice", "invoices.change_invoice"))

    run_action(client, "finalize_selected", [invoice])

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_pdf_download_permissions(client, make_staff):
    invoice = make_open_invoice()
    invoice_render_pdf(invoice_id=invoice.pk)

    response = client.get(pdf_url(invoice))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    client.force_login(make_staff("accounts.view_customer"))
    assert client.get(pdf_url(invoice)).status_code == 403

    client.force_login(make_staff("invoices.view_invoice"))
    response = client.get(pdf_url(invoice))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")


# --- billing runs ------------------------------------------------------------------------------------


def test_run_billing_now_bills_due_subscriptions(client, superuser):
    due = [make_subscription(started_at=clock.now() - timedelta(days=1)) for _ in range(2)]
    make_subscription(started_at=clock.now() + timedelta(days=3))  # not due yet
    client.force_login(superuser)

    response = client.post(reverse("admin:invoices_billingrun_run"))

    run = BillingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:invoices_billingrun_change", args=[run.pk])
    assert run.trigger == BillingRunTrigger.ADMIN
    assert run.triggered_by == superuser
    assert (run.due_count, run.invoiced_count, run.failed_count) == (2, 2, 0)
    assert set(Invoice.objects.values_list("subscription_id", flat=True)) == {sub.pk for sub in due}
    assert messages_of(response) == [
        (
            "success",
            f"Billing run {run.pk} finished: 2 subscription(s) due, 2 invoiced, 0 skipped, 0 failed, "
            f"{run.finalized_count} invoice(s) finalized, {run.ended_count} subscription(s) ended.",
        )
    ]
    page = client.get(response["Location"])
    assert page.status_code == 200


def test_run_billing_now_button_and_permissions(client, make_staff, superuser):
    url = reverse("admin:invoices_billingrun_run")
    make_subscription(started_at=clock.now() - timedelta(days=1))

    assert client.post(url)["Location"].startswith(reverse("admin:login"))
    viewer = make_staff("invoices.view_billingrun")
    client.force_login(viewer)
    assert client.post(url).status_code == 403
    response = client.get(reverse("admin:invoices_billingrun_changelist"))
    assert url not in response.content.decode()
    assert not BillingRun.objects.exists()

    runner = make_staff("invoices.view_billingrun", "invoices.add_billingrun")
    client.force_login(runner)
    assert url in client.get(reverse("admin:invoices_billingrun_changelist")).content.decode()
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert BillingRun.objects.get().triggered_by == runner
    assert Invoice.objects.count() == 1


def test_billing_run_pages_are_read_only_and_show_errors(client, superuser):
    run = BillingRun.objects.create(
        as_of=clock.now(),
        trigger=BillingRunTrigger.SCHEDULE,
        status="completed_with_errors",
        started_at=clock.now(),
        finished_at=clock.now() + timedelta(seconds=3),
        due_count=2,
        invoiced_count=1,
        failed_count=1,
        errors=[{"subscription": 42, "error": "ApplicationError: Plan 'gold' has no price in JPY."}],
    )
    client.force_login(superuser)

    response = client.get(reverse("admin:invoices_billingrun_changelist"))
    assert response.status_code == 200
    assert "3.0 s" in response.content.decode()
    for query in ["status__exact=succeeded", "trigger__exact=admin", f"started_at__year={run.started_at.year}"]:
        assert client.get(f"{reverse('admin:invoices_billingrun_changelist')}?{query}").status_code == 200

    response = client.get(reverse("admin:invoices_billingrun_change", args=[run.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Plan &#x27;gold&#x27; has no price in JPY." in content
    assert reverse("admin:subscriptions_subscription_change", args=[42]) in content
    assert 'name="_save"' not in content
    assert client.get(reverse("admin:invoices_billingrun_add")).status_code == 403


def test_number_sequences_are_listed_read_only(client, superuser):
    make_open_invoice()
    sequence = InvoiceNumberSequence.objects.get()
    client.force_login(superuser)

    response = client.get(reverse("admin:invoices_invoicenumbersequence_changelist"))
    assert response.status_code == 200
    assert sequence.key in response.content.decode()
    response = client.get(reverse("admin:invoices_invoicenumbersequence_change", args=[sequence.pk]))
    assert response.status_code == 200
    assert 'name="last_value"' not in response.content.decode()


def test_invoice_events_are_not_a_separate_admin():
    from django.contrib import admin

    assert not admin.site.is_registered(InvoiceEvent)


def test_invoice_page_shows_taxes_per_rate_read_only(client, superuser):
    TaxRate.objects.create(name="Standard VAT", percentage=Decimal("20"), country="GB")
    invoice = make_open_invoice()
    client.force_login(superuser)

    response = client.get(change_url(invoice))

    assert response.status_code == 200
    assert "Standard VAT" in response.content.decode()
    assert 'name="taxes-0-name"' not in response.content.decode()


def test_tax_rate_changelist_filters_and_search(client, superuser):
    TaxRate.objects.create(name="Standard VAT", percentage=Decimal("19"), country="DE")
    TaxRate.objects.create(name="CA sales tax", percentage=Decimal("7.25"), country="US", region="CA")
    client.force_login(superuser)
    url = reverse("admin:invoices_taxrate_changelist")

    assert client.get(url).status_code == 200
    assert [rate.name for rate in client.get(url, {"q": "sales"}).context["cl"].result_list] == ["CA sales tax"]
    assert [rate.name for rate in client.get(url, {"country": "DE"}).context["cl"].result_list] == ["Standard VAT"]
