from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Dunning: its periodic task, its receivers of the payment signals and its test clock hook.
        from .dunning import receivers, tasks  # noqa: F401

        receivers.connect()
