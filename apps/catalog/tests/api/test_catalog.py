import pytest
from django.urls import reverse

from apps.catalog.models import Plan, Price, Product
from apps.catalog.tests.factories import PlanFactory, ProductFactory

pytestmark = pytest.mark.django_db

PRODUCTS_URL = reverse("api:product-list")
PLANS_URL = reverse("api:plan-list")


def plan_input(product: Product, changes: dict | None = None) -> dict:
    return {
        "product": product.pk,
        "code": "pro-monthly",
        "name": "Pro",
        "interval": "month",
        "interval_count": 1,
        "prices": [{"amount": "49.00", "currency": "USD"}, {"amount": "0.00012", "currency": "EUR"}],
        **(changes or {}),
    }


# --- products ------------------------------------------------------------------------------------


def test_create_product(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(PRODUCTS_URL, {"code": "hosting", "name": "Cloud Hosting", "description": "VMs"})

    assert response.status_code == 201, response.data
    product = Product.objects.get()
    body = response.json()
    assert body == {
        "id": product.pk,
        "code": "hosting",
        "name": "Cloud Hosting",
        "description": "VMs",
        "is_archived": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "Not Valid!", "name": "X"}, "code"),
        ({"code": "taken", "name": "X"}, "code"),
        ({"code": "ok"}, "name"),
    ],
)
def test_create_product_with_bad_input_is_refused(api_client, superuser, payload, field):
    ProductFactory(code="taken")
    api_client.force_authenticate(superuser)

    response = api_client.post(PRODUCTS_URL, payload)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert Product.objects.count() == 1


def test_list_and_retrieve_products(api_client, superuser):
    beta = ProductFactory(name="Beta", code="beta")
    alpha = ProductFactory(name="Alpha", code="alpha", is_archived=True)
    api_client.force_authenticate(superuser)

    listed = api_client.get(PRODUCTS_URL).json()
    assert [row["code"] for row in listed["results"]] == ["alpha", "beta"]
    assert [row["id"] for row in api_client.get(PRODUCTS_URL, {"is_archived": "false"}).json()["results"]] == [beta.pk]
    assert [row["id"] for row in api_client.get(PRODUCTS_URL, {"search": "alp"}).json()["results"]] == [alpha.pk]
    assert api_client.get(reverse("api:product-detail", args=[alpha.pk])).json()["is_archived"] is True


# --- plans ---------------------------------------------------------------------------------------


def test_create_plan_with_prices(api_client, superuser):
    product = ProductFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(PLANS_URL, plan_input(product))

    assert response.status_code == 201, response.data
    plan = Plan.objects.get()
    body = response.json()
    assert body == {
        "id": plan.pk,
        "product": product.pk,
        "code": "pro-monthly",
        "name": "Pro",
        "description": "",
        "interval": "month",
        "interval_count": 1,
        "trial_days": 0,
        "trial_usage": "free",
        "is_archived": False,
        "current_version": {
            "id": plan.current_version.pk,
            "plan": plan.pk,
            "number": 1,
            "notes": "First version.",
            "currencies": ["EUR", "USD"],
            "minimum_commitments": [],
            "progressive_billing": [],
            "charges": [
                {
                    "id": plan.current_version.charges.get().pk,
                    "position": 1,
                    "kind": "recurring",
                    "name": "Subscription fee",
                    "price_model": "per_unit",
                    "metric_code": "",
                    "billing_timing": "in_advance",
                    "pooled_allowance": None,
                    "pool_code": "",
                    "peak_start_hour": None,
                    "peak_end_hour": None,
                    "prices": [_simple_price(price) for price in Price.objects.order_by("currency")],
                }
            ],
            "features": [],
            "created_at": body["current_version"]["created_at"],
        },
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert [(p["currency"], p["amount"]) for p in body["current_version"]["charges"][0]["prices"]] == [
        ("EUR", "0.00012"),
        ("USD", "49.00"),
    ]


def _simple_price(price: Price) -> dict:
    return {
        "id": price.pk, "charge": price.charge_id, "price_model": "per_unit", "currency": price.currency,
        "dimension_values": {}, "time_window": "",
        "amount": {"EUR": "0.00012", "USD": "49.00"}[price.currency], "package_size": 1,
        "package_rounding": "up", "included_units": "0", "percentage": "0", "fixed_fee": "0.00",
        "min_per_transaction": None, "max_per_transaction": None, "minimum_amount": None, "tiers": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prices": [{"amount": "10.00", "currency": "XXX"}]}, "prices.0.currency"),
        ({"prices": [{"amount": "-1.00", "currency": "USD"}]}, "prices.0.amount"),
        ({"prices": [{"amount": "12345678901234567890", "currency": "USD"}]}, "prices.0.amount"),
        ({"prices": [{"amount": "abc", "currency": "USD"}]}, "prices.0.amount"),
        ({"prices": []}, "prices"),
        ({"prices": [{"amount": "1", "currency": "USD"}, {"amount": "2", "currency": "USD"}]}, "prices.1"),
        ({"product": 999999}, "product"),
        ({"interval": "fortnight"}, "interval"),
        ({"interval_count": 0}, "interval_count"),
        ({"code": "taken"}, "code"),
    ],
)
def test_create_plan_with_bad_input_is_refused_and_writes_nothing(api_client, superuser, changes, field):
    PlanFactory(code="taken")
    product = ProductFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(PLANS_URL, plan_input(product, changes))

    assert response.status_code == 400, response.data
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"], body
    assert (Plan.objects.count(), Price.objects.count()) == (1, 2)


def test_list_plans_with_prices_in_bounded_queries(api_client, superuser, django_assert_max_num_queries):
    PlanFactory.create_batch(20)
    api_client.force_authenticate(superuser)

    # page, count, versions, charges, prices, tiers, grants, progressive billing thresholds
    with django_assert_max_num_queries(9):
        response = api_client.get(PLANS_URL)

    results = response.json()["results"]
    assert len(results) == 20
    prices = results[0]["current_version"]["charges"][0]["prices"]
    assert [(price["currency"], price["amount"]) for price in prices] == [("EUR", "45.00"), ("USD", "49.00")]


def test_list_plans_filters_by_product(api_client, superuser):
    plan = PlanFactory()
    PlanFactory()
    api_client.force_authenticate(superuser)

    response = api_client.get(PLANS_URL, {"product": plan.product_id})

    assert [row["id"] for row in response.json()["results"]] == [plan.pk]
    assert api_client.get(reverse("api:plan-detail", args=[plan.pk])).json()["code"] == plan.code


@pytest.mark.parametrize(
    ("url", "method", "perm", "expected"),
    [
        (PRODUCTS_URL, "get", None, 401),
        (PRODUCTS_URL, "get", "", 403),
        (PRODUCTS_URL, "get", "catalog.view_product", 200),
        (PRODUCTS_URL, "post", "catalog.view_product", 403),
        (PRODUCTS_URL, "post", "catalog.add_product", 201),
        (PLANS_URL, "get", None, 401),
        (PLANS_URL, "get", "catalog.view_product", 403),
        (PLANS_URL, "get", "catalog.view_plan", 200),
        (PLANS_URL, "post", "catalog.view_plan", 403),
        (PLANS_URL, "post", "catalog.add_plan", 201),
    ],
)
def test_catalog_permission_matrix(api_client, make_staff, url, method, perm, expected):
    product = ProductFactory()
    if perm is not None:
        api_client.force_authenticate(make_staff(*([perm] if perm else [])))
    payload = plan_input(product) if url == PLANS_URL else {"code": "new", "name": "New"}

    response = api_client.get(url) if method == "get" else api_client.post(url, payload)

    assert response.status_code == expected, response.data


def test_a_plan_with_more_charges_than_the_batch_limit_is_refused_and_writes_nothing(api_client, superuser):
    product = ProductFactory()
    api_client.force_authenticate(superuser)
    charge = {"name": "Fee", "kind": "recurring", "price_model": "flat", "prices": [{"currency": "USD", "amount": "1"}]}
    body = {**plan_input(product), "prices": [], "charges": [charge] * 101}

    response = api_client.post(PLANS_URL, body)

    assert response.status_code == 400, response.data
    assert response.json()["fields"] == {"charges": ["Ensure this field has no more than 100 elements."]}
    assert not Plan.objects.exists()
