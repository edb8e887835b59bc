from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    """The billing engine. Its records (billing runs, invoiced periods) are models of apps.invoices and
    apps.subscriptions; this app holds the code that makes them."""

    name = "apps.billing"
    label = "billing"
    verbose_name = _("Billing engine")

    def ready(self) -> None:
        # Usage ingestion marks customers with progressive billing for an evaluation (cheap, debounced).
        from . import receivers, tasks  # noqa: F401
