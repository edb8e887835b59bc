import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from apps.billing.tasks import billing_run_task
from apps.catalog.models import Price
from apps.invoices.constants import BillingRunTrigger
from apps.invoices.models import BillingRun, Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription
from billing_portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection, as beat does
def test_beat_installs_the_daily_billing_run_from_code():
    DatabaseScheduler(app=celery_app)  # what `celery beat` does at start
    task = PeriodicTask.objects.get(name="billing-run-daily")
    assert task.task == "apps.invoices.tasks.billing_run_task"
    assert (task.crontab.minute, task.crontab.hour) == ("5", "0")
    assert task.task in celery_app.tasks
    assert PeriodicTask.objects.get(name="finalize-due-drafts-hourly").task in celery_app.tasks


def test_billing_run_task_runs_the_service():
    make_subscription(started_at=utc(2026, 1, 1))
    run_id = billing_run_task.apply(kwargs={"as_of": "2026-02-01T00:00:00+00:00"}).get()
    run = BillingRun.objects.get(pk=run_id)
    assert (run.trigger, run.invoiced_count) == (BillingRunTrigger.SCHEDULE, 2)


def test_billing_run_command(capsys):
    make_subscription(started_at=utc(2026, 1, 1))
    call_command("billing_run", "--as-of", "2026-01-15T00:00:00+00:00")
    assert "1 due, 1 invoiced, 0 skipped, 0 failed" in capsys.readouterr().out
    assert Invoice.objects.count() == 1
    assert BillingRun.objects.get().trigger == BillingRunTrigger.COMMAND


def test_billing_run_command_refuses_bad_dates_and_reports_failures():
    with pytest.raises(CommandError, match="UTC offset"):
        call_command("billing_run", "--as-of", "2026-01-15T00:00:00")
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("billing_run", "--as-of", "yesterday")
    subscription = make_subscription(started_at=utc(2026, 1, 1))
    Price.objects.filter(charge__plan_version__plan=subscription.plan).delete()
    with pytest.raises(CommandError, match="1 item"):
        call_command("billing_run", "--as-of", "2026-01-15T00:00:00+00:00")
