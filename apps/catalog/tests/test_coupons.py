"""Coupons: creation rules, redemption rules (field-level refusals that write nothing), the discount
math and the discounts that apply to a subscription's invoices."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db.models import QuerySet
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.catalog import pricing, services
from apps.catalog.models import Coupon, CouponAmount
from apps.catalog.tests.factories import CouponFactory, FixedCouponFactory, PlanFactory, ProductFactory
from apps.core import clock
from apps.core.errors import InvalidTransition, ValidationFailed
from apps.subscriptions import selectors as subscription_selectors
from apps.subscriptions import services as subscription_services
from apps.subscriptions.models import Discount
from apps.subscriptions.tests.factories import make_subscription

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def percentage(**changes) -> dict:
    return {"code": "spring", "name": "Spring offer", "discount_type": "percentage", "percent_off": Decimal("20")} | (
        changes
    )


def fixed(**changes) -> dict:
    return {
        "code": "ten-off",
        "name": "Ten off",
        "discount_type": "fixed_amount",
        "amounts": [Money(Decimal("10.00"), "USD"), Money(Decimal("9.00"), "EUR")],
    } | changes


# --- the math -------------------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000000"), places=2)
percents = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=4)


def _percent(percent_off: Decimal, eligible: Decimal, currency: str = "USD") -> Decimal:
    return pricing.discount_amount(
        discount_type="percentage",
        percent_off=percent_off,
        amount_off=None,
        eligible_amount=eligible,
        currency=currency,
    )


def _fixed(amount_off: Decimal, eligible: Decimal, currency: str = "USD") -> Decimal:
    return pricing.discount_amount(
        discount_type="fixed_amount",
        percent_off=None,
        amount_off=amount_off,
        eligible_amount=eligible,
        currency=currency,
    )


@given(percent_off=percents, eligible=amounts)
def test_percentage_discount_is_never_negative_nor_above_the_eligible_amount(percent_off, eligible):
    discount = _percent(percent_off, eligible)
    assert Decimal(0) <= discount <= max(eligible, Decimal(0))


@given(percent_off=percents, eligible=amounts.filter(lambda value: value > 0))
def test_percentage_discount_is_the_exact_share_rounded_once(percent_off, eligible):
    discount = _percent(percent_off, eligible)
    assert discount == (eligible * percent_off / 100).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert discount.as_tuple().exponent == -2


@given(eligible=amounts)
def test_hundred_percent_off_is_the_whole_eligible_amount(eligible):
    assert _percent(Decimal(100), eligible) == max(eligible, Decimal(0))


@given(amount_off=st.decimals(min_value=0, max_value=Decimal("100000"), places=2), eligible=amounts)
def test_fixed_discount_is_the_amount_off_capped_at_the_eligible_amount(amount_off, eligible):
    discount = _fixed(amount_off, eligible)
    assert Decimal(0) <= discount <= max(eligible, Decimal(0))
    assert discount == (min(amount_off, eligible) if eligible > 0 else 0)


def test_discount_examples():
    assert _percent(Decimal("33.3333"), Decimal("10.00")) == Decimal("3.33")
    assert _percent(Decimal("12.5"), Decimal("0.04")) == Decimal("0.01")  # 0.005 rounds half up, once
    assert _percent(Decimal("50"), Decimal("1001"), "JPY") == Decimal("501")
    assert _fixed(Decimal("10.000000000000"), Decimal("49.00")) == Decimal("10.00")
    assert _fixed(Decimal("60.00"), Decimal("49.00")) == Decimal("49.00")
    assert _fixed(Decimal("5.00"), Decimal("0.00")) == Decimal("0.00")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"discount_type": "percentage", "percent_off": Decimal(0), "amount_off": None},
        {"discount_type": "percentage", "percent_off": Decimal("100.01"), "amount_off": None},
        {"discount_type": "percentage", "percent_off": None, "amount_off": None},
        {"discount_type": "fixed_amount", "percent_off": None, "amount_off": Decimal("-1")},
        {"discount_type": "fixed_amount", "percent_off": None, "amount_off": None},
        {"discount_type": "free", "percent_off": None, "amount_off": Decimal(1)},
    ],
)
def test_invalid_discounts_are_refused(kwargs):
    with pytest.raises(ValueError):
        pricing.discount_amount(**kwargs, eligible_amount=Decimal("10.00"), currency="USD")


def test_unrounded_eligible_amounts_and_floats_are_refused():
    with pytest.raises(ValueError, match="more decimals"):
        _percent(Decimal(10), Decimal("10.005"))
    with pytest.raises(TypeError):
        _fixed(1.5, Decimal("10.00"))  # type: ignore[arg-type]


# --- coupon_create --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_percentage_coupon_for_some_products():
    hosting, storage = ProductFactory(), ProductFactory()

    coupon = services.coupon_create(
        **percentage(duration="repeating", duration_in_periods=3, max_redemptions=100, product_ids=[hosting.pk]),
        redeem_by=datetime(2099, 1, 1, tzinfo=UTC),
    )

    coupon.refresh_from_db()
    assert (coupon.code, coupon.discount_type, coupon.percent_off) == ("spring", "percentage", Decimal("20.0000"))
    assert (coupon.duration, coupon.duration_in_periods, coupon.max_redemptions) == ("repeating", 3, 100)
    assert list(coupon.products.all()) == [hosting]
    assert coupon.applies_to_product(hosting.pk) and not coupon.applies_to_product(storage.pk)
    assert not coupon.amounts.exists()


@pytest.mark.django_db
def test_create_fixed_coupon_with_an_amount_per_currency():
    coupon = services.coupon_create(**fixed(duration="forever"))

    assert [(a.currency, a.amount_off) for a in coupon.amounts.order_by("currency")] == [
        ("EUR", Decimal("9.00")),
        ("USD", Decimal("10.00")),
    ]
    assert coupon.percent_off is None and coupon.period_limit is None
    assert coupon.applies_to_product(ProductFactory().pk)  # no products: every product


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (percentage(percent_off=Decimal(0)), "percent_off", "A percentage off is more than 0 and at most 100."),
        (percentage(percent_off=Decimal("100.5")), "percent_off", "A percentage off is more than 0 and at most 100."),
        (percentage(percent_off=None), "percent_off", "Give the percentage off: more than 0, at most 100."),
        (
            fixed(percent_off=Decimal(10)),
            "percent_off",
            "Only percentage coupons have a percentage off; leave it empty.",
        ),
        (
            percentage(amounts=[Money(1, "USD")]),
            "amounts",
            "A percentage coupon has no amounts off; remove them or make it a fixed-amount coupon.",
        ),
        (fixed(amounts=[]), "amounts", "Give the amount off in at least one currency."),
        (fixed(amounts=[Money(-1, "USD")]), "amounts.0.amount", "The amount off cannot be negative."),
        (
            fixed(amounts=[Money("0.005", "USD")]),
            "amounts.0.amount",
            "An amount off in USD has at most the currency's decimals.",
        ),
        (
            fixed(amounts=[Money(1, "USD"), Money(2, "USD")]),
            "amounts.1.currency",
            "The coupon already has an amount off in USD.",
        ),
        (
            fixed(amounts=[Money(1, "BRL")]),
            "amounts.0.currency",
            "'BRL' is not one of the currencies this seller bills in.",
        ),
        (
            percentage(duration="repeating"),
            "duration_in_periods",
            "A repeating coupon needs the number of periods it discounts (at least 1).",
        ),
        (
            percentage(duration="repeating", duration_in_periods=0),
            "duration_in_periods",
            "A repeating coupon needs the number of periods it discounts (at least 1).",
        ),
        (
            percentage(duration="once", duration_in_periods=3),
            "duration_in_periods",
            "Only repeating coupons last a number of periods; leave it empty.",
        ),
        (percentage(duration="weekly"), "duration", "'weekly' is not a duration (once, repeating, forever)."),
        (
            percentage(discount_type="free"),
            "discount_type",
            "'free' is not a discount type (percentage, fixed_amount).",
        ),
        (
            percentage(max_redemptions=0),
            "max_redemptions",
            "The redemption limit is at least 1; leave it empty for no limit.",
        ),
        (
            percentage(redeem_by=datetime(2026, 3, 1, 12, tzinfo=UTC)),
            "redeem_by",
            "The expiry must be in the future.",
        ),
        (percentage(product_ids=[999999]), "product_ids", "No product with id 999999."),
        (percentage(code="Not Valid!"), "code", "Use lower-case letters, digits, '.', '_' and '-' only."),
        (percentage(code="taken"), "code", "A coupon with this code already exists."),
    ],
)
def test_create_coupon_refuses_bad_input_field_by_field(data, field, message):
    CouponFactory(code="taken")

    with clock.frozen_at(NOW), pytest.raises(ValidationFailed) as refused:
        services.coupon_create(**data)

    assert refused.value.fields[field] == [message]
    assert Coupon.objects.count() == 1
    assert CouponAmount.objects.count() == 0


@pytest.mark.django_db
def test_create_coupon_reports_every_problem_at_once():
    with pytest.raises(ValidationFailed) as refused:
        services.coupon_create(**fixed(code="BAD", percent_off=Decimal(5), amounts=[], duration="repeating"))

    assert set(refused.value.fields) == {"code", "percent_off", "amounts", "duration_in_periods"}
    assert refused.value.message.endswith("(and more)")
    assert not Coupon.objects.exists()


@pytest.mark.django_db
def test_archive_coupon():
    coupon = CouponFactory()

    archived = services.coupon_archive(coupon=coupon)

    coupon.refresh_from_db()
    assert archived.is_archived and coupon.is_archived
    assert services.coupon_archive(coupon=coupon).is_archived  # archiving twice is harmless


# --- coupon_redeem --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redeem_for_a_customer_and_for_a_subscription():
    staff = UserFactory(is_staff=True)
    customer = CustomerFactory()
    subscription = make_subscription()
    coupon = CouponFactory()

    on_customer = subscription_services.coupon_redeem(coupon=coupon, customer=customer, actor=staff, now=NOW)
    on_subscription = subscription_services.coupon_redeem(coupon=coupon, subscription=subscription, now=NOW)

    on_customer.refresh_from_db()
    assert (on_customer.customer, on_customer.subscription, on_customer.created_by) == (customer, None, staff)
    assert (on_customer.starts_at, on_customer.periods_applied, on_customer.ended_at) == (NOW, 0, None)
    assert (on_subscription.subscription, on_subscription.customer) == (subscription, None)
    assert on_customer.is_active and on_subscription.is_active


@pytest.mark.django_db
def test_redeem_takes_the_time_from_the_clock():
    with clock.frozen_at(NOW):
        discount = subscription_services.coupon_redeem(coupon=CouponFactory(), customer=CustomerFactory())
    assert discount.starts_at == NOW


def _refusal(field: str, message: str, **kwargs) -> None:
    before = Discount.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        subscription_services.coupon_redeem(now=NOW, **kwargs)
    assert refused.value.fields == {field: [message]}
    assert refused.value.message == message
    assert Discount.objects.count() == before


@pytest.mark.django_db
def test_redeem_refuses_an_archived_coupon():
    _refusal(
        "coupon",
        "This coupon is archived and cannot be redeemed.",
        coupon=CouponFactory(is_archived=True),
        customer=CustomerFactory(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("redeem_by", [NOW, NOW - timedelta(seconds=1)])
def test_redeem_refuses_an_expired_coupon(redeem_by):
    coupon = CouponFactory(redeem_by=redeem_by)
    _refusal(
        "coupon",
        f"This coupon expired on {redeem_by:%Y-%m-%d %H:%M} UTC.",
        coupon=coupon,
        customer=CustomerFactory(),
    )
    assert subscription_services.coupon_redeem(
        coupon=coupon, customer=CustomerFactory(), now=redeem_by - timedelta(seconds=1)
    )


@pytest.mark.django_db
def test_redeem_refuses_beyond_the_redemption_limit_counting_under_a_lock():
    coupon = CouponFactory(max_redemptions=2)
    subscription_services.coupon_redeem(coupon=coupon, customer=CustomerFactory(), now=NOW)
    ended = subscription_services.coupon_redeem(coupon=coupon, customer=CustomerFactory(), now=NOW)
    subscription_services.discount_record_applied(discount=ended, now=NOW)  # used up: still counts as a redemption

    locked_models = []
    original = QuerySet.select_for_update

    def spy(queryset, *args, **kwargs):
        locked_models.append(queryset.model)
        return original(queryset, *args, **kwargs)

    with mock.patch.object(QuerySet, "select_for_update", autospec=True, side_effect=spy):
        _refusal(
            "coupon",
            "This coupon has been redeemed 2 time(s), its limit.",
            coupon=coupon,
            customer=CustomerFactory(),
        )
    assert locked_models == [Coupon]
    assert coupon.discounts.count() == 2


@pytest.mark.django_db
def test_redeem_refuses_a_fixed_coupon_without_an_amount_in_the_target_currency():
    coupon = FixedCouponFactory(amounts=[Money(10, "USD"), Money(9, "GBP")])
    _refusal(
        "customer",
        "This coupon has no amount off in EUR, the currency of this customer (it has amounts in GBP, USD).",
        coupon=coupon,
        customer=CustomerFactory(currency="EUR"),
    )
    subscription = make_subscription(customer=CustomerFactory(currency="EUR"))
    _refusal(
        "subscription",
        "This coupon has no amount off in EUR, the currency of this subscription (it has amounts in GBP, USD).",
        coupon=coupon,
        subscription=subscription,
    )


@pytest.mark.django_db
def test_redeem_refuses_a_subscription_to_a_product_the_coupon_does_not_cover():
    hosting = ProductFactory(name="Hosting")
    storage = ProductFactory(name="Storage")
    coupon = CouponFactory()
    coupon.products.set([hosting])
    subscription = make_subscription(plan=PlanFactory(product=storage))

    _refusal(
        "subscription",
        "This coupon applies only to Hosting; this subscription is for Storage.",
        coupon=coupon,
        subscription=subscription,
    )
    assert subscription_services.coupon_redeem(
        coupon=coupon, subscription=make_subscription(plan=PlanFactory(product=hosting))
    )


@pytest.mark.django_db
def test_redeem_refuses_the_same_coupon_twice_on_the_same_target_while_active():
    coupon = CouponFactory()
    customer = CustomerFactory()
    subscription = make_subscription(customer=customer)
    first = subscription_services.coupon_redeem(coupon=coupon, customer=customer, now=NOW)
    subscription_services.coupon_redeem(coupon=coupon, subscription=subscription, now=NOW)

    _refusal("coupon", "This coupon is already applied to this customer.", coupon=coupon, customer=customer)
    _refusal("coupon", "This coupon is already applied to this subscription.", coupon=coupon, subscription=subscription)
    subscription_services.discount_record_applied(discount=first, now=NOW)  # once: used up, ended
    assert subscription_services.coupon_redeem(coupon=coupon, customer=customer, now=NOW).is_active


@pytest.mark.django_db
def test_redeem_refuses_both_or_neither_target():
    coupon = CouponFactory()
    subscription = make_subscription()
    _refusal(
        "subscription",
        "A coupon applies to a customer or to one subscription, not both.",
        coupon=coupon,
        customer=subscription.customer,
        subscription=subscription,
    )
    with pytest.raises(ValidationFailed) as refused:
        subscription_services.coupon_redeem(coupon=coupon, now=NOW)
    message = "Give the customer or the subscription the coupon applies to."
    assert refused.value.fields == {"customer": [message], "subscription": [message]}
    assert not Discount.objects.exists()


# --- applying discounts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_discounts_applicable_are_the_active_ones_of_the_subscription_and_its_customer(
    django_assert_num_queries,
):
    customer = CustomerFactory()
    subscription = make_subscription(customer=customer)
    other = make_subscription(customer=customer)
    on_customer = subscription_services.coupon_redeem(coupon=FixedCouponFactory(), customer=customer, now=NOW)
    on_subscription = subscription_services.coupon_redeem(
        coupon=CouponFactory(duration="forever"), subscription=subscription, now=NOW + timedelta(hours=1)
    )
    subscription_services.coupon_redeem(coupon=CouponFactory(), subscription=other, now=NOW)
    used_up = subscription_services.coupon_redeem(coupon=CouponFactory(), subscription=subscription, now=NOW)
    subscription_services.discount_record_applied(discount=used_up, now=NOW)
    subscription_services.coupon_redeem(coupon=CouponFactory(), customer=CustomerFactory(), now=NOW)

    with django_assert_num_queries(3):
        discounts = subscription_selectors.discounts_applicable(subscription=subscription)
        assert [discount.coupon.amount_for("USD").amount_off for discount in discounts[:1]] == [Decimal("10.00")]
        assert [discount.coupon.applies_to_product(1) for discount in discounts] == [True, True]

    assert discounts == [on_customer, on_subscription]


@pytest.mark.django_db
def test_record_applied_counts_invoices_and_ends_a_repeating_discount_when_used_up():
    coupon = CouponFactory(duration="repeating", duration_in_periods=2)
    discount = subscription_services.coupon_redeem(coupon=coupon, customer=CustomerFactory(), now=NOW)

    discount = subscription_services.discount_record_applied(discount=discount, now=NOW)
    assert (discount.periods_applied, discount.ended_at) == (1, None)
    later = NOW + timedelta(days=31)
    discount = subscription_services.discount_record_applied(discount=discount, now=later)
    discount.refresh_from_db()
    assert (discount.periods_applied, discount.ended_at, discount.is_active) == (2, later, False)

    with pytest.raises(InvalidTransition):
        subscription_services.discount_record_applied(discount=discount, now=later)
    discount.refresh_from_db()
    assert discount.periods_applied == 2


@pytest.mark.django_db
def test_record_applied_never_ends_a_forever_discount():
    discount = subscription_services.coupon_redeem(
        coupon=CouponFactory(duration="forever"), customer=CustomerFactory(), now=NOW
    )
    for _ in range(24):
        discount = subscription_services.discount_record_applied(discount=discount, now=NOW)
    assert (discount.periods_applied, discount.ended_at, discount.is_active) == (24, None, True)
