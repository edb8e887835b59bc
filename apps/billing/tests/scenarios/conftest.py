"""Settings the scenario stories rely on, pinned so that an environment variable cannot change a
story: drafts are issued at once, invoices are due 14 days after issue, one invoice per
subscription, dunning actions at 09:00 UTC."""

import pytest


@pytest.fixture(autouse=True)
def _scenario_settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_PAYMENT_TERMS_DAYS = 14
    settings.INVOICE_GROUPING = "per_subscription"
    settings.DUNNING_ACTION_HOUR = 9
    settings.PAYMENT_OVERPAYMENT_TO_BALANCE = True
