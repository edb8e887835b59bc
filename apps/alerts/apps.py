from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"
    verbose_name = _("Spend alerts and budgets")

    def ready(self) -> None:
        # Usage ingestion marks customers for evaluation (cheap, debounced); crossings are events of
        # outgoing webhooks (`alert.triggered`, and `customer.limit_reached` for hard limits).
        from apps.core.outbox import event_source_register

        from . import receivers, tasks  # noqa: F401
        from .webhooks import ALERT_EVENT_SOURCE, LIMIT_EVENT_SOURCE

        event_source_register(ALERT_EVENT_SOURCE)
        event_source_register(LIMIT_EVENT_SOURCE)
