from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from apps.core.errors import ApplicationError
from apps.demo.stripe_demo import stripe_demo_data_load
from apps.payments.stripe.client import stripe_enabled


class Command(BaseCommand):
    help = (
        "With card payments against the local fake Stripe (STRIPE_API_BASE), give three demo customers a card "
        "and charge an open invoice each: paid, declined then paid, waiting for 3-D Secure. Does nothing "
        "otherwise, or when done before."
    )

    def handle(self, *args, **options):
        if not stripe_enabled():
            self.stdout.write("Card payments are off: no card payments in the demo data.")
            return
        try:
            # Demo customers have example addresses: no 3-D Secure email printed to the console.
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                summary = stripe_demo_data_load()
        except (ApplicationError, ValueError) as error:
            raise CommandError(str(error)) from error
        if not summary.created:
            self.stdout.write("Card demo data is already present; nothing to do.")
            return
        self.stdout.write(self.style.SUCCESS("Card payments in the demo:"))
        for payment in summary.payments:
            invoice = payment.allocations.get().invoice
            line = f"  {invoice} ({payment.customer.name}): {payment.amount} by card, {payment.status}"
            if payment.failure_message:
                line += f" ({payment.failure_message})"
            self.stdout.write(line)
