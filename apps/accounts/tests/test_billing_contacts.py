"""Billing contacts: who receives a customer's bills by email besides the customer's own email."""

import pytest
from django.urls import reverse

from apps.accounts.models import BillingContact
from apps.accounts.selectors import customer_invoice_recipients
from apps.accounts.services import customer_billing_contacts_replace
from apps.accounts.tests.factories import CustomerFactory
from apps.core.errors import ValidationFailed
from apps.core.tests.test_admin import change_form_data

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:customer-list")


def detail_url(customer_id: int) -> str:
    return reverse("api:customer-detail", args=[customer_id])


def _contacts(customer) -> list[tuple[str, str, bool]]:
    return list(customer.billing_contacts.order_by("id").values_list("name", "email", "receives_invoices"))


# --- Service and selector -----------------------------------------------------------------------------


def test_recipients_are_the_customer_then_its_contacts_that_receive_invoices_each_once():
    customer = CustomerFactory(email="billing@globex.example")
    customer_billing_contacts_replace(
        customer=customer,
        contacts=[
            {"name": "AP", "email": "ap@globex.example"},
            {"name": "Old CFO", "email": "cfo@globex.example", "receives_invoices": False},
            {"name": "Same as the customer", "email": "BILLING@globex.example"},
            {"name": "Controller", "email": "controller@globex.example"},
        ],
    )

    assert customer_invoice_recipients(customer) == [
        "billing@globex.example", "ap@globex.example", "controller@globex.example",
    ]  # fmt: skip


def test_replace_keeps_matching_rows_adds_new_ones_and_removes_the_rest():
    customer = CustomerFactory()
    [ap, cfo] = customer_billing_contacts_replace(
        customer=customer, contacts=[{"name": "AP", "email": "ap@x.example"}, {"email": "cfo@x.example"}]
    )

    customer_billing_contacts_replace(
        customer=customer,
        contacts=[
            {"name": "Payables", "email": "AP@x.example", "receives_invoices": False},
            {"email": "new@x.example"},
        ],
    )

    assert _contacts(customer) == [("Payables", "AP@x.example", False), ("", "new@x.example", True)]
    assert customer.billing_contacts.order_by("id").first().pk == ap.pk  # the same row, updated
    assert not BillingContact.objects.filter(pk=cfo.pk).exists()


def test_replace_refuses_a_list_with_errors_field_by_field_and_writes_nothing():
    customer = CustomerFactory()
    customer_billing_contacts_replace(customer=customer, contacts=[{"email": "keep@x.example"}])

    with pytest.raises(ValidationFailed) as refused:
        customer_billing_contacts_replace(
            customer=customer,
            contacts=[{"email": "a@x.example"}, {"email": "A@x.example"}, {"email": ""}, {"email": "not-an-email"}],
        )

    assert refused.value.fields == {
        "billing_contacts.1.email": ["Already listed (contact 0)."],
        "billing_contacts.2.email": ["This field is required."],
    }
    assert _contacts(customer) == [("", "keep@x.example", True)]


def test_replace_refuses_an_invalid_email_by_its_index():
    customer = CustomerFactory()
    with pytest.raises(ValidationFailed) as refused:
        customer_billing_contacts_replace(customer=customer, contacts=[{"email": "ok@x.example"}, {"email": "nope"}])
    assert list(refused.value.fields) == ["billing_contacts.1.email"]
    assert _contacts(customer) == []


# --- API ------------------------------------------------------------------------------------------------


def test_create_a_customer_with_billing_contacts(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.post(
        LIST_URL,
        {
            "name": "Globex", "email": "billing@globex.example", "country": "US", "currency": "USD",
            "billing_contacts": [{"name": "AP", "email": "ap@globex.example"},
                                 {"email": "cfo@globex.example", "receives_invoices": False}],
        },
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    contacts = response.json()["billing_contacts"]
    assert [{key: contact[key] for key in ("name", "email", "receives_invoices")} for contact in contacts] == [
        {"name": "AP", "email": "ap@globex.example", "receives_invoices": True},
        {"name": "", "email": "cfo@globex.example", "receives_invoices": False},
    ]


def test_update_replaces_the_billing_contacts_and_leaves_them_alone_when_not_sent(api_client, superuser):
    customer = CustomerFactory()
    customer_billing_contacts_replace(customer=customer, contacts=[{"email": "old@x.example"}])
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"name": "Renamed"})
    assert [contact["email"] for contact in response.json()["billing_contacts"]] == ["old@x.example"]

    response = api_client.patch(detail_url(customer.pk), {"billing_contacts": [{"email": "new@x.example"}]})
    assert response.status_code == 200
    assert [contact["email"] for contact in response.json()["billing_contacts"]] == ["new@x.example"]

    response = api_client.patch(detail_url(customer.pk), {"billing_contacts": []})
    assert response.json()["billing_contacts"] == []


@pytest.mark.parametrize(
    ("contacts", "field"),
    [
        ([{"email": "ok@x.example"}, {"email": "not-an-email"}], "billing_contacts.1.email"),
        ([{"name": "No email"}], "billing_contacts.0.email"),
        ([{"email": "a@x.example"}, {"email": "A@X.example"}], "billing_contacts.1.email"),
    ],
)
def test_bad_billing_contacts_are_refused_field_by_field(api_client, superuser, contacts, field):
    customer = CustomerFactory(name="Unchanged")
    api_client.force_authenticate(superuser)

    response = api_client.patch(detail_url(customer.pk), {"name": "Changed", "billing_contacts": contacts})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == [field]
    customer.refresh_from_db()
    assert customer.name == "Unchanged" and _contacts(customer) == []


def test_customer_list_loads_contacts_in_one_query(api_client, superuser, django_assert_max_num_queries):
    for customer in CustomerFactory.create_batch(10):
        customer_billing_contacts_replace(customer=customer, contacts=[{"email": f"ap{customer.pk}@x.example"}])
    api_client.force_authenticate(superuser)

    with django_assert_max_num_queries(5):
        response = api_client.get(LIST_URL)

    assert all(len(row["billing_contacts"]) == 1 for row in response.json()["results"])


# --- Admin -------------------------------------------------------------------------------------------


def test_admin_edits_billing_contacts_inline(client, superuser):
    customer = CustomerFactory()
    client.force_login(superuser)
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    page = client.get(url)
    data = change_form_data(page)
    data.update(
        {
            "billing_contacts-TOTAL_FORMS": "1",
            "billing_contacts-0-name": "Accounts payable",
            "billing_contacts-0-email": "ap@customer.example",
            "billing_contacts-0-receives_invoices": "on",
        }
    )

    response = client.post(url, data)

    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert _contacts(customer) == [("Accounts payable", "ap@customer.example", True)]
    assert customer_invoice_recipients(customer) == [customer.email, "ap@customer.example"]
