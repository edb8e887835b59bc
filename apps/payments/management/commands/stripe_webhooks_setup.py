from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.payments.stripe.client import stripe_enabled
from apps.payments.stripe.webhook_endpoints import stripe_webhook_endpoint_ensure


class Command(BaseCommand):
    help = (
        "Create (once) the webhook endpoint Stripe posts its events to, at BASE_URL/stripe/webhook/<uuid>/, "
        "and, against the local fake Stripe (STRIPE_API_BASE), register it there. Does nothing while card "
        "payments are off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="scheme and host of this site")

    def handle(self, *args, **options):
        if not stripe_enabled():
            self.stdout.write("Card payments are off (no STRIPE_API_BASE or Stripe key): no webhook endpoint.")
            return
        try:
            endpoint = stripe_webhook_endpoint_ensure(base_url=options["base_url"])
        except (ApplicationError, OSError) as error:
            raise CommandError(f"Could not set up the Stripe webhook endpoint: {error}") from error
        self.stdout.write(f"Stripe events are posted to {endpoint.url}")
