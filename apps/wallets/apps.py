from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WalletsConfig(AppConfig):
    name = "apps.wallets"
    label = "wallets"
    verbose_name = _("Prepaid credit wallets")

    def ready(self) -> None:
        # Running out of prepaid credits, and having them again, are events of outgoing webhooks.
        from apps.core.outbox import event_source_register

        from .webhooks import PREPAID_STATUS_EVENT_SOURCE

        event_source_register(PREPAID_STATUS_EVENT_SOURCE)
