from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The finance back office: the admin pages that combine several apps (a customer with its
    invoices, payments and usage; an invoice with its payments and card collection; a subscription
    with its plan changes and invoices). The domain apps below know nothing of it."""

    name = "apps.backoffice"
    label = "backoffice"
    verbose_name = _("Back office")

    def ready(self) -> None:
        _admin_shows_decimals_without_trailing_zeros()


def _admin_shows_decimals_without_trailing_zeros() -> None:
    """The admin shows a decimal field (a quantity, a tax percentage) as the bills do: "3", "19",
    "0.5", never "3.000000" (its stored places). Money fields read as everywhere (apps.core.money_format)."""
    import django.contrib.admin.helpers as admin_helpers
    import django.contrib.admin.templatetags.admin_list as admin_list
    import django.contrib.admin.utils as admin_utils
    from django.db import models
    from djmoney.models.fields import MoneyField

    from apps.invoices.templatetags.invoice_format import quantity

    original = admin_utils.display_for_field

    def display_for_field(value: Any, field: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(field, models.DecimalField) and not isinstance(field, MoneyField) and value is not None:
            return quantity(value)
        return original(value, field, *args, **kwargs)

    for module in (admin_utils, admin_helpers, admin_list):
        module.display_for_field = display_for_field  # type: ignore[attr-defined]
