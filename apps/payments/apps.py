from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Card collection through Stripe: the client pointed at STRIPE_API_BASE, collection started
        # on `invoices_finalized`, dj-stripe's webhook events mapped onto our payments, its admin pages.
        from .stripe import admin, receivers, tasks, webhooks  # noqa: F401
        from .stripe.client import configure

        configure()
