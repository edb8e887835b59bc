from collections.abc import Sequence

from django.db import transaction
from djmoney.money import Money

from apps.core.errors import ValidationFailed
from apps.core.money import is_supported_currency
from apps.core.validation import validate_instance

from .models import Plan, PlanPrice, Product


@transaction.atomic
def product_create(*, code: str, name: str, description: str = "") -> Product:
    product = Product(code=code, name=name, description=description)
    validate_instance(product)
    product.save()
    return product


@transaction.atomic
def plan_create(
    *,
    product: Product,
    code: str,
    name: str,
    prices: Sequence[Money],
    interval: str = "month",
    interval_count: int = 1,
    description: str = "",
) -> Plan:
    """Create a plan with its flat fee in one or more currencies (at least one)."""
    if product.is_archived:
        raise ValidationFailed("This product is archived.", fields={"product": ["This product is archived."]})
    if not prices:
        raise ValidationFailed(
            "A plan needs a price in at least one currency.", fields={"prices": ["Give at least one price."]}
        )
    plan = Plan(
        product=product,
        code=code,
        name=name,
        description=description,
        interval=interval,
        interval_count=interval_count,
    )
    validate_instance(plan)
    _validate_prices(prices)
    plan.save()
    for amount in prices:
        price = PlanPrice(plan=plan, amount=amount)
        validate_instance(price)
        price.save()
    return plan


def _validate_prices(prices: Sequence[Money]) -> None:
    seen: set[str] = set()
    for index, amount in enumerate(prices):
        currency = str(amount.currency)
        field = f"prices.{index}"
        if not is_supported_currency(currency):
            raise ValidationFailed(
                f"Unknown or unsupported currency {currency!r}.",
                fields={field: [f"{currency!r} is not one of the currencies this seller bills in."]},
            )
        if amount.amount < 0:
            raise ValidationFailed("Prices cannot be negative.", fields={field: ["Prices cannot be negative."]})
        if currency in seen:
            raise ValidationFailed(
                f"Two prices in {currency}.", fields={field: [f"The plan already has a price in {currency}."]}
            )
        seen.add(currency)
