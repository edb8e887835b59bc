"""The customer API (/api/v1/portal/): exact shapes, the preview-then-change flow, field errors that
change nothing, and who may call what (anonymous, staff, viewer, owner; session and token)."""

from decimal import Decimal

import pytest
from django.core import mail

from apps.accounts.credentials import user_token_create
from apps.accounts.models import Customer, CustomerMembership
from apps.accounts.tests.factories import UserFactory
from apps.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def test_me_with_a_token(api_client, world):
    _, token = user_token_create(user_id=world.a.user.pk, name="user")
    response = api_client.get("/api/v1/portal/me", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert response.json() == {
        "username": "alpha-labs-owner",
        "email": "owner@alpha-labs.example",
        "customer_id": world.a.customer.pk,
        "role": "owner",
        "language": "en",
        "memberships": [
            {"customer_id": world.a.customer.pk, "customer_name": "Alpha Labs", "role": "owner", "language": ""}
        ],
    }


@pytest.mark.parametrize(
    ("who", "read_status", "write_status"),
    [("anonymous", 401, 401), ("staff", 403, 403), ("viewer", 200, 403), ("owner", 200, 200)],
)
def test_permission_matrix(api_client, world, who, read_status, write_status):
    users = {
        "staff": UserFactory(username="finance", is_staff=True, is_superuser=True),
        "viewer": UserFactory(username="viewer"),
        "owner": world.a.user,
    }
    CustomerMembership.objects.create(customer=world.a.customer, user=users["viewer"], role="viewer")
    if who != "anonymous":
        api_client.force_authenticate(users[who])
    assert api_client.get("/api/v1/portal/invoices").status_code == read_status
    response = api_client.post(f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/cancel", {}, format="json")
    assert response.status_code == write_status
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is (write_status == 200)


def test_invoice_detail_shape(api_client, world):
    api_client.force_authenticate(world.a.user)
    data = api_client.get(f"/api/v1/portal/invoices/{world.a.invoice.pk}").json()
    assert data["number"] == world.a.invoice.number
    assert data["status"] == "open"
    assert data["total"] == {"amount": "49.00", "currency": "USD"}
    assert data["amount_due"] == {"amount": "39.00", "currency": "USD"}
    assert data["credit_note_ids"] == [world.a.credit_note.pk]
    assert [line["amount"] for line in data["lines"]] == [{"amount": "49.00", "currency": "USD"}]


def test_invoice_pdf(api_client, world):
    api_client.force_authenticate(world.a.user)
    response = api_client.get(f"/api/v1/portal/invoices/{world.a.invoice.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content)[:5] == b"%PDF-"


def test_usage_so_far(api_client, world):
    api_client.force_authenticate(world.a.user)
    data = api_client.get(f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/usage").json()
    assert len(data) == 1
    assert (data[0]["code"], data[0]["total"]) == ("api_calls", "6")
    days = {day["day"]: day["value"] for day in data[0]["days"]}
    assert len(days) == 15
    assert (days["2026-03-02"], days["2026-03-05"], days["2026-03-15"], days["2026-03-03"]) == ("3", "1", "2", "0")


def test_upcoming_invoice(api_client, world):
    api_client.force_authenticate(world.a.user)
    data = api_client.get(f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/upcoming-invoice").json()
    assert data["billing_at"] == "2026-04-01T00:00:00Z"
    assert data["total"] == {"amount": "49.06", "currency": "USD"}


def test_upcoming_invoice_after_a_prorated_increase_then_cancel_at_period_end(api_client, world):
    """No renewal, but the waiting proration and March's usage are billed when the subscription ends:
    the upcoming invoice is that final invoice, exactly as the billing run then issues it."""
    from apps.billing.services import bill_due_subscriptions
    from apps.invoices.models import Invoice
    from apps.subscriptions.periods import utc

    api_client.force_authenticate(world.a.user)
    url = f"/api/v1/portal/subscriptions/{world.a.subscription.pk}"
    preview = api_client.post(f"{url}/preview-change", {"quantity": 3}, format="json").json()
    change = {"quantity": 3, "preview_token": preview["preview_token"]}
    assert api_client.post(f"{url}/change", change, format="json").status_code == 200
    assert api_client.post(f"{url}/cancel", {"reason": "Moving on"}, format="json").status_code == 200

    response = api_client.get(f"{url}/upcoming-invoice")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["billing_at"] == "2026-04-01T00:00:00Z"
    # 16 of March's 31 days left: +49.00 × 3 × 16/31 and -49.00 × 16/31; 6 API calls × 0.01.
    assert [(line["kind"], line["amount"]["amount"]) for line in data["lines"]] == [
        ("proration", "75.87"), ("usage", "0.06"), ("proration", "-25.29"),
    ]  # fmt: skip
    assert data["total"] == {"amount": "50.64", "currency": "USD"}
    bill_due_subscriptions(now=utc(2026, 4, 1, 1), test_clock=world.a.customer.test_clock)
    final = Invoice.objects.get(subscription=world.a.subscription, billing_reason="subscription_update")
    assert final.total.amount == Decimal(data["total"]["amount"])
    assert Subscription.objects.get(pk=world.a.subscription.pk).status == "canceled"


def test_preview_then_change_with_its_token(api_client, world):
    api_client.force_authenticate(world.a.user)
    url = f"/api/v1/portal/subscriptions/{world.a.subscription.pk}"
    preview = api_client.post(f"{url}/preview-change", {"plan": world.pro.pk}, format="json").json()
    assert preview["total"] == {"amount": "25.81", "currency": "USD"}
    assert [line["amount"]["amount"] for line in preview["lines"]] == ["-25.29", "51.10"]
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk
    # The token is for this change only: another quantity with it is refused and changes nothing.
    refused = api_client.post(
        f"{url}/change", {"plan": world.pro.pk, "quantity": 2, "preview_token": preview["preview_token"]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"preview_token": ["Preview the change again."]}
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk
    response = api_client.post(
        f"{url}/change", {"plan": world.pro.pk, "preview_token": preview["preview_token"]}, format="json",
        HTTP_IDEMPOTENCY_KEY="change-1",
    )  # fmt: skip
    assert response.status_code == 200
    assert (response.json()["plan_id"], response.json()["plan_name"]) == (world.pro.pk, "Pro")
    replay = api_client.post(
        f"{url}/change", {"plan": world.pro.pk, "preview_token": preview["preview_token"]}, format="json",
        HTTP_IDEMPOTENCY_KEY="change-1",
    )  # fmt: skip
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"


def test_change_to_a_plan_not_allowed_is_refused(api_client, world):
    from apps.catalog.tests.factories import PlanFactory

    other = PlanFactory(name="Enterprise")
    api_client.force_authenticate(world.a.user)
    response = api_client.post(
        f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/change", {"plan": other.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"plan": ["This plan is not available."]}
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk


def test_billing_details_bad_tax_id_is_a_field_error_and_changes_nothing(api_client, world):
    api_client.force_authenticate(world.a.user)
    response = api_client.patch("/api/v1/portal/billing-details", {"country": "DE", "tax_id": "DE123"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == ["tax_id"]
    customer = Customer.objects.get(pk=world.a.customer.pk)
    assert (customer.country.code, customer.tax_id) == ("GB", "")

    response = api_client.patch(
        "/api/v1/portal/billing-details",
        {
            "country": "DE",
            "tax_id": "DE136695976",
            "billing_emails": ["ap@alpha.example"],
            "preferred_language": "zh-hans",
        },
        format="json",
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["country"], data["tax_id"], data["tax_id_status"]) == ("DE", "DE136695976", "valid")
    assert (data["billing_emails"], data["preferred_language"]) == (["ap@alpha.example"], "zh-hans")


def test_billing_details_cannot_change_currency_or_terms(api_client, world):
    api_client.force_authenticate(world.a.user)
    response = api_client.patch(
        "/api/v1/portal/billing-details", {"currency": "EUR", "payment_terms_days": 90}, format="json"
    )
    assert response.status_code == 200  # unknown fields are ignored by the input shape
    customer = Customer.objects.get(pk=world.a.customer.pk)
    assert (customer.currency, customer.payment_terms_days) == ("USD", None)


def test_cancel_reason_required_when_configured(api_client, world):
    from apps.portal.selectors import portal_configuration

    configuration = portal_configuration()
    configuration.cancellation_reason_required = True
    configuration.save()
    api_client.force_authenticate(world.a.user)
    url = f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/cancel"
    response = api_client.post(url, {}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"reason": ["This field is required."]}
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is False


def test_cancel_immediately_when_configured_credits_unused_time(api_client, world):
    from apps.invoices.selectors import customer_balance
    from apps.portal.selectors import portal_configuration

    configuration = portal_configuration()
    configuration.cancellation_mode = "immediately"
    configuration.save()
    api_client.force_authenticate(world.a.user)
    response = api_client.post(
        f"/api/v1/portal/subscriptions/{world.a.subscription.pk}/cancel", {"reason": "No longer needed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    # 49.00 × 16/31 = 25.29 of unused time, less the 6 API calls (0.06) used until the cancellation.
    assert customer_balance(customer=world.a.customer).amount == Decimal("25.23")


def test_pause_and_resume(api_client, world):
    api_client.force_authenticate(world.a.user)
    url = f"/api/v1/portal/subscriptions/{world.a.subscription.pk}"
    assert api_client.post(f"{url}/pause", format="json").json()["status"] == "paused"
    assert api_client.post(f"{url}/resume", format="json").json()["status"] == "active"


def test_language_choice(api_client, world):
    api_client.force_authenticate(world.a.user)
    response = api_client.post("/api/v1/portal/me/language", {"language": "zh-hans"}, format="json")
    assert response.json()["language"] == "zh-hans"
    bad = api_client.post("/api/v1/portal/me/language", {"language": "fr"}, format="json")
    assert bad.status_code == 400
    assert CustomerMembership.objects.get(user=world.a.user).language == "zh-hans"
    assert mail.outbox == []
