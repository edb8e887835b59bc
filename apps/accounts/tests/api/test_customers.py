import pytest
from django.urls import reverse

from apps.accounts.credentials import user_token_create
from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:customer-list")


def detail_url(customer_id: int) -> str:
    return reverse("api:customer-detail", args=[customer_id])


VALID_INPUT = {
    "external_id": "crm-42",
    "name": "Globex Corporation",
    "email": "ap@globex.example",
    "address_line1": "1 Globex Way",
    "city": "Springfield",
    "postal_code": "49007",
    "state": "OR",
    "country": "US",
    "currency": "USD",
    "tax_id": "12-3456789",
    "payment_terms_days": 30,
}


def test_create_customer_returns_the_customer(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, VALID_INPUT)

    assert response.status_code == 201, response.data
    customer = Customer.objects.get()
    body = response.json()
    assert body == {
        "id": customer.pk,
        "external_id": "crm-42",
        "name": "Globex Corporation",
        "email": "ap@globex.example",
        "address_line1": "1 Globex Way",
        "address_line2": "",
        "city": "Springfield",
        "postal_code": "49007",
        "state": "OR",
        "country": "US",
        "currency": "USD",
        "tax_id": "12-3456789",
        "tax_id_type": "us_ein",
        "tax_id_status": "valid",
        "tax_id_checked_at": body["tax_id_checked_at"],
        "tax_exempt": False,
        "payment_terms_days": 30,
        "invoice_grouping": "",
        "collection_method": "send_invoice",
        "time_zone": "UTC",
        "test_clock": None,
        "billing_contacts": [],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert customer.currency == "USD" and customer.country.code == "US"
    assert body["tax_id_checked_at"] is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"currency": "BTC"}, "currency"),
        ({"country": "ZZ"}, "country"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"tax_id": "US-123"}, "tax_id"),
        ({"tax_id_type": "de_stnr"}, "tax_id_type"),
        ({"tax_id_type": "eu_vat"}, "tax_id_type"),
        ({"time_zone": "Shanghai"}, "time_zone"),
        ({"time_zone": "UTC+8"}, "time_zone"),
    ],
)
def test_create_customer_with_bad_input_is_refused_and_writes_nothing(api_client, superuser, changes, field):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**VALID_INPUT, **changes})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body) == {"code", "message", "fields"}
    assert field in body["fields"]
    assert Customer.objects.count() == 0


EU_INPUT = {**VALID_INPUT, "country": "DE", "currency": "EUR", "state": "", "postal_code": "20457"}


def test_create_customer_with_an_invalid_vat_number_is_a_field_error_and_writes_nothing(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**EU_INPUT, "tax_id": "DE812345678"})

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "The tax ID is not valid.",
        "fields": {
            "tax_id": ["DE812345678 is not a VAT number of Germany: its check digits do not match (a typing error?)."]
        },
    }
    assert Customer.objects.count() == 0


def test_create_customer_stores_the_vat_number_normalized_and_valid(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**EU_INPUT, "country": "GR", "tax_id": "gr 094 259 216"})

    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["tax_id"], body["tax_id_type"], body["tax_id_status"]) == ("EL094259216", "eu_vat", "valid")
    customer = Customer.objects.get()
    assert (customer.tax_id, customer.tax_id_status) == ("EL094259216", "valid")


def test_create_customer_with_a_tax_id_of_the_kind_other_keeps_it_unverified(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, {**VALID_INPUT, "tax_id": "EIN 94-3141592", "tax_id_type": "other"})

    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["tax_id"], body["tax_id_type"], body["tax_id_status"]) == ("EIN 94-3141592", "other", "unverified")


def test_partial_update_with_an_invalid_vat_number_is_a_field_error_and_writes_nothing(api_client, superuser):
    customer = CustomerFactory(name="Nordwind", country="DE", currency="EUR", tax_id="DE812345673")
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"tax_id": "DE 812 345 678", "name": "Changed"})

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "tax_id": ["DE 812 345 678 is not a VAT number of Germany: its check digits do not match (a typing error?)."]
    }
    customer.refresh_from_db()
    assert (customer.name, customer.tax_id, customer.tax_id_status) == ("Nordwind", "DE812345673", "valid")


def test_partial_update_moving_the_customer_checks_its_vat_number_against_the_new_country(api_client, superuser):
    customer = CustomerFactory(country="DE", currency="EUR", tax_id="DE812345673")
    api_client.force_authenticate(superuser)

    refused = api_client.patch(detail_url(customer.pk), {"country": "FR"})
    moved = api_client.patch(detail_url(customer.pk), {"country": "FR", "tax_id": "FR11123456782"})

    assert refused.status_code == 400 and list(refused.json()["fields"]) == ["tax_id"]
    assert moved.status_code == 200, moved.data
    assert (moved.json()["country"], moved.json()["tax_id"]) == ("FR", "FR11123456782")


def test_create_customer_with_a_taken_external_id_is_refused(api_client, superuser):
    CustomerFactory(external_id="crm-42")
    api_client.force_authenticate(superuser)

    response = api_client.post(LIST_URL, VALID_INPUT)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert Customer.objects.count() == 1


def test_list_customers_is_paginated(api_client, superuser):
    customers = [CustomerFactory(name=f"Customer {index:02d}") for index in range(3)]
    api_client.force_authenticate(superuser)

    response = api_client.get(LIST_URL, {"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["previous"] is None
    assert body["next"].endswith("page=2&page_size=2")
    assert [row["id"] for row in body["results"]] == [customers[0].pk, customers[1].pk]


def test_list_customers_filters_searches_and_orders(api_client, superuser):
    alpha = CustomerFactory(name="Alpha", country="DE", currency="EUR", external_id="a-1", email="x@alpha.example")
    beta = CustomerFactory(name="Beta", country="GB", currency="USD", external_id="b-1")
    gamma = CustomerFactory(name="Gamma", country="DE", currency="USD", external_id="g-1", tax_id="DE123456789")
    api_client.force_authenticate(superuser)

    def ids(params):
        response = api_client.get(LIST_URL, params)
        assert response.status_code == 200, response.data
        return [row["id"] for row in response.json()["results"]]

    assert ids({"country": "DE"}) == [alpha.pk, gamma.pk]
    assert ids({"currency": "USD"}) == [beta.pk, gamma.pk]
    assert ids({"country": "DE", "currency": "USD"}) == [gamma.pk]
    assert ids({"external_id": "b-1"}) == [beta.pk]
    assert ids({"search": "alpha.example"}) == [alpha.pk]
    assert ids({"search": "g-1"}) == [gamma.pk]
    assert ids({"ordering": "-name"}) == [gamma.pk, beta.pk, alpha.pk]
    assert ids({"tax_id_status": "invalid"}) == [gamma.pk]  # recorded before tax IDs were checked


def test_list_customers_runs_a_bounded_number_of_queries(api_client, superuser, django_assert_max_num_queries):
    CustomerFactory.create_batch(20)
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(4):
        response = api_client.get(LIST_URL)

    assert len(response.json()["results"]) == 20


def test_retrieve_customer(api_client, superuser):
    customer = CustomerFactory(name="Initech", currency="EUR")
    api_client.force_authenticate(superuser)

    response = api_client.get(detail_url(customer.pk))

    assert response.status_code == 200
    assert response.json()["name"] == "Initech"
    assert response.json()["currency"] == "EUR"


def test_retrieve_unknown_customer_is_404_with_the_error_shape(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.get(detail_url(999999))

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_partial_update_changes_only_the_fields_sent(api_client, superuser):
    customer = CustomerFactory(name="Old name", email="old@example.com", city="London")
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"name": "New name", "payment_terms_days": 7})

    assert response.status_code == 200, response.data
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.city, customer.payment_terms_days) == (
        "New name",
        "old@example.com",
        "London",
        7,
    )
    assert response.json()["name"] == "New name"


def test_partial_update_refuses_a_currency_change(api_client, superuser):
    customer = CustomerFactory(name="Keep me", currency="USD")
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"currency": "EUR", "name": "Changed"})

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "The billing currency cannot be changed.",
        "fields": {"currency": ["The billing currency cannot be changed once the customer exists."]},
    }
    customer.refresh_from_db()
    assert (customer.currency, customer.name) == ("USD", "Keep me")


def test_partial_update_with_bad_input_writes_nothing(api_client, superuser):
    customer = CustomerFactory(email="ok@example.com")
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"email": "nope", "name": "Changed"})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["email"]
    customer.refresh_from_db()
    assert customer.email == "ok@example.com"


def test_put_is_not_allowed(api_client, superuser):
    customer = CustomerFactory()
    api_client.force_authenticate(superuser)

    response = api_client.put(detail_url(customer.pk), VALID_INPUT)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "perm", "expected"),
    [
        ("list", None, 401),
        ("list", "", 403),
        ("list", "accounts.view_customer", 200),
        ("retrieve", "", 403),
        ("retrieve", "accounts.view_customer", 200),
        ("create", None, 401),
        ("create", "accounts.view_customer", 403),
        ("create", "accounts.add_customer", 201),
        ("update", None, 401),
        ("update", "accounts.view_customer", 403),
        ("update", "accounts.change_customer", 200),
    ],
)
def test_customer_permission_matrix(api_client, make_staff, method, perm, expected):
    customer = CustomerFactory()
    if perm is not None:
        api_client.force_authenticate(make_staff(*([perm] if perm else [])))

    if method == "list":
        response = api_client.get(LIST_URL)
    elif method == "retrieve":
        response = api_client.get(detail_url(customer.pk))
    elif method == "create":
        response = api_client.post(LIST_URL, VALID_INPUT)
    else:
        response = api_client.patch(detail_url(customer.pk), {"name": "Renamed"})

    assert response.status_code == expected, response.data
    if expected >= 400:
        assert set(response.json()) == {"code", "message", "fields"}


def test_token_authentication_works_for_staff(api_client, make_staff):
    user = make_staff("accounts.view_customer")
    _, token = user_token_create(user_id=user.pk, name="customers")
    CustomerFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api_client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_non_staff_user_with_a_token_is_forbidden(api_client):
    user = UserFactory(is_staff=False, is_superuser=True)
    _, token = user_token_create(user_id=user.pk, name="customers")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = api_client.get(LIST_URL)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_bad_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token nope")

    response = api_client.get(LIST_URL)

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "Invalid token.", "fields": {}}


def test_session_authentication_works(api_client, make_staff):
    user = make_staff("accounts.view_customer")
    api_client.force_login(user)

    assert api_client.get(LIST_URL).status_code == 200


def test_a_customer_time_zone_is_set_and_changed_by_iana_name_and_a_bad_one_writes_nothing(api_client, superuser):
    api_client.force_authenticate(superuser)

    created = api_client.post(LIST_URL, {**VALID_INPUT, "time_zone": "Asia/Shanghai"})
    assert created.status_code == 201, created.data
    customer = Customer.objects.get()
    assert (created.json()["time_zone"], customer.time_zone) == ("Asia/Shanghai", "Asia/Shanghai")

    refused = api_client.patch(detail_url(customer.pk), {"time_zone": "Mars/Olympus", "name": "Changed"})
    assert refused.status_code == 400
    assert refused.json()["fields"] == {
        "time_zone": ["'Mars/Olympus' is not a time zone name; use an IANA name such as Asia/Shanghai or Europe/Paris."]
    }
    customer.refresh_from_db()
    assert (customer.time_zone, customer.name) == ("Asia/Shanghai", "Globex Corporation")

    changed = api_client.patch(detail_url(customer.pk), {"time_zone": "Europe/Paris"})
    assert changed.status_code == 200, changed.data
    customer.refresh_from_db()
    assert customer.time_zone == "Europe/Paris"
