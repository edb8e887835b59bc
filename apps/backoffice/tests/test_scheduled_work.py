"""Scheduled work: in the embedded default (`make run`: Celery runs tasks in the calling process) the
scheduler runs each job itself when it falls due; the admin lists every job with its last and next run."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from celery.beat import ScheduleEntry, Scheduler
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from apps.backoffice.admin.schedule import next_run_at
from apps.core import clock
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.invoices.tests.factories import make_draft_invoice
from billing_portal.celery import app

pytestmark = pytest.mark.django_db


def test_with_tasks_run_in_process_the_scheduler_runs_a_due_job_itself(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True  # Celery read its settings at start-up
    draft = make_draft_invoice()  # a draft with a day of review time
    after_review = draft.created_at + timedelta(hours=25)
    entry = ScheduleEntry(
        name="finalize-due-drafts-hourly", task="apps.invoices.tasks.invoice_finalize_due_drafts_task",
        args=(after_review.isoformat(),), app=app,
    )  # fmt: skip
    app.loader.import_default_modules()  # what the scheduler does when it starts: the tasks are known
    try:
        Scheduler(app, lazy=True).apply_async(entry)
    finally:
        app.conf.task_always_eager = False

    assert Invoice.objects.get(pk=draft.pk).status == InvoiceStatus.OPEN


def test_next_run_of_an_hourly_job_is_its_next_quarter_past():
    crontab = CrontabSchedule.objects.create(minute="15", hour="*", timezone="UTC")
    now = clock.now().replace(hour=12, minute=40, second=0, microsecond=0)
    job = PeriodicTask.objects.create(
        name="finalize", task="apps.invoices.tasks.invoice_finalize_due_drafts_task", crontab=crontab,
        last_run_at=now.replace(minute=15),
    )  # fmt: skip

    with clock.frozen_at(now):
        moment = next_run_at(job, now=now)

    assert abs(moment - now.replace(hour=13, minute=15)) < timedelta(seconds=2)


def test_a_disabled_job_has_no_next_run():
    every = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    job = PeriodicTask.objects.create(name="collect", task="x", interval=every, enabled=False)

    assert next_run_at(job, now=clock.now()) is None


def test_the_admin_lists_each_job_with_what_it_does_and_when_it_ran_and_runs_next(client, superuser):
    every = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    last = clock.now().replace(microsecond=0) - timedelta(seconds=10)
    PeriodicTask.objects.create(
        name="webhook-events-collect", task="apps.webhooks.tasks.webhook_events_collect_task", interval=every,
        last_run_at=last,
    )  # fmt: skip
    client.force_login(superuser)

    page = client.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()

    assert "Collects new events for the outgoing webhooks." in page
    assert "every 30 seconds" in page
    shown = [datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for text in re.findall(
        r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", page
    )]  # fmt: skip
    assert len(shown) == 1  # the next run (the last run is shown in the admin's own date format)
    assert abs(shown[0] - (last + timedelta(seconds=30))) <= timedelta(seconds=2)
    add = client.get(reverse("admin:django_celery_beat_periodictask_add"))
    assert add.status_code == 403  # jobs are declared in settings, not added by hand


@pytest.mark.parametrize("role", ["Finance admin", "Billing operator", "Read-only auditor", "Support"])
def test_finance_staff_see_no_internals_on_the_admin_index(client, role):
    from django.contrib.auth.models import Group

    from apps.accounts.tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)

    apps_shown = {app["app_label"] for app in client.get(reverse("admin:index")).context["app_list"]}

    assert apps_shown.isdisjoint({"axes", "authtoken", "djstripe"})
    models_shown = {
        model["object_name"]
        for app in client.get(reverse("admin:index")).context["app_list"]
        for model in app["models"]
    }
    assert models_shown.isdisjoint({"ClockedSchedule", "CrontabSchedule", "IntervalSchedule", "SolarSchedule"})


def test_every_task_can_run_in_process_its_soft_limit_within_its_hard_one():
    # Run in process (the embedded scheduler), Celery refuses a task whose soft time limit (its own or
    # the default) is past its hard one: the job would never run.
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith("apps.")}
    assert ours
    limits = {
        name: (
            task.soft_time_limit or app.conf.task_soft_time_limit,
            task.time_limit or app.conf.task_time_limit,
        )
        for name, task in ours.items()
    }
    assert {name: (soft, hard) for name, (soft, hard) in limits.items() if soft and hard and soft > hard} == {}
