from functools import lru_cache
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_countries.fields import Country, CountryField

from apps.core.models import TimeStampedModel
from apps.core.money import currency_choices

from .constants import CollectionMethod, InvoiceGrouping, PortalLanguage, TaxIdStatus, TaxIdType

# Address conventions for printing (others use "postcode city" on one line, then region).
CITY_STATE_POSTCODE_COUNTRIES = frozenset({"US", "CA", "AU"})
POSTCODE_LAST_COUNTRIES = frozenset({"GB", "IE"})


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names this machine knows (e.g. "Asia/Shanghai")."""
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            _("%(value)s is not a time zone name; use an IANA name such as Asia/Shanghai or Europe/Paris."),
            params={"value": repr(value)},
            code="invalid_time_zone",
        )


class SimulatedClock(TimeStampedModel):
    """A clock of its own for test customers: time stands still for them until staff advance it, and
    advancing runs everything that would have happened in between (trial ends, renewals, scheduled
    changes, finalizations), in order. Production customers never have one.

    Called a test clock on every screen (as Stripe calls them); its code name keeps clear of pytest's
    `test*` discovery."""

    name = models.CharField(max_length=255, verbose_name=_("name"))
    frozen_at = models.DateTimeField(
        help_text=_("The current time for the customers on this clock (UTC)."), verbose_name=_("frozen at")
    )

    class Meta:
        db_table = "accounts_testclock"
        ordering = ["-created_at", "-id"]
        verbose_name = _("test clock")
        verbose_name_plural = _("test clocks")

    def __str__(self) -> str:
        return f"{self.name} ({self.frozen_at:%Y-%m-%d %H:%M} UTC)"


class Customer(TimeStampedModel):
    """A billing account: who is billed, where, and in which currency."""

    external_id = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("Your own identifier for this customer (unique when set); used by integrations."),
        verbose_name=_("external ID"),
    )
    name = models.CharField(max_length=255, verbose_name=_("name"))
    email = models.EmailField(
        help_text=_("Where bills are sent (with the billing contacts that receive invoices)."), verbose_name=_("email")
    )
    address_line1 = models.CharField(_("address line 1"), max_length=255, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=255, blank=True)
    city = models.CharField(max_length=128, blank=True, verbose_name=_("city"))
    postal_code = models.CharField(max_length=32, blank=True, verbose_name=_("postal code"))
    state = models.CharField(_("state / region"), max_length=128, blank=True)
    country = CountryField(verbose_name=_("country"))
    currency = models.CharField(
        max_length=3,
        choices=currency_choices,
        help_text=_("The one currency this customer is billed in."),
        verbose_name=_("currency"),
    )
    tax_id = models.CharField(_("tax ID"), max_length=64, blank=True, help_text=_("Checked and normalized when saved."))
    tax_id_type = models.CharField(
        _("kind of tax ID"),
        max_length=16,
        choices=TaxIdType.choices,
        blank=True,
        help_text=_("Leave empty for the customer's country's VAT number (or EIN in the US)."),
    )
    tax_id_status = models.CharField(
        _("tax ID status"),
        max_length=16,
        choices=TaxIdStatus.choices,
        blank=True,
        editable=False,
        help_text=_("Only a valid EU VAT number allows the EU reverse charge."),
    )
    tax_id_checked_at = models.DateTimeField(_("tax ID checked at"), null=True, blank=True, editable=False)
    tax_exempt = models.BooleanField(
        default=False, help_text=_("Never charged tax (e.g. a registered charity)."), verbose_name=_("tax exempt")
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(365)],
        help_text=_("Days from issue to due date; empty means the default terms."),
        verbose_name=_("payment terms days"),
    )
    invoice_grouping = models.CharField(
        max_length=16,
        choices=InvoiceGrouping.choices,
        blank=True,
        default="",
        help_text=_(
            "Empty means the default (the INVOICE_GROUPING setting). Applies to billing runs; a new "
            "subscription's first invoice is always its own."
        ),
        verbose_name=_("invoice grouping"),
    )
    collection_method = models.CharField(
        max_length=24,
        choices=CollectionMethod.choices,
        default=CollectionMethod.SEND_INVOICE,
        help_text=_(
            "Charge the customer's card automatically, or send the invoice for the customer to pay. "
            "Copied onto each invoice when it is finalized."
        ),
        verbose_name=_("collection method"),
    )
    preferred_language = models.CharField(
        max_length=8,
        choices=PortalLanguage.choices,
        default=PortalLanguage.ENGLISH,
        help_text=_(
            "The language of the customer's portal, emails and PDF bills (each portal user may pick their own)."
        ),
        verbose_name=_("preferred language"),
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_(
            "The customer's time zone (IANA name, e.g. Asia/Shanghai): the hours of peak and off-peak prices are "
            "counted in it."
        ),
        verbose_name=_("time zone"),
    )
    test_clock = models.ForeignKey(
        SimulatedClock,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("Test customers only: their time is the clock's, and only advancing it bills them."),
        verbose_name=_("test clock"),
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="CustomerMembership",
        related_name="customers",
        blank=True,
        verbose_name=_("users"),
    )

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            (
                "change_customer_billing",
                "Can change a customer's billing terms, external ID and cards",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="customer_external_id_unique",
                violation_error_code="unique",
                violation_error_message="A customer with this external ID already exists.",
            ),
            # A tax ID always has its kind, status and check time; no tax ID, none of them.
            models.CheckConstraint(
                condition=(
                    Q(tax_id="", tax_id_type="", tax_id_status="", tax_id_checked_at__isnull=True)
                    | (~Q(tax_id="") & ~Q(tax_id_type="") & ~Q(tax_id_status="") & Q(tax_id_checked_at__isnull=False))
                ),
                name="customer_tax_id_checked",
                violation_error_message="A tax ID needs its kind, status and check time, and only a tax ID has them.",
            ),
        ]
        indexes = [models.Index(fields=["email"])]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name

    @property
    def address_lines(self) -> list[str]:
        """The postal address as printed on a bill, following the country's convention."""
        country = self.country.code
        if country in CITY_STATE_POSTCODE_COUNTRIES:  # "Seattle, WA 98101"
            state_postcode = " ".join(part for part in [self.state, self.postal_code] if part)
            locality = [", ".join(part for part in [self.city, state_postcode] if part)]
        elif country in POSTCODE_LAST_COUNTRIES:  # "London" / "SW1A 2AA"
            locality = [self.city, self.state, self.postal_code]
        else:  # "20457 Hamburg"
            locality = [" ".join(part for part in [self.postal_code, self.city] if part), self.state]
        lines = [self.address_line1, self.address_line2, *locality, _country_name(str(country), get_language())]
        return [line for line in lines if line]


class BillingContact(TimeStampedModel):
    """Someone at the customer who receives its bills by email, besides the customer's own email
    (e.g. accounts payable). Kept for the record when `receives_invoices` is turned off."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="billing_contacts", verbose_name=_("customer")
    )
    name = models.CharField(max_length=255, blank=True, verbose_name=_("name"))
    email = models.EmailField(verbose_name=_("email"))
    receives_invoices = models.BooleanField(
        default=True, help_text=_("Bills are emailed to this contact."), verbose_name=_("receives invoices")
    )

    class Meta:
        ordering = ["customer", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "email"],
                name="billing_contact_customer_email_unique",
                violation_error_message="This customer already has a billing contact with this email.",
            )
        ]
        verbose_name = _("billing contact")
        verbose_name_plural = _("billing contacts")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class CustomerMembership(TimeStampedModel):
    """A portal user's access to a customer account (a user may belong to several customers)."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        BILLING = "billing", _("Billing manager")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("customer")
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.BILLING, verbose_name=_("role"))
    language = models.CharField(
        max_length=8,
        choices=PortalLanguage.choices,
        blank=True,
        help_text=_("The portal's language for this user at this customer; empty means the customer's."),
        verbose_name=_("language"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "customer"],
                name="membership_user_customer_unique",
                violation_error_message="This user already belongs to this customer.",
            )
        ]
        verbose_name = _("customer membership")
        verbose_name_plural = _("customer memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer} ({self.get_role_display()})"

    @property
    def portal_language(self) -> str:
        return self.language or self.customer.preferred_language


class CustomerInvitation(TimeStampedModel):
    """An invitation to a customer's portal team, sent by email. Nobody joins the team before the
    invitee accepts it, signed in with the invited address (or creating their account from the link
    when the address has none). It expires, and the customer's owners or staff may revoke it. Only
    the SHA-256 of the link's token is stored."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("customer")
    )
    email = models.EmailField(
        help_text=_("Who is invited (the address the invitation is sent to)."), verbose_name=_("email")
    )
    role = models.CharField(max_length=16, choices=CustomerMembership.Role.choices, verbose_name=_("role"))
    token_hash = models.CharField(max_length=64, editable=False, verbose_name=_("token hash"))
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("invited by"),
    )
    expires_at = models.DateTimeField(editable=False, verbose_name=_("expires at"))
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("accepted at"))
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("accepted by"),
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("revoked at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("portal invitation")
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="customer_invitation_token_unique"),
            # One open invitation per address and customer (inviting again replaces it).
            models.UniqueConstraint(
                fields=["customer", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="customer_invitation_one_open",
            ),
        ]
        verbose_name_plural = _("portal invitations")

    def __str__(self) -> str:
        return f"{self.email} → {self.customer}"

    def status_at(self, now) -> str:
        if self.accepted_at is not None:
            return self.Status.ACCEPTED
        if self.revoked_at is not None:
            return self.Status.REVOKED
        return self.Status.PENDING if now < self.expires_at else self.Status.EXPIRED


class ApiKey(TimeStampedModel):
    """A key the seller's own systems use to send usage events. Only its SHA-256 is stored; the key is
    shown once, when it is created. Revoked keys stay for the record."""

    name = models.CharField(
        max_length=255, help_text=_('What uses this key, e.g. "Metering pipeline (prod)".'), verbose_name=_("name")
    )
    prefix = models.CharField(
        max_length=16,
        editable=False,
        help_text=_("The key's visible start, to recognise it."),
        verbose_name=_("prefix"),
    )
    key_hash = models.CharField(max_length=64, editable=False, verbose_name=_("key hash"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("revoked at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API key")
        constraints = [
            models.UniqueConstraint(fields=["prefix"], name="api_key_prefix_unique"),
            models.UniqueConstraint(fields=["key_hash"], name="api_key_hash_unique"),
        ]
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PortalToken(TimeStampedModel):
    """A customer user's personal token for the customer API (`/api/v1/portal/`), made in the portal.
    It acts for one customer only (the membership's), with the member's current role; removing the
    member from the team deletes it. Only its SHA-256 is stored; the token is shown once. Revoked
    tokens stay for the record."""

    membership = models.ForeignKey(
        CustomerMembership, on_delete=models.CASCADE, related_name="portal_tokens", verbose_name=_("membership")
    )
    name = models.CharField(
        max_length=100, help_text=_('What uses this token, e.g. "Accounting export".'), verbose_name=_("name")
    )
    prefix = models.CharField(
        max_length=16,
        editable=False,
        help_text=_("The token's visible start, to recognise it."),
        verbose_name=_("prefix"),
    )
    key_hash = models.CharField(max_length=64, editable=False, verbose_name=_("key hash"))
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("revoked at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer API token")
        constraints = [
            models.UniqueConstraint(fields=["prefix"], name="portal_token_prefix_unique"),
            models.UniqueConstraint(fields=["key_hash"], name="portal_token_hash_unique"),
        ]
        verbose_name_plural = _("customer API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UserToken(TimeStampedModel):
    """A user's token for the API (`Authorization: Token bpu_…`): a staff user's for the staff API,
    within the user's permissions (a customer user's works on the customer API). Made by a superuser in
    the admin. Only its SHA-256 is stored, as for API keys and customer tokens; the token is shown once.
    Revoked tokens stay for the record."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(
        max_length=100, help_text=_('What uses this token, e.g. "ERP sync".'), verbose_name=_("name")
    )
    prefix = models.CharField(
        max_length=16,
        editable=False,
        help_text=_("The token's visible start, to recognise it."),
        verbose_name=_("prefix"),
    )
    key_hash = models.CharField(max_length=64, editable=False, verbose_name=_("key hash"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("revoked at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("user API token")
        constraints = [
            models.UniqueConstraint(fields=["prefix"], name="user_token_prefix_unique"),
            models.UniqueConstraint(fields=["key_hash"], name="user_token_hash_unique"),
        ]
        verbose_name_plural = _("user API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@lru_cache(maxsize=512)
def _country_name(code: str, language: str | None) -> str:
    """A country's name in a language (looked up through its translations: worth remembering when a
    billing run prints thousands of addresses)."""
    return str(Country(code=code).name)


class StaffPreference(TimeStampedModel):
    """A staff user's own settings for the back office: the language the admin speaks to them,
    whatever their browser asks for (the portal's language is chosen apart, per membership)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_preference",
        verbose_name=_("staff user"),
    )
    language = models.CharField(
        _("admin language"),
        max_length=8,
        choices=PortalLanguage.choices,
        help_text=_("The language of the admin for this staff user, whatever the browser asks for."),
    )

    class Meta:
        verbose_name = _("staff preference")
        verbose_name_plural = _("staff preferences")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"
