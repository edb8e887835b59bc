from django.db import models
from django.utils.translation import gettext_lazy as _

# The member states of the European Union (ISO 3166-1 codes), for the EU VAT rules.
EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
        "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip


class TaxIdType(models.TextChoices):
    """Kinds of customer tax IDs (named like Stripe's customer tax ID types)."""

    EU_VAT = "eu_vat", _("EU VAT number")
    GB_VAT = "gb_vat", _("UK VAT number")
    CH_VAT = "ch_vat", _("Swiss VAT number")
    NO_VAT = "no_vat", _("Norwegian VAT number")
    US_EIN = "us_ein", _("US Employer Identification Number")
    OTHER = "other", _("Other (not checked)")


class TaxIdStatus(models.TextChoices):
    """What we know about a customer's tax ID. Only a valid EU VAT number allows the reverse charge."""

    VALID = "valid", _("Valid (format and check digits)")
    UNVERIFIED = "unverified", _("Not verified (no check for this kind of ID)")
    INVALID = "invalid", _("Invalid (recorded before tax IDs were checked; fix it)")


class InvoiceGrouping(models.TextChoices):
    """How a customer's subscriptions that renew on the same date are invoiced by the billing run."""

    PER_SUBSCRIPTION = "per_subscription", _("One invoice per subscription")
    PER_CUSTOMER = "per_customer", _("One invoice for all subscriptions renewing on the same date")


class CollectionMethod(models.TextChoices):
    """How a customer's invoices are collected (like Stripe's `collection_method`)."""

    CHARGE_AUTOMATICALLY = "charge_automatically", _("Charge the default payment method automatically")
    SEND_INVOICE = "send_invoice", _("Send the invoice; the customer pays it")


class PortalLanguage(models.TextChoices):
    """Languages of the customer portal, its emails and PDF bills (Django language codes)."""

    ENGLISH = "en", "English"
    SIMPLIFIED_CHINESE = "zh-hans", "简体中文"


# What each portal role may do (an owner may do everything, a viewer only reads).
PORTAL_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "manage_billing", "manage_team"}),
    "billing": frozenset({"read", "manage_billing"}),
    "viewer": frozenset({"read"}),
}
