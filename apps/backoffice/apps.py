from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The finance back office: the admin pages that combine several apps (a customer with its
    invoices, payments and usage; an invoice with its payments and card collection; a subscription
    with its plan changes and invoices). The domain apps below know nothing of it."""

    name = "apps.backoffice"
    label = "backoffice"
    verbose_name = _("Back office")
