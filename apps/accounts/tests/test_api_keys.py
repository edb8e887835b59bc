import pytest
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from apps.accounts.api.authentication import ApiKeyAuthentication, HasApiKey
from apps.accounts.credentials import api_key_authenticate, api_key_create, api_key_hash, api_key_revoke
from apps.accounts.models import ApiKey
from apps.core.errors import ValidationFailed
from apps.core.tests.test_admin import change_form_data
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_hashed_and_authenticates_until_revoked():
    api_key, raw_key = api_key_create(name="Metering pipeline")

    assert raw_key.startswith(api_key.prefix + "_") and len(raw_key) > 40
    assert api_key.key_hash == api_key_hash(raw_key) and raw_key not in api_key.key_hash
    assert api_key_authenticate(raw_key, now=utc(2026, 1, 1)) == api_key
    assert ApiKey.objects.get().last_used_at == utc(2026, 1, 1)
    assert api_key_authenticate(raw_key + "x") is None
    assert api_key_authenticate("not-a-key") is None

    api_key_revoke(api_key_id=api_key.pk, now=utc(2026, 1, 2))

    assert api_key_authenticate(raw_key) is None


def test_a_key_needs_a_name():
    with pytest.raises(ValidationFailed) as excinfo:
        api_key_create(name="  ")
    assert list(excinfo.value.fields) == ["name"]
    assert not ApiKey.objects.exists()


def test_the_drf_authentication():
    _, raw_key = api_key_create(name="Pipeline")
    factory = APIRequestFactory()
    authentication = ApiKeyAuthentication()

    user, auth = authentication.authenticate(factory.post("/", HTTP_AUTHORIZATION=f"Bearer {raw_key}"))
    assert isinstance(auth, ApiKey) and user.is_authenticated and not user.is_staff
    assert HasApiKey().has_permission(type("Request", (), {"auth": auth})(), None)
    assert authentication.authenticate(factory.post("/", HTTP_AUTHORIZATION="Token abc")) is None
    with pytest.raises(AuthenticationFailed, match="Unknown or revoked"):
        authentication.authenticate(factory.post("/", HTTP_AUTHORIZATION="Bearer bp_00000000_nope"))


def test_admin_shows_the_key_once_and_revokes(client, superuser):
    client.force_login(superuser)
    url = reverse("admin:accounts_apikey_add")

    response = client.post(url, change_form_data(client.get(url), name="Prod pipeline"), follow=True)

    api_key = ApiKey.objects.get()
    [message] = [str(m) for m in response.context["messages"] if str(m).startswith("API key created")]
    raw_key = message.rsplit(" ", 1)[-1]
    assert message.startswith("API key created. Copy it now, it is shown only this once:")
    assert api_key_authenticate(raw_key) == api_key
    assert raw_key not in client.get(reverse("admin:accounts_apikey_change", args=[api_key.pk])).content.decode()

    client.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [api_key.pk]})

    assert api_key_authenticate(raw_key) is None
    assert client.get(reverse("admin:accounts_apikey_delete", args=[api_key.pk])).status_code == 403
