"""The local fake Stripe of the payments tests, for the purchases and top-ups charged by card."""

from apps.payments.tests.stripe.conftest import localstripe, localstripe_url  # noqa: F401
from apps.portal.tests.conftest import world  # noqa: F401, E402 - the portal's two customers
