"""What the audit trail records, and who it says did it.

- The audited models (`AUDITED_MODELS`) are registered with django-auditlog: every save and delete
  through the ORM writes a `LogEntry` with the changed fields (before and after). Models of apps
  that are not installed are skipped, so the list can name models that other apps bring.
- Each entry is stamped (before it is saved) from `apps.core.audit`: the request's user (admin,
  session or token API), the API key when the caller is one, the system actor of a Celery task or a
  command (e.g. "billing run"), and the reason the service was given.
- An object's "History" button in the admin opens its audit trail.

Writes that bypass model signals (the billing run's bulk path writes with COPY) are recorded by the
domain events they write (`InvoiceEvent`, …), which the audit trail shows next to these entries.
"""

from typing import Any

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from celery.signals import task_postrun, task_prerun
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from apps.core.audit import AuditContext, audit_context, audit_system_actor

# (model label, fields left out of the diff: bookkeeping and secrets)
AUDITED_MODELS: dict[str, list[str]] = {
    "accounts.Customer": ["updated_at"],
    "accounts.BillingContact": ["updated_at"],
    "accounts.CustomerMembership": ["updated_at"],
    "accounts.ApiKey": ["updated_at", "key_hash", "last_used_at"],
    "accounts.PortalToken": ["updated_at", "key_hash", "last_used_at"],
    "accounts.UserToken": ["updated_at", "key_hash", "last_used_at"],
    "catalog.Product": ["updated_at"],
    "catalog.Plan": ["updated_at"],
    "catalog.PlanVersion": ["updated_at"],
    "catalog.Charge": [],
    "catalog.Price": [],
    "catalog.Coupon": ["updated_at"],
    "subscriptions.Subscription": ["updated_at"],
    "subscriptions.SubscriptionItem": [],
    "subscriptions.ScheduledChange": [],
    "subscriptions.SubscriptionPriceOverride": ["updated_at"],
    "invoices.Invoice": ["updated_at", "pdf_file"],
    "invoices.CreditNote": ["updated_at", "pdf_file"],
    "invoices.InvoiceItem": ["updated_at"],  # one-off charges staff add, change and delete
    "invoices.TaxRate": ["updated_at"],
    "payments.Payment": ["updated_at"],
    "payments.PaymentAllocation": [],
    "payments.Refund": ["updated_at"],
    "payments.DunningCampaign": ["updated_at"],
    "payments.CustomerDunningSetting": ["updated_at"],
    "payments.InvoiceDunning": ["updated_at"],
    "payments.StripeCustomer": ["updated_at"],
    "webhooks.WebhookEndpoint": ["updated_at", "secret", "consecutive_failures"],
    "alerts.Alert": ["updated_at"],
    "auth.User": ["password", "last_login"],
    "auth.Group": [],
    "django_celery_beat.PeriodicTask": ["last_run_at", "total_run_count", "date_changed"],
}

# Celery tasks that act as a named part of the product (others are named after the task).
SYSTEM_ACTORS = {
    "apps.invoices.tasks.billing_run_task": "billing run",
    "apps.invoices.tasks.billing_run_chunk_task": "billing run",
    "apps.invoices.tasks.invoice_finalize_due_drafts_task": "draft finalization",
    "apps.invoices.tasks.invoice_render_pdf_task": "PDF rendering",
    "apps.invoices.tasks.invoice_render_pdfs_task": "PDF rendering",
    "apps.invoices.tasks.credit_note_render_pdf_task": "PDF rendering",
    "apps.invoices.tasks.invoice_email_task": "invoice email",
    "apps.payments.dunning.tasks.dunning_run_task": "dunning",
    "apps.payments.stripe.tasks.invoice_collect_task": "card collection",
    "apps.payments.stripe.tasks.stripe_refund_task": "card refund",
}


def audited_models() -> list[Any]:
    models = []
    for label in AUDITED_MODELS:
        try:
            models.append(apps.get_model(label))
        except LookupError:
            continue  # that app is not installed here
    return models


def register_audited_models() -> None:
    for model in audited_models():
        if not auditlog.contains(model):
            # The model's own columns only: a reverse one-to-one (a customer's Stripe link) would be read
            # (one query each) and cached as missing on every save.
            auditlog.register(
                model,
                include_fields=[field.name for field in model._meta.concrete_fields],
                exclude_fields=AUDITED_MODELS[model._meta.label],
            )


def actor_fields(context: AuditContext) -> dict[str, Any]:
    """Who acted, as stored on an entry: the user (when a person) and a label for everyone."""
    user = getattr(context.request, "user", None) if context.request is not None else None
    if not getattr(user, "is_authenticated", False) and context.user is not None:
        user = context.user
    user_model = get_user_model()
    fields: dict[str, Any] = {"user": None, "label": "", "via": ""}
    path = getattr(context.request, "path", "") or ""
    if context.request is not None:
        fields["via"] = "api" if path.startswith("/api/") else "admin" if path.startswith("/admin/") else "web"
    if isinstance(user, user_model) and user.is_authenticated:
        fields["user"] = user
        fields["label"] = user.get_username()
    elif user is not None and getattr(user, "api_key", None) is not None:
        fields["label"] = f"API key {user.api_key.name} ({user.api_key.prefix}…)"
    if context.system_actor:
        fields["label"] = f"{fields['label']} ({context.system_actor})" if fields["label"] else context.system_actor
        fields["via"] = fields["via"] or "system"
    return fields


def stamp_log_entry(sender: Any, instance: LogEntry, **kwargs: Any) -> None:
    if instance.pk is not None:
        return
    context = audit_context()
    fields = actor_fields(context)
    if instance.actor_id is None and fields["user"] is not None:
        instance.actor = fields["user"]
        instance.actor_email = getattr(fields["user"], "email", None)
    data = dict(instance.additional_data or {})
    if fields["label"]:
        data.setdefault("actor", fields["label"])
    if fields["via"]:
        data.setdefault("via", fields["via"])
    if context.reason:
        data.setdefault("reason", context.reason)
    instance.additional_data = data or None


_task_contexts: dict[str, Any] = {}


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    manager = audit_system_actor(SYSTEM_ACTORS.get(task.name, f"task {task.name.rsplit('.', 1)[-1]}"))
    manager.__enter__()
    _task_contexts[task_id] = manager


def task_finished(task_id: str | None = None, **kwargs: Any) -> None:
    manager = _task_contexts.pop(task_id or "", None)
    if manager is not None:
        manager.__exit__(None, None, None)


def connect_signals() -> None:
    pre_save.connect(stamp_log_entry, sender=LogEntry, dispatch_uid="audit_stamp_log_entry")
    task_prerun.connect(task_started, dispatch_uid="audit_task_started", weak=False)
    task_postrun.connect(task_finished, dispatch_uid="audit_task_finished", weak=False)


def link_admin_history() -> None:
    """Every audited model's "History" button opens the object's audit trail."""
    for model in audited_models():
        model_admin = admin.site._registry.get(model)
        if model_admin is None:
            continue

        def history_view(request, object_id, extra_context=None, _model=model):
            query = urlencode({"model": _model._meta.label_lower, "object_id": object_id})
            return HttpResponseRedirect(f"{reverse('admin:auditlog_logentry_changelist')}?{query}")

        model_admin.history_view = history_view  # type: ignore[method-assign]
