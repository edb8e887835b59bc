from decimal import Decimal

import factory
from djmoney.money import Money

from apps.catalog.constants import SIMPLE_CHARGE_NAME
from apps.catalog.models import Charge, Coupon, CouponAmount, Plan, PlanVersion, Price, PriceTier, Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"product-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")


class PlanFactory(factory.django.DjangoModelFactory):
    """A monthly plan whose version 1 has one per-unit "Subscription fee" priced 49.00 USD and
    45.00 EUR unless told otherwise (`prices=[Money(...)]`; `prices=[]` for a plan with no version)."""

    class Meta:
        model = Plan
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    interval = "month"
    interval_count = 1

    @factory.post_generation
    def prices(self, create, extracted, **kwargs):
        if not create:
            return
        amounts = (
            extracted if extracted is not None else [Money(Decimal("49.00"), "USD"), Money(Decimal("45.00"), "EUR")]
        )
        if not amounts:
            return
        version = PlanVersion.objects.create(plan=self, number=1)
        charge = Charge.objects.create(plan_version=version, position=1, name=SIMPLE_CHARGE_NAME)
        for amount in amounts:
            Price.objects.create(charge=charge, currency=str(amount.currency), amount=amount.amount)


def add_charge(
    version: PlanVersion,
    *,
    name: str,
    price_model: str,
    currency: str = "USD",
    kind: str = "recurring",
    metric_code: str = "",
    tiers: list[tuple] = (),
    **price_fields,
) -> Price:
    """Add a charge priced in one currency to a version (tiers as (up_to, unit_amount, flat_amount))."""
    charge = Charge.objects.create(
        plan_version=version,
        position=version.charges.count() + 1,
        name=name,
        kind=kind,
        price_model=price_model,
        metric_code=metric_code,
    )
    price = Price.objects.create(charge=charge, currency=currency, **price_fields)
    for position, (up_to, unit_amount, flat_amount) in enumerate(tiers, start=1):
        PriceTier.objects.create(
            price=price,
            position=position,
            up_to=None if up_to is None else Decimal(up_to),
            unit_amount=Decimal(unit_amount),
            flat_amount=Decimal(flat_amount),
        )
    return price


class CouponFactory(factory.django.DjangoModelFactory):
    """25 % off once, unless told otherwise (for service rules, use `services.coupon_create`)."""

    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"coupon-{n}")
    name = factory.Sequence(lambda n: f"Offer {n}")
    discount_type = "percentage"
    percent_off = Decimal("25")
    duration = "once"


class FixedCouponFactory(CouponFactory):
    """10.00 USD off once; more currencies with `amounts=[Money(...)]`."""

    class Meta:
        skip_postgeneration_save = True

    discount_type = "fixed_amount"
    percent_off = None

    @factory.post_generation
    def amounts(self, create, extracted, **kwargs):
        if not create:
            return
        for money in extracted if extracted is not None else [Money(Decimal("10.00"), "USD")]:
            CouponAmount.objects.create(coupon=self, currency=str(money.currency), amount_off=money.amount)
