import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEvent
from apps.usage.services import usage_events_ingest

from .conftest import NOW, event

pytestmark = pytest.mark.django_db


def _ingest_for(customer_count: int, prefix: str) -> None:
    for index in range(customer_count):
        CustomerFactory(external_id=f"{prefix}{index}")
    usage_events_ingest(
        events=[
            event(f"{prefix}-t{i}", utc(2026, 3, 15, i % 12), customer=f"{prefix}{i % customer_count}")
            for i in range(40)
        ],
        now=NOW,
    )


def test_staff_see_events_read_only_in_a_fixed_number_of_queries(client, superuser, make_metric):
    make_metric()
    client.force_login(superuser)
    url = reverse("admin:usage_usageevent_changelist")
    _ingest_for(2, "a")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    UsageEvent.objects.all().delete()
    _ingest_for(8, "b")

    with CaptureQueriesContext(connection) as many:
        response = client.get(url + "?q=b7")

    assert response.status_code == 200
    assert len(many) <= len(few) + 1  # the search adds no per-row query
    detail = client.get(reverse("admin:usage_usageevent_change", args=[UsageEvent.objects.first().pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.get(reverse("admin:usage_usageevent_add")).status_code == 403


def test_staff_without_permission_do_not_see_events(client, make_staff):
    client.force_login(make_staff())

    assert client.get(reverse("admin:usage_usageevent_changelist")).status_code == 403
