from django.db import models
from django.utils.translation import gettext_lazy as _


class WalletEntryKind(models.TextChoices):
    # Lots: credits coming in (positive), each with its own expiry date.
    GRANT = "grant", _("Grant")
    PURCHASE = "purchase", _("Purchase")
    # Credits an invoice consumed, given back when it is credited or voided: a lot of its own that
    # expires with the lot they came from.
    RETURN = "return", _("Return")
    # Draws on a lot (negative).
    CONSUMPTION = "consumption", _("Consumption")
    EXPIRY = "expiry", _("Expiry")
    VOID = "void", _("Void")


LOT_KINDS = (WalletEntryKind.GRANT, WalletEntryKind.PURCHASE, WalletEntryKind.RETURN)
DRAW_KINDS = (WalletEntryKind.CONSUMPTION, WalletEntryKind.EXPIRY, WalletEntryKind.VOID)


class GrantCategory(models.TextChoices):
    """Why free credits were granted (a grant is a discount, not revenue: docs/credits.md)."""

    PROMOTION = "promotion", _("Promotion")
    GOODWILL = "goodwill", _("Goodwill")
    OTHER = "other", _("Other")


class PurchaseTrigger(models.TextChoices):
    STAFF = "staff", _("Staff")
    API = "api", _("API")
    PORTAL = "portal", _("Portal")
    AUTO_TOP_UP = "auto_top_up", _("Automatic top-up")


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for payment")
    GRANTED = "granted", _("Credits granted")
    CANCELED = "canceled", _("Canceled")


# Credits are counted to 4 decimals; a wallet's rate (money per credit) to 6.
CREDIT_DECIMALS = 4
MAX_CREDITS = 10**12
