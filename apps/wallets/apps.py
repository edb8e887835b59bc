from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WalletsConfig(AppConfig):
    name = "apps.wallets"
    label = "wallets"
    verbose_name = _("Prepaid credit wallets")

    def ready(self) -> None:
        # Running out of prepaid credits, and having them again, are events of outgoing webhooks; a
        # customer on a test clock has its credits expired as its clock moves (not by the real day).
        from apps.core.clock_hooks import simulated_clock_hook_register
        from apps.core.outbox import event_source_register

        from .services.expiry import simulated_clock_next_moment, simulated_clock_run
        from .webhooks import PREPAID_STATUS_EVENT_SOURCE

        event_source_register(PREPAID_STATUS_EVENT_SOURCE)
        simulated_clock_hook_register(name="wallets", next_moment=simulated_clock_next_moment, run=simulated_clock_run)
