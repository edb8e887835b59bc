"""Coupon and discount admin: lists, add pages through the services, refusals as form errors."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.models import Coupon, CouponAmount
from apps.catalog.tests.factories import CouponFactory, FixedCouponFactory, ProductFactory
from apps.subscriptions.models import Discount
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def coupon_post(**changes) -> dict:
    return {
        "code": "ten-off",
        "name": "Ten off",
        "discount_type": "fixed_amount",
        "percent_off": "",
        "duration": "repeating",
        "duration_in_periods": "3",
        "max_redemptions": "",
        "redeem_by_0": "",
        "redeem_by_1": "",
        "amounts-TOTAL_FORMS": "2",
        "amounts-INITIAL_FORMS": "0",
        "amounts-MIN_NUM_FORMS": "0",
        "amounts-MAX_NUM_FORMS": "1000",
        "amounts-0-currency": "USD",
        "amounts-0-amount_off": "10.00",
        "amounts-1-currency": "EUR",
        "amounts-1-amount_off": "9.00",
        **changes,
    }


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("admin:catalog_coupon_changelist", ""),
        ("admin:catalog_coupon_changelist", "discount_type__exact=percentage&is_archived__exact=0"),
        ("admin:catalog_coupon_changelist", "q=offer"),
        ("admin:subscriptions_discount_changelist", ""),
        ("admin:subscriptions_discount_changelist", "active=yes"),
        ("admin:subscriptions_discount_changelist", "q=offer"),
        ("admin:catalog_coupon_add", ""),
        ("admin:subscriptions_discount_add", ""),
    ],
)
def test_pages_load(client, superuser, url, query):
    FixedCouponFactory(max_redemptions=3)
    coupon = CouponFactory(duration="repeating", duration_in_periods=2)
    Discount.objects.create(coupon=coupon, customer=CustomerFactory(), starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    Discount.objects.create(coupon=coupon, subscription=make_subscription(), starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    client.force_login(superuser)

    response = client.get(f"{reverse(url)}?{query}")

    assert response.status_code == 200
    assert "errornote" not in response.content.decode()


def test_coupon_list_shows_value_duration_and_redemptions(client, superuser):
    coupon = FixedCouponFactory(amounts=[Money(10, "USD"), Money(1000, "JPY")], max_redemptions=5)
    Discount.objects.create(coupon=coupon, customer=CustomerFactory(), starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    CouponFactory(duration="repeating", duration_in_periods=3, percent_off="12.5")
    client.force_login(superuser)

    html = client.get(reverse("admin:catalog_coupon_changelist")).content.decode()

    assert "1,000 JPY, 10.00 USD" in html
    assert "12.5 %" in html and "3 periods" in html
    assert f'?coupon__id__exact={coupon.pk}">1</a> / 5' in html


def test_change_pages_load_read_only(client, superuser):
    coupon = FixedCouponFactory()
    discount = Discount.objects.create(
        coupon=coupon, customer=CustomerFactory(), starts_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    client.force_login(superuser)

    assert client.get(reverse("admin:catalog_coupon_change", args=[coupon.pk])).status_code == 200
    assert client.get(reverse("admin:subscriptions_discount_change", args=[discount.pk])).status_code == 200
    assert client.get(reverse("admin:catalog_coupon_delete", args=[coupon.pk])).status_code == 403


def test_add_fixed_coupon_with_amounts_and_products(client, superuser):
    product = ProductFactory()
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_coupon_add"), coupon_post(products=[product.pk]))

    assert response.status_code == 302, response.context["adminform"].form.errors
    coupon = Coupon.objects.get()
    assert (coupon.code, coupon.duration_in_periods) == ("ten-off", 3)
    assert sorted(coupon.amounts.values_list("currency", "amount_off")) == [
        ("EUR", Money(9, "EUR").amount),
        ("USD", Money(10, "USD").amount),
    ]
    assert list(coupon.products.all()) == [product]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"percent_off": "10"}, "percent_off", "Only percentage coupons have a percentage off; leave it empty."),
        (
            {"duration": "once"},
            "duration_in_periods",
            "Only repeating coupons last a number of periods; leave it empty.",
        ),
        ({"code": "taken"}, "code", "A coupon with this code already exists."),
        (
            {"discount_type": "percentage", "percent_off": "10"},
            None,
            "amounts: A percentage coupon has no amounts off; remove them or make it a fixed-amount coupon.",
        ),
    ],
)
def test_add_coupon_with_bad_input_is_a_form_error_and_saves_nothing(client, superuser, changes, field, message):
    CouponFactory(code="taken")
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_coupon_add"), coupon_post(**changes))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert message in (form.errors[field] if field else form.non_field_errors())
    assert Coupon.objects.count() == 1
    assert CouponAmount.objects.count() == 0


def test_archive_action(client, superuser):
    coupon, other = CouponFactory(), CouponFactory()
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_coupon_changelist"), {"action": "archive_coupons", "_selected_action": [coupon.pk]}
    )

    assert response.status_code == 302
    coupon.refresh_from_db()
    other.refresh_from_db()
    assert (coupon.is_archived, other.is_archived) == (True, False)


def test_add_discount_redeems_the_coupon(client, superuser):
    coupon = CouponFactory()
    customer = CustomerFactory()
    client.force_login(superuser)

    response = client.post(reverse("admin:subscriptions_discount_add"), {"coupon": coupon.pk, "customer": customer.pk})

    assert response.status_code == 302
    discount = Discount.objects.get()
    assert (discount.coupon, discount.customer, discount.created_by) == (coupon, customer, superuser)


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("archived", "coupon", "This coupon is archived and cannot be redeemed."),
        ("both", "subscription", "A coupon applies to a customer or to one subscription, not both."),
        ("neither", "customer", "Give the customer or the subscription the coupon applies to."),
    ],
)
def test_add_discount_refusal_is_a_form_error_and_saves_nothing(client, superuser, case, field, message):
    subscription = make_subscription()
    data = {
        "archived": {"coupon": CouponFactory(is_archived=True).pk, "customer": subscription.customer_id},
        "both": {"coupon": CouponFactory().pk, "customer": subscription.customer_id, "subscription": subscription.pk},
        "neither": {"coupon": CouponFactory().pk},
    }[case]
    client.force_login(superuser)

    response = client.post(reverse("admin:subscriptions_discount_add"), data)

    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors[field]
    assert not Discount.objects.exists()


def test_staff_without_permission_cannot_add(client, make_staff):
    client.force_login(make_staff("catalog.view_coupon", "subscriptions.view_discount"))

    assert client.get(reverse("admin:catalog_coupon_changelist")).status_code == 200
    assert client.get(reverse("admin:catalog_coupon_add")).status_code == 403
    assert client.get(reverse("admin:subscriptions_discount_add")).status_code == 403


def test_list_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    for _ in range(10):
        coupon = FixedCouponFactory()
        Discount.objects.create(coupon=coupon, customer=CustomerFactory(), starts_at=datetime(2026, 1, 1, tzinfo=UTC))
        Discount.objects.create(
            coupon=coupon, subscription=make_subscription(), starts_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
    client.force_login(superuser)
    for url in ["admin:catalog_coupon_changelist", "admin:subscriptions_discount_changelist"]:
        client.get(reverse(url))
        with django_assert_max_num_queries(12):
            assert client.get(reverse(url)).status_code == 200
