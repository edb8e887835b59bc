import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.models import SimulatedClock
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.core.tests.test_admin import change_form_data
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def test_advance_from_the_admin_bills_the_clock_customers(client, superuser):
    clock = SimulatedClock.objects.create(name="Demo clock", frozen_at=utc(2026, 1, 15))
    subscription_start(
        customer=CustomerFactory(currency="USD", test_clock=clock), plan=PlanFactory(prices=[Money("10", "USD")])
    )
    client.force_login(superuser)
    page = client.get(reverse("admin:accounts_simulatedclock_change", args=[clock.pk]))
    assert page.status_code == 200
    assert 'id="test-clock-advance"' in page.content.decode()

    response = client.post(
        reverse("admin:accounts_simulatedclock_advance", args=[clock.pk]),
        {"frozen_at_0": "2026-03-20", "frozen_at_1": "00:00:00"},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Demo clock is now at 2026-03-20 00:00 UTC: 3 billing run(s), 2 invoice(s) created."]
    assert Invoice.objects.count() == 3
    clock.refresh_from_db()
    assert clock.frozen_at == utc(2026, 3, 20)


def test_going_back_is_refused_with_a_message(client, superuser):
    clock = SimulatedClock.objects.create(name="C", frozen_at=utc(2026, 1, 15))
    client.force_login(superuser)

    response = client.post(
        reverse("admin:accounts_simulatedclock_advance", args=[clock.pk]),
        {"frozen_at_0": "2026-01-01", "frozen_at_1": "00:00:00"},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == [
        "Not advanced: A test clock only moves forward. Choose a time after 2026-01-15 00:00 UTC."
    ]
    clock.refresh_from_db()
    assert clock.frozen_at == utc(2026, 1, 15)


def test_advance_needs_change_permission(client, make_staff):
    clock = SimulatedClock.objects.create(name="C", frozen_at=utc(2026, 1, 15))
    client.force_login(make_staff("accounts.view_simulatedclock"))

    response = client.post(
        reverse("admin:accounts_simulatedclock_advance", args=[clock.pk]),
        {"frozen_at_0": "2026-02-01", "frozen_at_1": "0:00"},
    )

    assert response.status_code == 403
    clock.refresh_from_db()
    assert clock.frozen_at == utc(2026, 1, 15)


def test_create_a_clock_and_list_it(client, superuser):
    client.force_login(superuser)
    url = reverse("admin:accounts_simulatedclock_add")
    data = change_form_data(client.get(url), name="New", frozen_at_0="2026-05-01", frozen_at_1="09:00:00")
    add = client.post(url, data)
    assert add.status_code == 302
    assert SimulatedClock.objects.get().frozen_at == utc(2026, 5, 1, 9)
    assert client.get(reverse("admin:accounts_simulatedclock_changelist")).status_code == 200
