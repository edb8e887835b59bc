from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from apps.core.outbox import event_source_register

        from .webhooks import PAYMENT_EVENT_SOURCE

        event_source_register(PAYMENT_EVENT_SOURCE)
