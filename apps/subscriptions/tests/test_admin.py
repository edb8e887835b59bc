from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.invoices.tests.factories import make_open_invoice
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.models import Subscription
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

ADD = "admin:subscriptions_subscription_add"
CHANGELIST = "admin:subscriptions_subscription_changelist"


def add_data(customer, plan, **extra) -> dict:
    return {
        "customer": customer.pk,
        "plan": plan.pk,
        "quantity": 1,
        "started_at_0": "",
        "started_at_1": "",
        "_save": "Save",
        **extra,
    }


def test_changelist_loads_with_filters_and_search(client, superuser):
    subscription = make_subscription(customer=CustomerFactory(name="Globex", external_id="cus_globex"))
    other = make_subscription()
    client.force_login(superuser)

    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    for term in ["Globex", "cus_globex"]:
        response = client.get(reverse(CHANGELIST), {"q": term})
        assert list(response.context["cl"].result_list) == [subscription]
    for query in [
        "status__exact=active",
        f"plan__id__exact={other.plan_id}",
        "currency__exact=USD",
        f"started_at__year={subscription.started_at.year}",
    ]:
        response = client.get(f"{reverse(CHANGELIST)}?{query}")
        assert response.status_code == 200, query
    response = client.get(f"{reverse(CHANGELIST)}?plan__id__exact={other.plan_id}")
    assert list(response.context["cl"].result_list) == [other]


def test_changelist_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    for _ in range(20):
        make_subscription()
    client.force_login(superuser)
    client.get(reverse(CHANGELIST))

    with django_assert_max_num_queries(12):
        response = client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 20


def test_change_page_is_read_only_and_lists_invoices(client, superuser):
    invoice = make_open_invoice()
    subscription = invoice.subscription
    client.force_login(superuser)

    url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    response = client.get(url)

    assert response.status_code == 200
    content = response.content.decode()
    assert invoice.number in content
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in content
    assert 'name="_save"' not in content
    assert client.post(url, {"quantity": 5, "status": "canceled"}).status_code == 403
    subscription.refresh_from_db()
    assert (subscription.quantity, subscription.status) == (1, SubscriptionStatus.ACTIVE)


def test_add_page_asks_only_for_what_staff_choose(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse(ADD))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {
        "customer",
        "plan",
        "quantity",
        "started_at",
        "trial_days",
        "billing_cycle_day",
    }


def test_add_subscription_through_the_service(client, superuser):
    customer = CustomerFactory(currency="EUR")
    plan = PlanFactory()
    client.force_login(superuser)

    before = clock.now()
    response = client.post(reverse(ADD), add_data(customer, plan, quantity=3))

    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.customer, subscription.plan, subscription.quantity) == (customer, plan, 3)
    assert subscription.currency == "EUR"
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.started_at >= before
    assert subscription.current_period_start_at == subscription.started_at
    # The first period is invoiced at once; the next invoice is due when it ends.
    assert subscription.next_billing_at == subscription.current_period_end_at
    [invoice] = subscription.invoices.all()
    assert (invoice.period_start_at, invoice.total) == (subscription.started_at, Money("135.00", "EUR"))


def test_add_subscription_with_a_start_date(client, superuser):
    customer = CustomerFactory()
    plan = PlanFactory()
    client.force_login(superuser)
    start = (clock.now() + timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)

    client.post(
        reverse(ADD), add_data(customer, plan, started_at_0=f"{start:%Y-%m-%d}", started_at_1=f"{start:%H:%M:%S}")
    )

    assert Subscription.objects.get().started_at == start


def test_plan_without_a_price_in_the_customer_currency_is_a_form_error(client, superuser):
    customer = CustomerFactory(currency="GBP")
    plan = PlanFactory(prices=[Money(Decimal("49.00"), "USD")])
    client.force_login(superuser)

    response = client.post(reverse(ADD), add_data(customer, plan))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "plan": ["This plan has no price in GBP (it is priced in: USD)."]
    }
    # The page is shown again with what was typed.
    assert response.context["adminform"].form["customer"].value() == str(customer.pk)
    assert not Subscription.objects.exists()


def test_archived_plan_is_a_form_error(client, superuser):
    customer = CustomerFactory()
    plan = PlanFactory(is_archived=True)
    client.force_login(superuser)

    response = client.post(reverse(ADD), add_data(customer, plan))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "plan": ["This plan is archived and takes no new subscriptions."]
    }
    assert not Subscription.objects.exists()


def test_no_deleting_subscriptions(client, superuser):
    subscription = make_subscription()
    client.force_login(superuser)

    assert client.post(reverse("admin:subscriptions_subscription_delete", args=[subscription.pk])).status_code == 403
    assert Subscription.objects.filter(pk=subscription.pk).exists()


def test_add_permission_matrix(client, make_staff):
    customer = CustomerFactory()
    plan = PlanFactory()

    response = client.post(reverse(ADD), add_data(customer, plan))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))

    client.force_login(make_staff("subscriptions.view_subscription"))
    assert client.post(reverse(ADD), add_data(customer, plan)).status_code == 403
    assert not Subscription.objects.exists()

    client.force_login(make_staff("subscriptions.add_subscription", "accounts.view_customer", "catalog.view_plan"))
    assert client.post(reverse(ADD), add_data(customer, plan)).status_code == 302
    assert Subscription.objects.count() == 1
