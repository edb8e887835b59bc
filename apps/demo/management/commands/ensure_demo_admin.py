import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.credentials import (
    api_key_create,
    api_key_revoke,
    portal_token_create,
    portal_token_revoke,
    user_token_create,
    user_token_revoke,
)
from apps.accounts.models import ApiKey, CustomerMembership, UserToken
from apps.accounts.services import customer_membership_add
from apps.catalog.models import Plan
from apps.demo.demo_data import demo_first_customer
from apps.demo.sellers import seller_portal_customers
from apps.portal.selectors import portal_configuration

# Where `make run` serves the app (it passes its HOST and PORT).
ADMIN_URL = "http://{host}:{port}/admin/"
PORTAL_URL = "http://{host}:{port}/portal/"
ADMIN_USERNAME = "admin"
PORTAL_USERNAME = "demo-customer"


DEMO_API_KEY_NAME = "Demo metering"
DEMO_ADMIN_TOKEN_NAME = "Demo admin (make run)"
DEMO_PORTAL_TOKEN_NAME = "Demo (make run)"


class Command(BaseCommand):
    help = (
        "Create or update the local superuser 'admin' with a fresh random password and a fresh API token, and "
        "a customer portal user 'demo-customer' (with a password and a customer API token, Bearer bpc_…) "
        "for the first demo customer. "
        "For local demos only."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=ADMIN_USERNAME, defaults={"email": "admin@localhost.example"}
        )
        password = secrets.token_urlsafe(12)
        admin.is_staff = True
        admin.is_superuser = True
        admin.is_active = True
        admin.set_password(password)
        admin.save()
        # Tokens are stored hashed: each run revokes the demo token it made before and makes a new one.
        for old in UserToken.objects.filter(user=admin, name=DEMO_ADMIN_TOKEN_NAME, revoked_at__isnull=True):
            user_token_revoke(token_id=old.pk)
        _, token = user_token_create(user_id=admin.pk, name=DEMO_ADMIN_TOKEN_NAME)

        self.stdout.write(self.style.SUCCESS(f"Superuser {'created' if created else 'updated'} (new password)."))
        address = ADMIN_URL.format(host=os.environ.get("HOST", "127.0.0.1"), port=os.environ.get("PORT", "8000"))
        self.stdout.write(f"  Admin:    {address}")
        self.stdout.write(f"  Username: {ADMIN_USERNAME}")
        self.stdout.write(f"  Password: {password}")
        self.stdout.write(f"  API token: {token}  (header: Authorization: Token {token})")
        # A fresh key for sending usage events (keys are stored hashed: the old demo key is revoked).
        for old in ApiKey.objects.filter(name=DEMO_API_KEY_NAME, revoked_at__isnull=True):
            api_key_revoke(api_key_id=old.pk)
        _, raw_key = api_key_create(name=DEMO_API_KEY_NAME, actor=admin)
        self.stdout.write(f"  Usage API key: {raw_key}  (POST /api/v1/events/batch, header: Authorization: Bearer …)")

        customer = demo_first_customer()
        if customer is None:
            self.stdout.write(self.style.WARNING("No demo customer yet: run load_demo_data first for the portal user."))
            return
        portal_user, _ = User.objects.get_or_create(username=PORTAL_USERNAME, defaults={"email": customer.email})
        portal_password = secrets.token_urlsafe(12)
        portal_user.is_staff = False
        portal_user.is_superuser = False
        portal_user.is_active = True
        portal_user.set_password(portal_password)
        portal_user.save()
        membership = customer_membership_add(customer=customer, user=portal_user, role=CustomerMembership.Role.OWNER)
        # Only a token's hash is stored: each run revokes the demo token it made before and makes a new one.
        for old in membership.portal_tokens.filter(name=DEMO_PORTAL_TOKEN_NAME, revoked_at__isnull=True):
            portal_token_revoke(membership_id=membership.pk, token_id=old.pk)
        _, portal_token = portal_token_create(membership_id=membership.pk, name=DEMO_PORTAL_TOKEN_NAME)
        # A viewer of the usage-based sellers' first customers too, to see their invoices (docs/usage.md).
        viewing = seller_portal_customers()
        for other in viewing:
            customer_membership_add(customer=other, user=portal_user, role=CustomerMembership.Role.VIEWER)
        configuration = portal_configuration()
        if not configuration.allowed_plans.exists():  # let the demo customer change plans
            configuration.allowed_plans.set(Plan.objects.filter(is_archived=False))
        host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
        self.stdout.write(self.style.SUCCESS(f"Customer portal user for {customer.name} (new password):"))
        self.stdout.write(f"  Portal:   {PORTAL_URL.format(host=host, port=port)}")
        self.stdout.write(f"  Username: {PORTAL_USERNAME}")
        self.stdout.write(f"  Password: {portal_password}")
        if viewing:
            names = ", ".join(other.name for other in viewing)
            self.stdout.write(f"  Also a viewer of {names} (usage-based demo sellers: choose them in the portal)")
        self.stdout.write(
            f"  Customer API token: {portal_token}  (/api/v1/portal/…, header: Authorization: Bearer {portal_token})"
        )
