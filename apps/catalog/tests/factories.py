from decimal import Decimal

import factory
from djmoney.money import Money

from apps.catalog.models import Plan, PlanPrice, Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"product-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")


class PlanFactory(factory.django.DjangoModelFactory):
    """A monthly plan priced 49.00 USD and 45.00 EUR unless told otherwise (`prices=[Money(...)]`)."""

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
        for amount in amounts:
            PlanPrice.objects.create(plan=self, amount=amount)
