from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "apps.invoices"
    label = "invoices"
    verbose_name = _("Invoices and billing")

    def ready(self) -> None:
        from apps.core.outbox import event_source_register

        from .webhooks import INVOICE_EVENT_SOURCE

        event_source_register(INVOICE_EVENT_SOURCE)
