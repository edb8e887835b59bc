"""Budgets in the portal: a customer sets its own alerts; bad input is refused with nothing saved; one
customer never sees or deletes another's."""

import pytest

from apps.accounts.models import CustomerMembership
from apps.alerts.models import Alert
from apps.alerts.services import alert_create

pytestmark = pytest.mark.django_db


def test_set_a_spend_budget_and_a_usage_budget(client, world):
    client.force_login(world.a.user)

    spend = client.post("/portal/budgets/", {"watch": "spend", "thresholds": "100, 50", "is_hard_limit": "on"})
    usage = client.post("/portal/budgets/", {"watch": "api_calls", "thresholds": "1000"})

    assert (spend.status_code, usage.status_code) == (302, 302)
    budgets = list(Alert.objects.order_by("id").values_list("customer", "kind", "metric__code", "thresholds",
                                                            "is_hard_limit", "origin", "created_by"))  # fmt: skip
    assert budgets == [
        (world.a.customer.pk, "spend", None, ["50", "100"], True, "customer", world.a.user.pk),
        (world.a.customer.pk, "usage", "api_calls", ["1000"], False, "customer", world.a.user.pk),
    ]
    page = client.get("/portal/budgets/").content.decode()
    assert "Spend this period (USD)" in page and "Usage: API calls" in page and "50, 100" in page


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"watch": "spend", "thresholds": "-10"}, "Each threshold must be a number above zero (got -10)."),
        ({"watch": "spend", "thresholds": "10.999"}, "A threshold has at most 2 decimals (got 10.999)."),
        (
            {"watch": "storage", "thresholds": "10"},
            "Select a valid choice. storage is not one of the available choices.",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_saved(client, world, data, error):
    client.force_login(world.a.user)

    response = client.post("/portal/budgets/", data)

    assert response.status_code == 200
    assert error in response.content.decode().replace("&#x27;", "'")
    assert Alert.objects.count() == 0


def test_in_chinese(client, world):
    client.force_login(world.a.user)
    client.post("/portal/language/", {"language": "zh-hans", "next": "/portal/"})

    response = client.post("/portal/budgets/", {"watch": "spend", "thresholds": "-1"})

    page = response.content.decode()
    assert "每个阈值必须是大于零的数字（收到的是 -1）。" in page
    assert "您的预算未保存" in page and "本期支出（USD）" in page


def test_another_customers_budget_and_staff_alerts_cannot_be_deleted(client, world):
    theirs = alert_create(customer=world.b.customer, kind="spend", thresholds=["10"], origin="customer")
    staff = alert_create(customer=world.a.customer, kind="spend", thresholds=["10"])
    client.force_login(world.a.user)

    assert client.post(f"/portal/budgets/{theirs.pk}/delete/").status_code == 404
    assert client.post(f"/portal/budgets/{staff.pk}/delete/").status_code == 404
    assert Alert.objects.count() == 2
    assert "budget-" not in client.get("/portal/budgets/").content.decode()


def test_a_viewer_may_not_set_budgets(client, world):
    CustomerMembership.objects.filter(user=world.a.user).update(role="viewer")
    client.force_login(world.a.user)

    assert client.post("/portal/budgets/", {"watch": "spend", "thresholds": "10"}).status_code == 403
    assert Alert.objects.count() == 0


def test_what_was_reached_and_a_hard_limit_are_shown(client, world):
    from apps.alerts.services import alerts_evaluate_customer

    alert_create(
        customer=world.a.customer, kind="spend", thresholds=["40", "49"], is_hard_limit=True, origin="customer"
    )
    alerts_evaluate_customer(customer_id=world.a.customer.pk)  # the upcoming invoice: 49.06 USD
    client.force_login(world.a.user)

    page = client.get("/portal/budgets/").content.decode()

    assert "<td>40 USD</td><td>49.06 USD</td>" in page and "<td>49 USD</td><td>49.06 USD</td>" in page
    assert "A hard limit is reached for this billing period." in page
