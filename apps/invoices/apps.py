from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "apps.invoices"
    label = "invoices"
    verbose_name = "Invoices and billing"

    def ready(self) -> None:
        from apps.core.outbox import event_source_register

        from .webhooks import INVOICE_EVENT_SOURCE

        event_source_register(INVOICE_EVENT_SOURCE)
