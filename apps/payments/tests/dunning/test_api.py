"""Dunning campaigns through the staff API: list, create, change, delete; field errors; permissions."""

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.payments.dunning.models import DunningCampaign
from apps.payments.dunning.services import customer_dunning_set

from .conftest import CAMPAIGN

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:dunning-campaign-list")


def detail_url(campaign_id: int) -> str:
    return reverse("api:dunning-campaign-detail", args=[campaign_id])


def test_create_then_list(api_client, superuser):
    api_client.force_authenticate(superuser)

    created = api_client.post(LIST_URL, {**CAMPAIGN, "retry_days": [7, 3, 5], "is_default": True}, format="json")

    assert created.status_code == 201, created.data
    body = created.json()
    assert {key: body[key] for key in [*CAMPAIGN, "is_default"]} == {**CAMPAIGN, "is_default": True}  # days sorted
    assert [row["name"] for row in api_client.get(LIST_URL).json()["results"]] == ["Standard"]


def test_a_new_default_takes_the_flag_off_the_old_one(api_client, superuser, campaign):
    api_client.force_authenticate(superuser)

    created = api_client.post(LIST_URL, {**CAMPAIGN, "name": "Strict", "is_default": True}, format="json")

    assert created.status_code == 201
    assert list(DunningCampaign.objects.order_by("name").values_list("name", "is_default")) == [
        ("Standard", False), ("Strict", True),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"retry_days": [0]}, "retry_days"),
        ({"retry_days": [3, 3]}, "retry_days"),
        ({"reminder_days_before_due": ["x"]}, "reminder_days_before_due"),
        ({"end_action": "shout"}, "end_action"),
        ({"end_action_day": 10}, "end_action_day"),  # not after the final notice (day 10)
        ({"final_notice_day": 400}, "final_notice_day"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(api_client, superuser, changes, field):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**CAMPAIGN, **changes}, format="json")

    assert response.status_code == 400, response.data
    assert response.json()["code"] == "invalid"
    assert [name.split(".")[0] for name in response.json()["fields"]] == [field]  # "retry_days.0": its first item
    assert not DunningCampaign.objects.exists()


def test_patch_changes_the_campaign_and_a_bad_patch_changes_nothing(api_client, superuser, campaign):
    api_client.force_authenticate(superuser)

    changed = api_client.patch(detail_url(campaign.pk), {"final_notice_day": 12, "end_action_day": 20}, format="json")
    refused = api_client.patch(detail_url(campaign.pk), {"end_action_day": 5}, format="json")

    assert changed.status_code == 200, changed.data
    assert (changed.json()["final_notice_day"], changed.json()["end_action_day"]) == (12, 20)
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["end_action_day"]
    campaign.refresh_from_db()
    assert (campaign.final_notice_day, campaign.end_action_day) == (12, 20)


def test_a_campaign_assigned_to_customers_is_not_deleted(api_client, superuser, campaign):
    customer_dunning_set(customer_id=CustomerFactory().pk, campaign_id=campaign.pk)
    api_client.force_authenticate(superuser)

    refused = api_client.delete(detail_url(campaign.pk))

    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"
    assert DunningCampaign.objects.filter(pk=campaign.pk).exists()


def test_the_same_idempotency_key_creates_one_campaign(api_client, superuser):
    api_client.force_authenticate(superuser)

    first = api_client.post(LIST_URL, CAMPAIGN, format="json", HTTP_IDEMPOTENCY_KEY="campaign-1")
    again = api_client.post(LIST_URL, CAMPAIGN, format="json", HTTP_IDEMPOTENCY_KEY="campaign-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert DunningCampaign.objects.count() == 1


@pytest.mark.parametrize(
    ("who", "perms", "read", "write"),
    [
        ("anonymous", (), 401, 401),
        ("customer user", (), 403, 403),
        ("staff without permission", (), 403, 403),
        ("staff who may view", ("payments.view_dunningcampaign",), 200, 403),
        ("staff who may add", ("payments.view_dunningcampaign", "payments.add_dunningcampaign"), 200, 201),
    ],
)
def test_permission_matrix(api_client, make_staff, campaign, who, perms, read, write):
    if who == "customer user":
        api_client.force_authenticate(UserFactory())
    elif who != "anonymous":
        api_client.force_authenticate(make_staff(*perms))

    listed = api_client.get(LIST_URL)
    created = api_client.post(LIST_URL, {**CAMPAIGN, "name": "Other"}, format="json")
    changed = api_client.patch(detail_url(campaign.pk), {"name": "Renamed"}, format="json")

    assert (listed.status_code, created.status_code) == (read, write)
    assert changed.status_code == (401 if who == "anonymous" else 403)
    assert DunningCampaign.objects.count() == (2 if write == 201 else 1)
    campaign.refresh_from_db()
    assert campaign.name == "Standard"
