"""Scheduled work in the back office: every periodic job (billing run, draft finalization, dunning,
webhook delivery, missing PDFs, report refresh) with what it does, when it last ran and when it runs
next. The jobs are declared in settings (CELERY_BEAT_SCHEDULE) and installed by the scheduler; this
page replaces django-celery-beat's generic one with a read-only view that finance staff can read."""

from datetime import datetime

from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
    cronexp,
)

from apps.core import clock
from apps.core.admin import staff_datetime

JOB_DESCRIPTIONS = {
    "apps.invoices.tasks.billing_run_task": _("Bills every subscription whose period has begun (the billing run)."),
    "apps.invoices.tasks.invoice_finalize_due_drafts_task": _("Finalizes drafts whose review time is over."),
    "apps.invoices.tasks.invoice_render_missing_pdfs_task": _("Renders and emails bills left without a PDF."),
    "apps.payments.dunning.tasks.dunning_run_task": _("Dunning: reminders, card retries and end actions due now."),
    "apps.webhooks.tasks.webhook_events_collect_task": _("Collects new events for the outgoing webhooks."),
    "apps.webhooks.tasks.webhook_deliveries_requeue_due_task": _("Retries webhook deliveries whose time has come."),
    "apps.reports.tasks.reports_refresh_task": _("Refreshes the finance dashboard's figures."),
    "apps.usage.tasks.usage_partitions_ensure_task": _("Creates next months' partitions of the usage events."),
    "apps.usage.tasks.usage_keys_rotate_task": _("Rotates the table of taken transaction ids, dropping expired ones."),
    "apps.wallets.tasks.wallet_credits_expire_task": _("Expires prepaid credits whose validity is over."),
    "apps.alerts.tasks.alerts_evaluate_all_task": _("Checks every usage and spending alert against its thresholds."),
    "apps.billing.tasks.progressive_evaluate_all_task": _(
        "Progressive billing: bills subscriptions whose usage crossed a threshold."
    ),
    "celery.backend_cleanup": _("Deletes expired task results (Celery's own clean-up)."),
}

# The interval units of django-celery-beat, by how the admin writes "every N <unit>".
INTERVAL_TEXTS = {
    "days": lambda n: ngettext("every %(n)s day", "every %(n)s days", n) % {"n": n},
    "hours": lambda n: ngettext("every %(n)s hour", "every %(n)s hours", n) % {"n": n},
    "minutes": lambda n: ngettext("every %(n)s minute", "every %(n)s minutes", n) % {"n": n},
    "seconds": lambda n: ngettext("every %(n)s second", "every %(n)s seconds", n) % {"n": n},
}


def crontab_text(crontab: CrontabSchedule) -> str:
    """A crontab in words, in the reader's language: cron-descriptor (which django-celery-beat uses
    for its English text) ships a Chinese catalogue, used for staff who read Chinese."""
    if not (get_language() or "").lower().startswith("zh"):
        return crontab.human_readable
    fields = (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week)
    options = Options()
    options.locale_code = "zh_CN"
    options.use_24hour_time_format = True
    try:
        text = ExpressionDescriptor(" ".join(cronexp(field) for field in fields), options).get_description()
    except (FormatException, MissingFieldException, WrongArgumentException):
        return crontab.human_readable
    return f"{text} {crontab.timezone}"


def next_run_at(task: PeriodicTask, *, now: datetime) -> datetime | None:
    """When the scheduler runs `task` next (None: disabled, or a one-off that ran)."""
    if not task.enabled or (task.one_off and task.last_run_at is not None):
        return None
    schedule = task.schedule
    schedule.nowfun = lambda: now  # the project's clock, not the scheduler's wall clock
    remaining = schedule.remaining_estimate(task.last_run_at or now)
    return max(now, now + remaining)


admin.site.unregister(PeriodicTask)
# The schedules behind the jobs are internals: the jobs' page says when each runs.
for _schedule in (ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule):
    admin.site.unregister(_schedule)


@admin.register(PeriodicTask)
class ScheduledWorkAdmin(PeriodicTaskAdmin):
    """Read-only for everyone; django-celery-beat's list actions (enable, disable, toggle, run now) stay
    for whoever holds the change permission (superusers: no role has it, docs/roles.md)."""

    WRITE_ACTIONS = ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")
    list_display = ["name", "what_it_does", "when", "enabled", "last_run_at", "next_run", "total_run_count"]
    list_filter = ["enabled"]
    search_fields = ["name", "task"]
    ordering = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "what_it_does", "task", "when", "enabled", "last_run_at", "next_run",
                           "total_run_count"]}),
    ]  # fmt: skip
    readonly_fields = ["name", "what_it_does", "task", "when", "enabled", "last_run_at", "next_run", "total_run_count"]

    @admin.display(description=_("what it does"))
    def what_it_does(self, task: PeriodicTask) -> str:
        return JOB_DESCRIPTIONS.get(task.task, task.description or task.task)

    @admin.display(description=_("runs"))
    def when(self, task: PeriodicTask) -> str:
        if task.crontab_id is not None:
            return crontab_text(task.crontab)
        if task.interval_id is not None:
            text = INTERVAL_TEXTS.get(task.interval.period)
            return text(task.interval.every) if text else f"every {task.interval.every} {task.interval.period}"
        return str(task.scheduler)

    @admin.display(description=_("next run"))
    def next_run(self, task: PeriodicTask) -> str:
        moment = next_run_at(task, now=clock.now())
        if moment is None:
            return "—"
        return format_html("{} UTC", staff_datetime(moment, seconds=True))

    def has_add_permission(self, request) -> bool:
        return False  # jobs are declared in settings and installed by the scheduler

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in self.WRITE_ACTIONS:
                actions.pop(name, None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
