"""Wallets of prepaid credits and their ledger.

A wallet belongs to one customer, in the customer's currency, with a rate (the money one credit is
worth). Its ledger is append-only: credits come in as lots (a grant or a purchase, each with its own
expiry date) and go out as draws on one lot (consumption by an invoice, expiry, void). A wallet's
balance is the sum of its ledger; a lot's remaining credits are the lot plus its draws."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.accounts.models import Customer
from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices

from .constants import DRAW_KINDS, LOT_KINDS, GrantCategory, PurchaseStatus, PurchaseTrigger, WalletEntryKind


def _money(**kwargs) -> MoneyField:
    return MoneyField(
        max_digits=19, decimal_places=4, currency_choices=currency_choices, default_currency=None, **kwargs
    )


def _credits(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=19, decimal_places=4, **kwargs)


class Wallet(TimeStampedModel):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallets", verbose_name=_("customer"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    currency = models.CharField(max_length=3, choices=currency_choices, editable=False, verbose_name=_("currency"))
    rate = models.DecimalField(
        max_digits=19,
        decimal_places=6,
        help_text=_("What one credit is worth, in the wallet's currency."),
        verbose_name=_("rate"),
    )
    priority = models.PositiveSmallIntegerField(
        default=100,
        help_text=_("Among credits expiring the same day, wallets of lower priority numbers are used first."),
        verbose_name=_("priority"),
    )
    top_up_threshold = _credits(
        null=True,
        blank=True,
        help_text=_("Buy credits automatically when the balance falls under this many credits."),
        verbose_name=_("top up threshold"),
    )
    top_up_credits = _credits(
        null=True,
        blank=True,
        help_text=_("How many credits an automatic top-up buys."),
        verbose_name=_("top up credits"),
    )
    top_up_valid_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Credits bought by a top-up expire this many days later (empty: never)."),
        verbose_name=_("top up valid days"),
    )

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
        ordering = ["customer", "priority", "id"]
        permissions = [
            ("grant_credits", "Can grant free credits"),
            ("void_credits", "Can void credits"),
            ("purchase_credits", "Can buy credits for a customer"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="wallet_customer_name_unique"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="wallet_rate_positive"),
            models.CheckConstraint(
                condition=(Q(top_up_threshold__isnull=True) & Q(top_up_credits__isnull=True))
                | (Q(top_up_threshold__gte=0) & Q(top_up_credits__gt=0)),
                name="wallet_top_up_complete",
                violation_error_message="An automatic top-up needs both a threshold and a number of credits.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer})"


class WalletEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Wallet ledger entries are append-only.")

    def delete(self):
        raise TypeError("Wallet ledger entries are append-only.")


class WalletEntry(models.Model):
    """One line of a wallet's ledger; never changed or deleted (a database trigger refuses it)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries", verbose_name=_("wallet"))
    kind = models.CharField(max_length=16, choices=WalletEntryKind.choices, verbose_name=_("kind"))
    credits = _credits(
        help_text=_("Positive for a lot (grant, purchase), negative for a draw on a lot."), verbose_name=_("credits")
    )
    amount = _money(help_text=_("The credits' worth in money, with the same sign."), verbose_name=_("amount"))
    lot = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="draws",
        help_text=_("The grant or purchase a draw takes its credits from."), verbose_name=_("lot"),
    )  # fmt: skip
    expires_on = models.DateField(
        null=True,
        blank=True,
        help_text=_("Lots: the day its credits expire (empty: never)."),
        verbose_name=_("expires on"),
    )
    category = models.CharField(max_length=16, choices=GrantCategory.choices, blank=True, verbose_name=_("category"))
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    invoice = models.ForeignKey(
        "invoices.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_entries",
        help_text=_("Consumption: the invoice the credits paid; purchase: the invoice that bought them."),
        verbose_name=_("invoice"),
    )  # fmt: skip
    returned_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="returns",
        help_text=_("Returns: the grant or purchase the returned credits first came from (its expiry is theirs)."),
        verbose_name=_("returned from"),
    )  # fmt: skip
    credit_note = models.ForeignKey(
        "invoices.CreditNote", on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_entries",
        help_text=_("Returns: the credit note that gave the credits back (none when the invoice was voided)."),
        verbose_name=_("credit note"),
    )  # fmt: skip
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))

    objects = WalletEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("wallet entry")
        verbose_name_plural = _("wallet entries")
        ordering = ["occurred_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=LOT_KINDS) & Q(credits__gt=0) & Q(amount__gte=0) & Q(lot__isnull=True))
                | (
                    Q(kind__in=DRAW_KINDS)
                    & Q(credits__lt=0)
                    & Q(amount__lte=0)
                    & Q(lot__isnull=False)
                    & Q(expires_on__isnull=True)
                ),
                name="wallet_entry_lot_or_draw",
            ),  # fmt: skip
            models.CheckConstraint(
                condition=~Q(kind__in=[WalletEntryKind.PURCHASE, WalletEntryKind.CONSUMPTION])
                | Q(invoice__isnull=False),
                name="wallet_entry_invoice_required",
            ),
            models.CheckConstraint(
                condition=(Q(kind=WalletEntryKind.RETURN) & Q(returned_from__isnull=False) & Q(invoice__isnull=False))
                | (~Q(kind=WalletEntryKind.RETURN) & Q(returned_from__isnull=True) & Q(credit_note__isnull=True)),
                name="wallet_entry_return_origin",
            ),
            # Exactly once: a purchase invoice grants its credits once, an invoice consumes a lot once,
            # and a lot expires once.
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(kind=WalletEntryKind.PURCHASE), name="wallet_entry_purchase_once"
            ),
            models.UniqueConstraint(
                fields=["lot", "invoice"],
                condition=Q(kind=WalletEntryKind.CONSUMPTION),
                name="wallet_entry_consumption_once",
            ),  # fmt: skip
            models.UniqueConstraint(
                fields=["lot"], condition=Q(kind=WalletEntryKind.EXPIRY), name="wallet_entry_expiry_once"
            ),
            # A credit note returns a lot's credits once; a voided invoice returns them once.
            models.UniqueConstraint(
                fields=["returned_from", "credit_note"],
                condition=Q(kind=WalletEntryKind.RETURN, credit_note__isnull=False),
                name="wallet_entry_return_once_per_credit_note",
            ),
            models.UniqueConstraint(
                fields=["returned_from", "invoice"],
                condition=Q(kind=WalletEntryKind.RETURN, credit_note__isnull=True),
                name="wallet_entry_return_once_per_void",
            ),
        ]
        indexes = [
            models.Index(fields=["wallet", "occurred_at"], name="wallet_entry_wallet_idx"),
            models.Index(
                fields=["expires_on"], name="wallet_entry_expiring_idx", condition=Q(expires_on__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(kind)s: %(credits)s credits") % {"kind": self.get_kind_display(), "credits": self.credits}

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Wallet ledger entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Wallet ledger entries are append-only.")

    @property
    def is_lot(self) -> bool:
        return self.kind in LOT_KINDS


class CreditPurchase(TimeStampedModel):
    """Credits bought through an invoice: granted (a purchase entry) once the invoice is paid."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="purchases", verbose_name=_("wallet"))
    invoice = models.OneToOneField(
        "invoices.Invoice", on_delete=models.PROTECT, related_name="credit_purchase", verbose_name=_("invoice")
    )
    credits = _credits(verbose_name=_("credits"))
    expires_on = models.DateField(null=True, blank=True, verbose_name=_("expires on"))
    trigger = models.CharField(max_length=16, choices=PurchaseTrigger.choices, verbose_name=_("trigger"))
    status = models.CharField(
        max_length=16, choices=PurchaseStatus.choices, default=PurchaseStatus.PENDING, verbose_name=_("status")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )

    class Meta:
        verbose_name = _("credit purchase")
        verbose_name_plural = _("credit purchases")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="credit_purchase_credits_positive"),
            # Two top-ups racing leave one: at most one automatic top-up waits for payment per wallet.
            models.UniqueConstraint(
                fields=["wallet"],
                condition=Q(trigger=PurchaseTrigger.AUTO_TOP_UP, status=PurchaseStatus.PENDING),
                name="credit_purchase_one_pending_top_up",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(credits)s credits for %(wallet)s") % {"credits": self.credits, "wallet": self.wallet}


class PrepaidStatus(models.Model):
    """Whether a customer's prepaid credits were found exhausted the last time its ledger changed: the
    state that the `customer.prepaid_credits_exhausted` / `…_restored` events move between. Its row
    lock serializes those transitions, so each fires once however many ledger changes race."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("customer")
    )
    credits_exhausted = models.BooleanField(
        null=True,
        help_text=_("Empty until the customer's ledger first changes (no transition before that)."),
        verbose_name=_("credits exhausted"),
    )
    changed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("changed at"))

    class Meta:
        verbose_name = _("prepaid status")
        verbose_name_plural = _("prepaid statuses")

    def __str__(self) -> str:
        return f"{self.customer_id}: {'exhausted' if self.credits_exhausted else 'credits left'}"


class PrepaidStatusChange(models.Model):
    """One transition of a customer's prepaid credits: run out, or usable again (an outgoing webhook
    event each, see docs/credits.md). Written once per transition, never changed."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="prepaid_status_changes", verbose_name=_("customer")
    )
    credits_exhausted = models.BooleanField(
        help_text=_("True: the credits ran out; false: credits are usable again."), verbose_name=_("credits exhausted")
    )
    credits = _credits(
        help_text=_("The customer's usable credits after the change (all its wallets)."), verbose_name=_("credits")
    )
    entry = models.ForeignKey(
        WalletEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("The ledger entry that made the change."), verbose_name=_("entry"),
    )  # fmt: skip
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    created_at = models.DateTimeField(auto_now_add=True, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("prepaid status change")
        verbose_name_plural = _("prepaid status changes")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "occurred_at"], name="prepaid_change_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {'exhausted' if self.credits_exhausted else 'restored'} at {self.occurred_at}"
