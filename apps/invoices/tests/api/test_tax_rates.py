"""Tax rates through the API: list and filter, create, change and deactivate, clear field errors."""

from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice, TaxRate
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:tax-rate-list")


def detail_url(rate_id: int) -> str:
    return reverse("api:tax-rate-detail", args=[rate_id])


def test_create_list_and_filter(api_client, superuser):
    api_client.force_authenticate(superuser)

    created = api_client.post(LIST_URL, {"name": "VAT", "percentage": "21", "country": "NL"}, format="json")
    api_client.post(
        LIST_URL, {"name": "Sales tax", "percentage": "7.25", "country": "US", "region": "CA"}, format="json"
    )

    assert created.status_code == 201, created.data
    body = created.json()
    assert {k: body[k] for k in ("name", "percentage", "country", "region", "inclusive", "is_active")} == {
        "name": "VAT", "percentage": "21", "country": "NL", "region": "", "inclusive": False, "is_active": True,
    }  # fmt: skip
    assert [r["country"] for r in api_client.get(LIST_URL).json()["results"]] == ["NL", "US"]
    assert [r["region"] for r in api_client.get(LIST_URL, {"country": "US"}).json()["results"]] == ["CA"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "VAT", "percentage": "120", "country": "NL"}, "percentage"),
        ({"name": "VAT", "percentage": "-1", "country": "NL"}, "percentage"),
        ({"name": "VAT", "percentage": "20", "country": "XX"}, "country"),
        ({"percentage": "20", "country": "NL"}, "name"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(api_client, superuser, payload, field):
    api_client.force_authenticate(superuser)
    response = api_client.post(LIST_URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not TaxRate.objects.exists()


def test_a_changed_rate_applies_to_new_invoices_and_issued_ones_keep_theirs(api_client, superuser):
    rate = TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    customer = CustomerFactory(currency="GBP", country="GB")
    plan = PlanFactory(prices=[Money("100", "GBP")])
    before = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    api_client.force_authenticate(superuser)

    changed = api_client.patch(detail_url(rate.pk), {"percentage": "17.5"}, format="json")

    assert changed.status_code == 200, changed.data
    assert changed.json()["percentage"] == "17.5"
    subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 2))
    first, second = Invoice.objects.filter(customer=customer).order_by("id")
    assert first.subscription_id == before.pk
    assert (first.tax_total, second.tax_total) == (Money("20.00", "GBP"), Money("17.50", "GBP"))

    off = api_client.patch(detail_url(rate.pk), {"is_active": False}, format="json")
    assert off.json()["is_active"] is False
    subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 3))
    assert Invoice.objects.filter(customer=customer).order_by("id").last().tax_total == Money("0.00", "GBP")


def test_a_bad_change_is_refused_and_changes_nothing(api_client, superuser):
    rate = TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    api_client.force_authenticate(superuser)
    response = api_client.patch(detail_url(rate.pk), {"percentage": "200", "name": "Changed"}, format="json")
    assert response.status_code == 400 and "percentage" in response.json()["fields"]
    rate.refresh_from_db()
    assert (rate.name, rate.percentage) == ("VAT", Decimal("20"))
    assert api_client.patch(detail_url(rate.pk + 100), {"name": "x"}, format="json").status_code == 404


def test_staff_need_the_tax_rate_permissions(api_client, make_staff):
    api_client.force_authenticate(make_staff("invoices.view_taxrate"))
    assert api_client.get(LIST_URL).status_code == 200
    refused = api_client.post(LIST_URL, {"name": "VAT", "percentage": "20", "country": "GB"}, format="json")
    assert refused.status_code == 403
    assert not TaxRate.objects.exists()


def test_what_a_rate_is_about_cannot_change(api_client, superuser):
    rate = TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    api_client.force_authenticate(superuser)

    refused = api_client.patch(detail_url(rate.pk), {"country": "FR", "inclusive": True, "name": "TVA"}, format="json")
    same = api_client.patch(detail_url(rate.pk), {"country": "GB", "region": "", "name": "UK VAT"}, format="json")

    assert refused.status_code == 400
    assert sorted(refused.json()["fields"]) == ["country", "inclusive"]
    assert same.status_code == 200, same.data
    rate.refresh_from_db()
    assert (str(rate.country), rate.inclusive, rate.name) == ("GB", False, "UK VAT")
