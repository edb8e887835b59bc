# The Stripe demo runs against the local fake Stripe server that the payments tests start.
from apps.payments.tests.stripe.conftest import localstripe, localstripe_url  # noqa: F401
