from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # Card collection through Stripe: the client pointed at STRIPE_API_BASE, collection started
        # on `invoices_finalized`, dj-stripe's webhook events mapped onto our payments, its admin pages.
        from .stripe import admin, receivers, tasks, webhooks  # noqa: F401
        from .stripe.client import configure

        configure()

        # Dunning: its periodic task, its receivers of the payment signals and its test clock hook.
        from .dunning import receivers as dunning_receivers
        from .dunning import tasks as dunning_tasks  # noqa: F401

        dunning_receivers.connect()

        # Outgoing webhooks: payments and refunds as a source of events.
        from apps.core.outbox import event_source_register

        from .webhooks import PAYMENT_EVENT_SOURCE

        event_source_register(PAYMENT_EVENT_SOURCE)
