"""Users' API tokens (`Authorization: Token bpu_…`) are stored hashed, like API keys and customer tokens,
shown once when made (admin, `ensure_demo_admin`), and revocable. DRF's own tokens, stored in plain
text, are gone: the migration revokes the ones that existed and drops their table."""

import importlib
import types

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from apps.accounts.api.authentication import UserTokenAuthentication
from apps.accounts.credentials import api_key_hash, user_token_authenticate, user_token_create, user_token_revoke
from apps.accounts.models import UserToken
from apps.accounts.roles import AUDITOR, BILLING_OPERATOR, FINANCE_ADMIN, SUPPORT
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.core.errors import ValidationFailed
from apps.core.tests.test_admin import change_form_data
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

migration_0013 = importlib.import_module("apps.accounts.migrations.0016_user_tokens")


def _every_stored_value(token: UserToken) -> list[str]:
    return [str(getattr(token, field.attname)) for field in UserToken._meta.concrete_fields]


def test_a_token_is_stored_hashed_and_authenticates_until_revoked(api_client, superuser):
    token, secret = user_token_create(user_id=superuser.pk, name="ERP sync")
    CustomerFactory()

    assert secret.startswith(token.prefix + "_") and token.prefix.startswith("bpu_") and len(secret) > 50
    assert token.key_hash == api_key_hash(secret)
    assert not any(secret in value for value in _every_stored_value(UserToken.objects.get()))
    response = api_client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Token {secret}")
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert UserToken.objects.get().last_used_at is not None

    user_token_revoke(token_id=token.pk, now=utc(2026, 1, 2))

    refused = api_client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Token {secret}")
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    assert refused["WWW-Authenticate"] == "Token"


def test_a_token_of_a_deactivated_user_is_refused(api_client, superuser):
    _, secret = user_token_create(user_id=superuser.pk, name="ERP sync")
    superuser.is_active = False
    superuser.save(update_fields=["is_active"])

    assert api_client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Token {secret}").status_code == 401
    assert user_token_authenticate(secret) is None


def test_a_token_needs_an_active_user_and_a_name():
    inactive = UserFactory(is_active=False)

    with pytest.raises(ValidationFailed) as refused:
        user_token_create(user_id=inactive.pk, name="  ")

    assert refused.value.fields == {"user": [f"User {inactive} is deactivated."], "name": ["Say what uses this token."]}
    assert not UserToken.objects.exists()


def test_the_drf_authentication():
    user = UserFactory(is_staff=True)
    token, secret = user_token_create(user_id=user.pk, name="Script")
    factory = APIRequestFactory()
    authentication = UserTokenAuthentication()

    assert authentication.authenticate(factory.get("/", HTTP_AUTHORIZATION=f"Token {secret}")) == (user, token)
    assert authentication.authenticate(factory.get("/", HTTP_AUTHORIZATION="Bearer bp_00000000_x")) is None
    assert authentication.authenticate(factory.get("/")) is None
    for header in ("Token nope", f"Token {secret}x", f"Token {secret} more", "Token"):
        with pytest.raises(AuthenticationFailed):
            authentication.authenticate(factory.get("/", HTTP_AUTHORIZATION=header))


def test_the_admin_shows_the_token_once_and_revokes(client, superuser):
    staff = UserFactory(username="erp-robot", is_staff=True)
    client.force_login(superuser)
    url = reverse("admin:accounts_usertoken_add")

    response = client.post(url, change_form_data(client.get(url), user=staff.pk, name="ERP sync"), follow=True)

    token = UserToken.objects.get()
    [message] = [str(m) for m in response.context["messages"] if str(m).startswith("Token created")]
    secret = message.rsplit(" ", 1)[-1]
    assert message.startswith("Token created for erp-robot. Copy it now, it is shown only this once")
    assert (token.user, token.name, token.created_by) == (staff, "ERP sync", superuser)
    assert user_token_authenticate(secret) == token
    change_page = client.get(reverse("admin:accounts_usertoken_change", args=[token.pk])).content.decode()
    assert token.prefix in change_page and secret not in change_page

    client.post(reverse("admin:accounts_usertoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})

    assert user_token_authenticate(secret) is None
    assert UserToken.objects.get().revoked_at is not None


def test_only_a_superuser_makes_tokens_in_the_admin(client, make_staff):
    """A token acts with all of its user's rights: staff who could make one for a superuser would
    become one."""
    staff = make_staff("accounts.add_usertoken", "accounts.view_usertoken", "accounts.change_usertoken")
    client.force_login(staff)

    assert client.get(reverse("admin:accounts_usertoken_add")).status_code == 403
    assert client.get(reverse("admin:accounts_usertoken_changelist")).status_code == 200


@pytest.mark.parametrize(
    ("role", "list_status", "revokes"),
    [(FINANCE_ADMIN, 200, True), (AUDITOR, 200, False), (BILLING_OPERATOR, 403, False), (SUPPORT, 403, False)],
)
def test_the_roles_see_and_revoke_tokens_as_roles_md_says_and_none_makes_one(client, role, list_status, revokes):
    staff = UserFactory(username="staff", is_staff=True)
    staff.groups.add(Group.objects.get(name=role))
    client.force_login(staff)
    request = RequestFactory().get("/admin/")
    request.user = staff

    assert client.get(reverse("admin:accounts_usertoken_changelist")).status_code == list_status
    assert client.get(reverse("admin:accounts_usertoken_add")).status_code == 403
    assert ("revoke" in admin.site.get_model_admin(UserToken).get_actions(request)) == revokes


def _legacy_table(*, present: bool) -> types.SimpleNamespace:
    """DRF's token table as an upgraded database has it (or a new one has none), changed inside the
    test's transaction only; and what the migration's function gets as its schema editor."""
    exists = "authtoken_token" in connection.introspection.table_names()
    with connection.cursor() as cursor:
        if present and not exists:
            cursor.execute(
                "CREATE TABLE authtoken_token "
                "(key varchar(40) PRIMARY KEY, created timestamp with time zone, user_id integer)"
            )
        elif not present and exists:
            cursor.execute("DROP TABLE authtoken_token")
    return types.SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)


def test_the_migration_revokes_the_plain_text_tokens_and_drops_them():
    user = UserFactory(username="integrator", is_staff=True)
    other = UserFactory(username="exporter", is_staff=True)  # DRF held one token per user
    legacy_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    schema_editor = _legacy_table(present=True)
    MigrationRecorder.Migration.objects.get_or_create(app="authtoken", name="0001_initial")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [legacy_key, utc(2025, 3, 1), user.pk],
        )
        cursor.execute(  # as SQLite's DRF table holds it: without an offset
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            ["0123456789abcdef0123456789abcdef01234567", "2025-03-02 10:00:00", other.pk],
        )

    migration_0013.revoke_plain_text_tokens(apps, schema_editor)

    assert sorted(UserToken.objects.values_list("prefix", "user", "created_at")) == [
        ("legacy-01234567", other.pk, utc(2025, 3, 2, 10)),
        ("legacy-9944b091", user.pk, utc(2025, 3, 1)),
    ]
    assert not UserToken.objects.filter(revoked_at__isnull=True).exists()
    assert UserToken.objects.get(prefix="legacy-9944b091").key_hash == api_key_hash(legacy_key)
    assert "authtoken_token" not in connection.introspection.table_names()  # the plain values with it
    assert not MigrationRecorder.Migration.objects.filter(app="authtoken").exists()
    factory = APIRequestFactory()
    with pytest.raises(AuthenticationFailed):
        UserTokenAuthentication().authenticate(factory.get("/", HTTP_AUTHORIZATION=f"Token {legacy_key}"))


def test_the_migration_does_nothing_on_a_database_without_drf_tokens():
    schema_editor = _legacy_table(present=False)

    migration_0013.revoke_plain_text_tokens(apps, schema_editor)

    assert not UserToken.objects.exists()
