import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory
from django.urls import reverse

from apps.accounts.api.authentication import ApiKeyClient
from apps.accounts.credentials import api_key_create, user_token_create
from apps.accounts.models import ApiKey, Customer
from apps.accounts.services import customer_create
from apps.accounts.tests.factories import CustomerFactory
from apps.audit.selectors import AuditFilter, audit_trail
from apps.billing.services import bill_due_subscriptions
from apps.billing.tasks import invoice_finalize_due_drafts_task
from apps.core import clock
from apps.core.audit import audit_request
from apps.invoices.models import Invoice
from apps.invoices.services import invoice_void
from apps.invoices.tests.factories import make_draft_invoice, make_open_invoice
from apps.subscriptions.services import subscription_cancel
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

TRAIL_URL = reverse("admin:auditlog_logentry_changelist")


def entries_for(obj) -> list[LogEntry]:
    return list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(type(obj)), object_pk=str(obj.pk)
        ).order_by("id")
    )


def test_a_change_through_the_api_records_the_token_user_before_and_after(api_client, make_staff):
    user = make_staff("accounts.view_customer", "accounts.change_customer", username="integrator")
    _, token = user_token_create(user_id=user.pk, name="audit")
    customer = customer_create(name="Old Name", email="a@example.com", country="IE", currency="EUR")

    response = api_client.patch(
        reverse("api:customer-detail", args=[customer.pk]),
        {"name": "New Name"},
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    assert response.status_code == 200
    created, changed = entries_for(customer)
    assert (created.action, created.actor, created.additional_data) == (LogEntry.Action.CREATE, None, None)
    assert changed.action == LogEntry.Action.UPDATE
    assert changed.actor == user
    assert changed.changes_dict == {"name": ["Old Name", "New Name"]}
    assert changed.additional_data == {"actor": "integrator", "via": "api"}


def test_an_admin_operation_records_the_staff_user_and_the_reason(client, superuser):
    invoice = make_open_invoice()
    client.force_login(superuser)

    client.post(reverse("admin:invoices_invoice_void", args=[invoice.pk]), {"note": "duplicate of INV-7"})

    change = entries_for(invoice)[-1]
    assert change.actor == superuser
    assert change.changes_dict["status"] == ["open", "void"]
    assert change.additional_data == {"actor": "root", "via": "admin", "reason": "duplicate of INV-7"}


def test_a_service_with_a_reason_records_it(db):
    subscription = make_subscription()

    subscription_cancel(subscription_id=subscription.pk, at_period_end=False, reason="too expensive")

    change = entries_for(subscription)[-1]
    assert change.changes_dict["status"] == ["active", "canceled"]
    assert change.additional_data == {"reason": "too expensive"}


def test_an_api_key_caller_is_named_by_its_key():
    api_key, _ = api_key_create(name="Metering pipeline")
    request = RequestFactory().post("/api/v1/events/batch")
    request.user = ApiKeyClient(ApiKey.objects.get(pk=api_key.pk))

    with audit_request(request):
        customer = CustomerFactory()

    [created] = entries_for(customer)
    assert created.actor is None
    assert created.additional_data == {"actor": f"API key Metering pipeline ({api_key.prefix}…)", "via": "api"}


def test_the_billing_run_is_the_actor_of_what_it_changes_and_its_events_are_in_the_trail():
    subscription = make_subscription(started_at=datetime(2026, 1, 15, 9, tzinfo=UTC))
    due = subscription.next_billing_at
    before = LogEntry.objects.order_by("-id").values_list("id", flat=True).first()

    with clock.frozen_at(due):
        bill_due_subscriptions(now=due, fan_out=False)

    invoice = Invoice.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    # The one-by-one path saves through the ORM (entries by "billing run"); the bulk path on PostgreSQL
    # writes with COPY and leaves its events as the record.
    written = LogEntry.objects.filter(id__gt=before)
    assert {str(entry.additional_data) for entry in written} <= {str({"actor": "billing run", "via": "system"})}
    trail = audit_trail(AuditFilter(model="invoices.invoice", object_id=str(invoice.pk)))
    events = [(record.kind, record.action, record.actor) for record in trail if record.kind == "event"]
    assert events == [("event", "Finalized", "system"), ("event", "Created", "system")]


def test_a_subscriptions_trail_shows_each_period_the_billing_run_moved_it_to(client, superuser):
    subscription = make_subscription(started_at=datetime(2026, 1, 15, 9, tzinfo=UTC))
    runs = []
    for _ in range(2):  # the first period, then a plain renewal (the bulk path on PostgreSQL)
        subscription.refresh_from_db()
        due = subscription.next_billing_at
        with clock.frozen_at(due):
            bill_due_subscriptions(now=due, fan_out=False)
        runs.append(due)
    subscription.refresh_from_db()
    invoices = list(Invoice.objects.filter(subscription=subscription).order_by("-issued_at"))
    assert len(invoices) == 2 and subscription.current_period_start_at == invoices[0].lines.get().period_start_at

    trail = audit_trail(AuditFilter(model="subscriptions.subscription", object_id=str(subscription.pk)))

    # Whichever path billed it (the bulk path moves the period with an UPDATE no audit log entry sees),
    # each move is in the subscription's own trail, at the invoice's creation, with the period and invoice.
    periods = [record for record in trail if record.action == "Period invoiced"]
    assert [(record.occurred_at, record.actor, record.object_id) for record in periods] == [
        (runs[1], "system", str(subscription.pk)), (runs[0], "system", str(subscription.pk))
    ]  # fmt: skip
    assert periods[0].changes == {
        "period_start": subscription.current_period_start_at.isoformat(),
        "period_end": subscription.current_period_end_at.isoformat(),
        "invoice": invoices[0].number,
    }
    # Only in the subscriptions' trail: the invoice's own trail has its events, not a copy of these.
    assert not [r for r in audit_trail(AuditFilter(model="invoices.invoice")) if r.action == "Period invoiced"]
    assert audit_trail(AuditFilter(model="subscriptions.subscription", actor="alice")) == []
    client.force_login(superuser)
    page = client.get(reverse("admin:subscriptions_subscription_history", args=[subscription.pk]), follow=True)
    assert "Period invoiced" in page.content.decode() and invoices[0].number in page.content.decode()


def test_a_celery_task_acts_as_its_named_system_actor():
    draft = make_draft_invoice()

    invoice_finalize_due_drafts_task.apply(args=[draft.auto_finalize_at.isoformat()])

    draft.refresh_from_db()
    assert draft.status == "open"
    finalized = entries_for(draft)[-1]
    assert finalized.changes_dict["status"] == ["draft", "open"]
    assert finalized.additional_data == {"actor": "draft finalization", "via": "system"}


def test_the_trail_of_an_object_merges_changes_and_domain_events_newest_first(superuser):
    invoice = make_open_invoice()
    invoice_void(invoice_id=invoice.pk, actor=superuser, reason="wrong customer")

    trail = audit_trail(AuditFilter(model="invoices.invoice", object_id=str(invoice.pk)))

    # The void's field change and its event, at the same moment (their order among equals is not fixed).
    assert sorted((record.kind, record.action, record.actor, record.reason) for record in trail[:2]) == [
        ("change", "changed", "root", "wrong customer"),
        ("event", "Voided", "root", "wrong customer"),
    ]
    assert [record.occurred_at for record in trail] == sorted((record.occurred_at for record in trail), reverse=True)
    assert {record.model for record in trail} == {"invoices.invoice"}
    assert {record.object_id for record in trail} == {str(invoice.pk)}


def test_admin_trail_filters_by_actor_model_and_date_and_exports_csv(client, superuser, make_staff):
    auditor = make_staff("auditlog.view_logentry", username="auditor")
    customer = customer_create(name="Filtered Ltd", email="f@example.com", country="IE", currency="EUR")
    entry = entries_for(customer)[0]
    day = entry.timestamp.astimezone(UTC).date()
    client.force_login(auditor)

    page = client.get(TRAIL_URL, {"model": "accounts.customer", "object_id": customer.pk})
    assert page.status_code == 200
    assert b"Filtered Ltd" in page.content

    on_day = client.get(TRAIL_URL, {"model": "accounts.customer", "date_from": day, "date_to": day})
    next_day = client.get(TRAIL_URL, {"model": "accounts.customer", "date_from": day + timedelta(days=1)})
    day_before = client.get(TRAIL_URL, {"model": "accounts.customer", "date_to": day - timedelta(days=1)})
    by_actor = client.get(TRAIL_URL, {"model": "accounts.customer", "actor": "nobody-called-this"})
    by_system = client.get(TRAIL_URL, {"model": "accounts.customer", "actor": "system"})
    assert b"Filtered Ltd" in on_day.content
    assert b"Filtered Ltd" not in next_day.content
    assert b"Filtered Ltd" not in day_before.content
    assert b"Filtered Ltd" not in by_actor.content
    assert b"Filtered Ltd" in by_system.content
    # A user name over every kind of object, domain events included (their actor is a user or none).
    invoice = make_open_invoice()
    invoice_void(invoice_id=invoice.pk, actor=auditor, reason="wrong customer")
    by_user = client.get(TRAIL_URL, {"actor": "audit"})
    assert by_user.status_code == 200
    assert b"Voided" in by_user.content and b"wrong customer" in by_user.content
    assert b"Filtered Ltd" not in by_user.content

    export = client.get(TRAIL_URL, {"model": "accounts.customer", "object_id": customer.pk, "format": "csv"})
    assert export["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == ["occurred_at", "kind", "model", "object_id", "object", "action", "actor", "via", "reason",
                       "changes"]  # fmt: skip
    assert rows[1][:9] == [
        entry.timestamp.isoformat(), "change", "accounts.customer", str(customer.pk), "Filtered Ltd", "created",
        "system", "", "",
    ]  # fmt: skip
    assert json.loads(rows[1][9])["name"] == [None, "Filtered Ltd"]
    assert len(rows) == 2


def test_admin_trail_refuses_a_bad_filter_with_form_errors(client, superuser):
    client.force_login(superuser)

    response = client.get(TRAIL_URL, {"object_id": "12", "date_from": "2026-05-02", "date_to": "2026-05-01"})

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {
        "model": ["Choose the kind of object the ID belongs to."],
        "date_to": ["The end date is before the start date."],
    }
    assert list(response.context["page"]) == []


def test_the_trail_is_never_editable(client, superuser):
    customer = CustomerFactory()
    entry = entries_for(customer)[0]
    client.force_login(superuser)

    change = client.post(reverse("admin:auditlog_logentry_change", args=[entry.pk]), {"object_repr": "forged"})
    delete = client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"})
    add = client.get(reverse("admin:auditlog_logentry_add"))

    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    entry.refresh_from_db()
    assert entry.object_repr == customer.name


def test_the_trail_needs_the_view_permission(client, make_staff):
    client.force_login(make_staff("accounts.view_customer"))

    assert client.get(TRAIL_URL).status_code == 403


def test_an_objects_history_button_opens_its_audit_trail(client, superuser):
    customer = CustomerFactory()
    client.force_login(superuser)

    response = client.get(reverse("admin:accounts_customer_history", args=[customer.pk]))

    assert response.status_code == 302
    assert response["Location"] == f"{TRAIL_URL}?model=accounts.customer&object_id={customer.pk}"
    assert Customer.objects.count() == 1


def test_the_database_refuses_to_change_an_entry(db):
    customer = CustomerFactory()
    entry = entries_for(customer)[0]

    with pytest.raises(IntegrityError), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="forged")

    entry.refresh_from_db()
    assert entry.object_repr == customer.name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite keeps deletes for the test flush")
def test_the_database_refuses_to_delete_an_entry(db):
    entry = entries_for(CustomerFactory())[0]

    with pytest.raises(IntegrityError), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()

    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_deleting_a_staff_user_keeps_their_entries(api_client, make_staff):
    user = make_staff("accounts.view_customer", "accounts.change_customer", username="leaver")
    customer = CustomerFactory()
    api_client.force_authenticate(user)
    api_client.patch(reverse("api:customer-detail", args=[customer.pk]), {"name": "Renamed"})
    api_client.force_authenticate(None)

    user.delete()

    changed = entries_for(customer)[-1]
    assert (changed.actor, changed.actor_email, changed.additional_data["actor"]) == (
        None,
        "leaver@example.com",
        "leaver",
    )
