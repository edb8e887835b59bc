from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SubscriptionsConfig(AppConfig):
    name = "apps.subscriptions"
    label = "subscriptions"
    verbose_name = _("Subscriptions")

    def ready(self) -> None:
        from apps.core.outbox import event_source_register

        from .webhooks import ENTITLEMENTS_EVENT_SOURCE, SUBSCRIPTION_EVENT_SOURCE

        event_source_register(SUBSCRIPTION_EVENT_SOURCE)
        event_source_register(ENTITLEMENTS_EVENT_SOURCE)
