from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.catalog.models import Plan, PlanPrice
from apps.catalog.tests.factories import PlanFactory, ProductFactory
from apps.core.tests.test_admin import change_form_data

pytestmark = pytest.mark.django_db


def add_plan_data(client, product, *prices: tuple[str, str], **fields) -> dict:
    """The add-plan POST with the given (amount, currency) price rows."""
    form_page = client.get(reverse("admin:catalog_plan_add"))
    data = change_form_data(
        form_page,
        product=product.pk,
        code=fields.get("code", "pro-monthly"),
        name="Pro",
        interval="month",
        interval_count=1,
    )
    data.update({"prices-TOTAL_FORMS": len(prices), "prices-INITIAL_FORMS": 0})
    for index, (amount, currency) in enumerate(prices):
        data[f"prices-{index}-amount_0"] = amount
        data[f"prices-{index}-amount_1"] = currency
    return data


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("admin:catalog_product_changelist", ""),
        ("admin:catalog_product_changelist", "is_archived__exact=1"),
        ("admin:catalog_product_changelist", "q=cloud"),
        ("admin:catalog_plan_changelist", ""),
        ("admin:catalog_plan_changelist", "interval__exact=month&is_archived__exact=0"),
        ("admin:catalog_plan_changelist", "q=plan"),
        ("admin:catalog_planprice_changelist", ""),
        ("admin:catalog_planprice_changelist", "amount_currency__exact=EUR&plan__interval__exact=month"),
        ("admin:catalog_planprice_changelist", "q=plan"),
    ],
)
def test_changelists_load_with_search_and_filters(client, superuser, url, query):
    PlanFactory.create_batch(3)
    client.force_login(superuser)
    response = client.get(f"{reverse(url)}?{query}")
    assert response.status_code == 200
    assert "errornote" not in response.content.decode()


def test_plan_list_filters_by_product_and_shows_prices(client, superuser):
    plan = PlanFactory()
    PlanFactory()
    client.force_login(superuser)

    response = client.get(reverse("admin:catalog_plan_changelist"), {"product__id__exact": plan.product_id})

    assert list(response.context["cl"].result_list) == [plan]
    assert "$49.00" in response.content.decode() or "49.00" in response.content.decode()


def test_change_pages_load(client, superuser):
    plan = PlanFactory()
    client.force_login(superuser)
    for url in [
        reverse("admin:catalog_product_change", args=[plan.product_id]),
        reverse("admin:catalog_plan_change", args=[plan.pk]),
        reverse("admin:catalog_planprice_change", args=[plan.prices.first().pk]),
        reverse("admin:catalog_plan_add"),
        reverse("admin:catalog_planprice_add"),
    ]:
        assert client.get(url).status_code == 200, url


def test_list_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    PlanFactory.create_batch(20)
    client.force_login(superuser)
    for url in [
        "admin:catalog_plan_changelist",
        "admin:catalog_planprice_changelist",
        "admin:catalog_product_changelist",
    ]:
        client.get(reverse(url))
        with django_assert_max_num_queries(10):
            assert client.get(reverse(url)).status_code == 200


def test_add_plan_with_prices(client, superuser):
    product = ProductFactory()
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_plan_add"), add_plan_data(client, product, ("49.00", "USD"), ("45.00", "EUR"))
    )

    assert response.status_code == 302
    plan = Plan.objects.get(code="pro-monthly")
    assert sorted(str(price.amount) for price in plan.prices.all()) == ["$49.00", "€45.00"]


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ((("-1.00", "USD"),), "greater than or equal to 0"),
        ((("10.00", "XYZ"),), "Select a valid choice"),
        ((("10.00", "USD"), ("12.00", "USD")), "The plan already has a price in USD."),
    ],
)
def test_invalid_prices_are_form_errors(client, superuser, prices, message):
    product = ProductFactory()
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_plan_add"), add_plan_data(client, product, *prices))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Plan.objects.exists()


def test_duplicate_currency_against_a_saved_price_is_a_form_error(client, superuser):
    plan = PlanFactory(prices=[Money(Decimal("49.00"), "USD")])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planprice_add"), {"plan": plan.pk, "amount_0": "10.00", "amount_1": "USD"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"amount": ["The plan already has a price in USD."]}
    assert plan.prices.count() == 1


def test_changing_a_plan_to_a_second_price_in_a_saved_currency_is_a_form_error(client, superuser):
    plan = PlanFactory(prices=[Money(Decimal("49.00"), "USD")])
    client.force_login(superuser)
    url = reverse("admin:catalog_plan_change", args=[plan.pk])
    data = change_form_data(client.get(url))
    data.update({"prices-TOTAL_FORMS": 2, "prices-1-amount_0": "12.00", "prices-1-amount_1": "USD"})

    response = client.post(url, data)

    assert response.status_code == 200
    assert "The plan already has a price in USD." in response.content.decode()
    assert plan.prices.count() == 1


def test_negative_standalone_price_is_a_form_error(client, superuser):
    plan = PlanFactory(prices=[Money(Decimal("49.00"), "USD")])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planprice_add"), {"plan": plan.pk, "amount_0": "-5", "amount_1": "EUR"}
    )

    assert response.status_code == 200
    assert "amount" in response.context["adminform"].form.errors
    assert not PlanPrice.objects.filter(amount_currency="EUR").exists()


def test_archived_product_takes_no_new_plans(client, superuser):
    product = ProductFactory(is_archived=True)
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_plan_add"), add_plan_data(client, product, ("49.00", "USD")))

    assert response.status_code == 200
    assert "This product is archived and takes no new plans." in response.content.decode()
    assert not Plan.objects.exists()


def test_autocomplete_for_products_and_plans(client, superuser):
    plan = PlanFactory(name="Gold monthly")
    client.force_login(superuser)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "subscriptions", "model_name": "subscription", "field_name": "plan", "term": "Gold"},
    )

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(plan.pk)]
