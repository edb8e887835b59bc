import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.models import Coupon
from apps.catalog.tests.factories import CouponFactory, FixedCouponFactory, PlanFactory, ProductFactory
from apps.subscriptions.models import Discount
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

COUPONS_URL = reverse("api:coupon-list")
DISCOUNTS_URL = reverse("api:discount-list")


def coupon_input(**changes) -> dict:
    return {
        "code": "ten-off",
        "name": "Ten off",
        "discount_type": "fixed_amount",
        "amounts": [{"amount": "10.00", "currency": "USD"}, {"amount": "1000", "currency": "JPY"}],
        "duration": "repeating",
        "duration_in_periods": 3,
        **changes,
    }


# --- coupons --------------------------------------------------------------------------------------


def test_create_fixed_coupon(api_client, superuser):
    product = ProductFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(
        COUPONS_URL, coupon_input(product_ids=[product.pk], max_redemptions=50, redeem_by="2099-01-01T00:00:00Z")
    )

    assert response.status_code == 201, response.data
    coupon = Coupon.objects.get()
    body = response.json()
    assert body == {
        "id": coupon.pk,
        "code": "ten-off",
        "name": "Ten off",
        "discount_type": "fixed_amount",
        "percent_off": None,
        "amounts": [{"amount": "1000", "currency": "JPY"}, {"amount": "10.00", "currency": "USD"}],
        "duration": "repeating",
        "duration_in_periods": 3,
        "max_redemptions": 50,
        "redemption_count": 0,
        "redeem_by": "2099-01-01T00:00:00Z",
        "product_ids": [product.pk],
        "is_archived": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


def test_create_percentage_coupon(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(
        COUPONS_URL,
        {"code": "quarter", "name": "25 % off", "discount_type": "percentage", "percent_off": "25", "duration": "once"},
    )

    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["percent_off"], body["amounts"], body["duration_in_periods"]) == ("25", [], None)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"discount_type": "percentage", "percent_off": "150", "amounts": []},
            "percent_off",
            "A percentage off is more than 0 and at most 100.",
        ),
        ({"percent_off": "10"}, "percent_off", "Only percentage coupons have a percentage off; leave it empty."),
        (
            {"duration": "once"},
            "duration_in_periods",
            "Only repeating coupons last a number of periods; leave it empty.",
        ),
        (
            {"duration_in_periods": None},
            "duration_in_periods",
            "A repeating coupon needs the number of periods it discounts (at least 1).",
        ),
        (
            {"amounts": [{"amount": "1", "currency": "USD"}, {"amount": "2", "currency": "USD"}]},
            "amounts.1.currency",
            "The coupon already has an amount off in USD.",
        ),
        (
            {"amounts": [{"amount": "1", "currency": "XXX"}]},
            "amounts.0.currency",
            "'XXX' is not one of the currencies this seller bills in.",
        ),
        (
            {"amounts": [{"amount": "-1", "currency": "USD"}]},
            "amounts.0.amount",
            "Ensure this value is greater than or equal to 0.",
        ),
        ({"product_ids": [999999]}, "product_ids", "No product with id 999999."),
        ({"code": "taken"}, "code", "A coupon with this code already exists."),
        ({"discount_type": "free"}, "discount_type", '"free" is not a valid choice.'),
    ],
)
def test_create_coupon_with_bad_input_is_refused(api_client, superuser, changes, field, message):
    CouponFactory(code="taken")
    api_client.force_authenticate(superuser)

    response = api_client.post(COUPONS_URL, coupon_input(**changes))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"][field] == [message]
    assert Coupon.objects.count() == 1


def test_create_coupon_is_idempotent(api_client, superuser):
    api_client.force_authenticate(superuser)
    headers = {"Idempotency-Key": "coupon-1"}

    first = api_client.post(COUPONS_URL, coupon_input(), headers=headers)
    second = api_client.post(COUPONS_URL, coupon_input(), headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert Coupon.objects.count() == 1


def test_list_filter_search_and_retrieve_coupons(api_client, superuser, django_assert_max_num_queries):
    product = ProductFactory()
    restricted = CouponFactory(code="hosting-deal", name="Hosting deal")
    restricted.products.set([product])
    fixed = FixedCouponFactory(code="ten", amounts=[Money(10, "USD")], max_redemptions=5)
    archived = CouponFactory(code="old", is_archived=True)
    customer = CustomerFactory()
    Discount.objects.create(coupon=fixed, customer=customer, starts_at="2026-01-01T00:00:00Z")
    api_client.force_authenticate(superuser)

    def ids(**params) -> list[int]:
        return [row["id"] for row in api_client.get(COUPONS_URL, params).json()["results"]]

    with django_assert_max_num_queries(8):
        assert ids() == [archived.pk, fixed.pk, restricted.pk]
    assert ids(discount_type="fixed_amount") == [fixed.pk]
    assert ids(is_archived="true") == [archived.pk]
    assert ids(product=product.pk) == [restricted.pk]
    assert ids(search="hosting") == [restricted.pk]
    detail = api_client.get(reverse("api:coupon-detail", args=[fixed.pk])).json()
    assert (detail["redemption_count"], detail["max_redemptions"]) == (1, 5)
    assert detail["amounts"] == [{"amount": "10.00", "currency": "USD"}]


def test_archive_coupon(api_client, superuser):
    coupon = CouponFactory()
    api_client.force_authenticate(superuser)

    response = api_client.post(reverse("api:coupon-archive", args=[coupon.pk]))

    assert response.status_code == 200
    assert response.json()["is_archived"] is True
    coupon.refresh_from_db()
    assert coupon.is_archived


# --- discounts ------------------------------------------------------------------------------------


def test_redeem_coupon_for_a_subscription(api_client, superuser):
    subscription = make_subscription()
    coupon = CouponFactory(duration="forever")
    api_client.force_authenticate(superuser)

    response = api_client.post(DISCOUNTS_URL, {"coupon": coupon.pk, "subscription": subscription.pk})

    assert response.status_code == 201, response.data
    discount = Discount.objects.get()
    body = response.json()
    assert body == {
        "id": discount.pk,
        "coupon": coupon.pk,
        "customer": None,
        "subscription": subscription.pk,
        "starts_at": body["starts_at"],
        "periods_applied": 0,
        "ended_at": None,
        "is_active": True,
        "created_at": body["created_at"],
    }
    assert discount.created_by == superuser


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ("archived", "coupon", "This coupon is archived and cannot be redeemed."),
        ("neither", "customer", "Give the customer or the subscription the coupon applies to."),
        ("both", "subscription", "A coupon applies to a customer or to one subscription, not both."),
        (
            "eur",
            "customer",
            "This coupon has no amount off in EUR, the currency of this customer (it has amounts in USD).",
        ),
        ("unknown", "coupon", 'Invalid pk "999999" - object does not exist.'),
    ],
)
def test_redeem_with_bad_input_is_refused(api_client, superuser, payload, field, message):
    subscription = make_subscription()
    coupon = FixedCouponFactory()
    data = {
        "archived": {"coupon": CouponFactory(is_archived=True).pk, "customer": subscription.customer_id},
        "neither": {"coupon": coupon.pk},
        "both": {"coupon": coupon.pk, "customer": subscription.customer_id, "subscription": subscription.pk},
        "eur": {"coupon": coupon.pk, "customer": CustomerFactory(currency="EUR").pk},
        "unknown": {"coupon": 999999, "customer": subscription.customer_id},
    }[payload]
    api_client.force_authenticate(superuser)

    response = api_client.post(DISCOUNTS_URL, data)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"][field] == [message]
    assert not Discount.objects.exists()


def test_list_and_filter_discounts(api_client, superuser):
    customer = CustomerFactory()
    coupon = CouponFactory()
    active = Discount.objects.create(coupon=coupon, customer=customer, starts_at="2026-02-01T00:00:00Z")
    ended = Discount.objects.create(
        coupon=coupon,
        subscription=make_subscription(plan=PlanFactory()),
        starts_at="2026-01-01T00:00:00Z",
        periods_applied=1,
        ended_at="2026-01-02T00:00:00Z",
    )
    api_client.force_authenticate(superuser)

    def ids(**params) -> list[int]:
        return [row["id"] for row in api_client.get(DISCOUNTS_URL, params).json()["results"]]

    assert ids() == [active.pk, ended.pk]
    assert ids(is_active="true") == [active.pk]
    assert ids(customer=customer.pk) == [active.pk]
    assert api_client.get(reverse("api:discount-detail", args=[ended.pk])).json()["is_active"] is False


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kind", "permission"),
    [
        ("coupon-list", "catalog.view_coupon"),
        ("coupon-detail", "catalog.view_coupon"),
        ("coupon-create", "catalog.add_coupon"),
        ("coupon-archive", "catalog.change_coupon"),
        ("discount-list", "subscriptions.view_discount"),
        ("discount-detail", "subscriptions.view_discount"),
        ("discount-create", "subscriptions.add_discount"),
    ],
)
def test_permission_matrix(api_client, make_staff, request_kind, permission):
    coupon = CouponFactory()
    customer = CustomerFactory()
    discount = Discount.objects.create(coupon=CouponFactory(), customer=customer, starts_at="2026-01-01T00:00:00Z")

    def send():
        match request_kind:
            case "coupon-list":
                return api_client.get(COUPONS_URL), 200
            case "coupon-detail":
                return api_client.get(reverse("api:coupon-detail", args=[coupon.pk])), 200
            case "coupon-create":
                return api_client.post(COUPONS_URL, coupon_input()), 201
            case "coupon-archive":
                return api_client.post(reverse("api:coupon-archive", args=[coupon.pk])), 200
            case "discount-list":
                return api_client.get(DISCOUNTS_URL), 200
            case "discount-detail":
                return api_client.get(reverse("api:discount-detail", args=[discount.pk])), 200
            case _:
                return api_client.post(DISCOUNTS_URL, {"coupon": coupon.pk, "customer": customer.pk}), 201

    response, _ = send()
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"

    api_client.force_authenticate(make_staff())
    response, _ = send()
    assert response.status_code == 403

    other = "catalog.view_product" if permission != "catalog.view_product" else "catalog.view_plan"
    api_client.force_authenticate(make_staff(other))
    assert send()[0].status_code == 403

    api_client.force_authenticate(make_staff(permission))
    response, expected = send()
    assert response.status_code == expected, response.data
    assert Coupon.objects.filter(is_archived=True).count() == (1 if request_kind == "coupon-archive" else 0)
