"""The admin's alerts: added and changed through the services (a refused threshold is a form error and
nothing is saved), filtered and searched; the crossing history on the alert's page and in its own list."""

import re

import pytest
from django.contrib.auth.models import Group

from apps.accounts.roles import SUPPORT
from apps.accounts.tests.factories import UserFactory
from apps.alerts.models import Alert
from apps.alerts.services import alert_create, alerts_evaluate_customer
from apps.core.tests.test_admin import change_form_data

pytestmark = pytest.mark.django_db

ADD = "/admin/alerts/alert/add/"


def test_add_an_alert(client, superuser, world):
    client.force_login(superuser)
    form = client.get(ADD)
    data = change_form_data(
        form, customer=world.a.customer.pk, kind="usage", metric=world_metric_id(), thresholds="100, 50",
        name="API volume", is_hard_limit="on",
    )  # fmt: skip

    response = client.post(ADD, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    alert = Alert.objects.get()
    assert (alert.kind, alert.metric.code, alert.thresholds, alert.is_hard_limit, alert.created_by) == (
        "usage", "api_calls", ["50", "100"], True, superuser,
    )  # fmt: skip


def world_metric_id() -> int:
    from apps.catalog.models import BillableMetric

    return BillableMetric.objects.get(code="api_calls").pk


def test_a_refused_threshold_is_a_form_error_and_nothing_is_saved(client, superuser, world):
    client.force_login(superuser)
    data = change_form_data(client.get(ADD), customer=world.a.customer.pk, kind="spend", thresholds="10, -3")

    response = client.post(ADD, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "thresholds": ["Each threshold must be a number above zero (got -3)."]
    }
    assert Alert.objects.count() == 0


def test_change_keeps_what_it_watches_and_shows_the_crossings(client, superuser, world):
    alert = alert_create(customer=world.a.customer, kind="usage", metric="api_calls", thresholds=["5"])
    alerts_evaluate_customer(customer_id=world.a.customer.pk)
    client.force_login(superuser)
    url = f"/admin/alerts/alert/{alert.pk}/change/"
    page = client.get(url)
    # The crossing's value, in the inline, without trailing zeros (the admin's decimal format).
    assert re.search(r'class="field-value">\s*<p>6</p>', page.content.decode())

    response = client.post(url, change_form_data(page, thresholds="5, 8", is_active=""))

    assert response.status_code == 302
    alert.refresh_from_db()
    assert (alert.kind, alert.metric.code, alert.thresholds, alert.is_active) == (
        "usage",
        "api_calls",
        ["5", "8"],
        False,
    )


def test_lists_filter_and_search(client, superuser, world):
    alert_create(customer=world.a.customer, kind="spend", thresholds=["10"], name="Alpha spend")
    alert_create(customer=world.b.customer, kind="usage", metric="api_calls", thresholds=["1"], origin="customer")
    alerts_evaluate_customer(customer_id=world.b.customer.pk)
    client.force_login(superuser)

    assert client.get("/admin/alerts/alert/?q=Alpha").context["cl"].result_count == 1
    assert client.get("/admin/alerts/alert/?origin__exact=customer").context["cl"].result_count == 1
    assert client.get("/admin/alerts/alert/?kind__exact=spend&is_active__exact=1").context["cl"].result_count == 1
    crossings = client.get(f"/admin/alerts/alertcrossing/?q={world.b.customer.external_id}")
    assert crossings.context["cl"].result_count == 1


def test_support_reads_but_does_not_change(client, world):
    alert = alert_create(customer=world.a.customer, kind="spend", thresholds=["10"])
    user = UserFactory(username="support", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(user)

    assert client.get(f"/admin/alerts/alert/{alert.pk}/change/").status_code == 200
    assert client.post(f"/admin/alerts/alert/{alert.pk}/change/", {"thresholds": "1"}).status_code == 403
    assert Alert.objects.get().thresholds == ["10"]
