import pytest

from apps.invoices.constants import InvoiceEventType, InvoiceStatus
from apps.invoices.services import invoice_finalize
from apps.invoices.tests.factories import make_draft_invoice
from billing_portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def _drop_broker_connections() -> None:
    """Forget pooled connections and producers so the next publish uses the current broker_url."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def unreachable_broker():
    """Point the Celery app at a closed local port, with no publish retries."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_publish_retry")}
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0", task_publish_retry=False)
    _drop_broker_connections()
    yield
    celery_app.conf.update(saved)
    _drop_broker_connections()


def test_a_broker_outage_after_finalization_is_recorded_not_raised(
    unreachable_broker, django_capture_on_commit_callbacks
):
    draft = make_draft_invoice()
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice_id=draft.pk)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN  # the finalization stands
    failure = invoice.events.get(type=InvoiceEventType.PDF_FAILED)
    assert failure.data["error"].startswith("queue unavailable:")
