import pytest
from django.urls import reverse

from apps.accounts.models import Customer, CustomerMembership
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.core.tests.test_admin import change_form_data
from apps.invoices.tests.factories import make_open_invoice
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:accounts_customer_changelist"


def change_url(customer: Customer) -> str:
    return reverse("admin:accounts_customer_change", args=[customer.pk])


def test_changelist_lists_customers(client, superuser):
    customer = CustomerFactory(name="Globex", external_id="cus_globex", country="DE", currency="EUR")
    client.force_login(superuser)

    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Globex" in content and "cus_globex" in content and customer.email in content


@pytest.mark.parametrize("term", ["Globex", "ap@globex.example", "cus_globex", "DE812345673"])
def test_changelist_search(client, superuser, term):
    customer = CustomerFactory(
        name="Globex", email="ap@globex.example", external_id="cus_globex", country="DE", tax_id="DE812345673"
    )
    CustomerFactory(name="Initech")
    client.force_login(superuser)

    response = client.get(reverse(CHANGELIST), {"q": term})

    assert list(response.context["cl"].result_list) == [customer]


def test_changelist_filters(client, superuser):
    german = CustomerFactory(country="DE", currency="EUR")
    CustomerFactory(country="GB", currency="USD")
    client.force_login(superuser)

    for query in ["country__exact=DE", "currency__exact=EUR"]:
        response = client.get(f"{reverse(CHANGELIST)}?{query}")
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [german]


def test_changelist_filters_by_tax_id_status(client, superuser):
    CustomerFactory(country="DE", tax_id="DE812345673")
    legacy = CustomerFactory(country="DE", tax_id="DE123456789")  # recorded before the checks
    CustomerFactory()
    client.force_login(superuser)

    response = client.get(reverse(CHANGELIST), {"tax_id_status__exact": "invalid"})

    assert list(response.context["cl"].result_list) == [legacy]


def test_changelist_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    CustomerFactory.create_batch(20)
    client.force_login(superuser)
    client.get(reverse(CHANGELIST))

    with django_assert_max_num_queries(10):
        response = client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 20


def test_change_page_shows_memberships_subscriptions_and_invoices(client, superuser):
    invoice = make_open_invoice()
    customer = invoice.customer
    CustomerMembership.objects.create(customer=customer, user=UserFactory(username="alice"))
    client.force_login(superuser)

    response = client.get(change_url(customer))

    assert response.status_code == 200
    content = response.content.decode()
    assert "alice" in content
    assert invoice.number in content
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in content
    assert reverse("admin:subscriptions_subscription_change", args=[invoice.subscription_id]) in content
    assert "1 subscription(s)" in content and "1 invoice(s)" in content


def test_currency_is_read_only_once_the_customer_exists(client, superuser):
    customer = CustomerFactory(currency="USD")
    make_subscription(customer=customer)
    client.force_login(superuser)
    form_page = client.get(change_url(customer))
    assert "currency" not in form_page.context["adminform"].form.fields

    response = client.post(change_url(customer), change_form_data(form_page, name="Renamed Ltd.", currency="EUR"))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.currency) == ("Renamed Ltd.", "USD")


def test_add_customer_through_the_service(client, superuser):
    client.force_login(superuser)
    form_page = client.get(reverse("admin:accounts_customer_add"))
    assert "currency" in form_page.context["adminform"].form.fields

    response = client.post(
        reverse("admin:accounts_customer_add"),
        change_form_data(
            form_page, name="Umbrella", email="ap@umbrella.example", country="FR", currency="EUR", external_id="u-1"
        ),
    )

    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.name, customer.country.code, customer.currency, customer.external_id) == (
        "Umbrella",
        "FR",
        "EUR",
        "u-1",
    )


def test_duplicate_external_id_is_a_form_error(client, superuser):
    CustomerFactory(external_id="cus_taken")
    client.force_login(superuser)
    form_page = client.get(reverse("admin:accounts_customer_add"))

    response = client.post(
        reverse("admin:accounts_customer_add"),
        change_form_data(
            form_page, name="Copy", email="copy@example.com", country="FR", currency="EUR", external_id="cus_taken"
        ),
    )

    assert response.status_code == 200
    assert "A customer with this external ID already exists." in response.content.decode()
    assert Customer.objects.count() == 1


def test_unsupported_currency_is_a_form_error(client, superuser):
    client.force_login(superuser)
    form_page = client.get(reverse("admin:accounts_customer_add"))

    response = client.post(
        reverse("admin:accounts_customer_add"),
        change_form_data(form_page, name="Zed", email="zed@example.com", country="FR", currency="XYZ"),
    )

    assert response.status_code == 200
    assert "currency" in response.context["adminform"].form.errors
    assert not Customer.objects.exists()


def test_viewer_cannot_change_a_customer(client, make_staff):
    customer = CustomerFactory(name="Before")
    client.force_login(make_staff("accounts.view_customer"))

    assert client.get(change_url(customer)).status_code == 200
    assert client.post(change_url(customer), {"name": "After"}).status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Before"


def _add(client, **fields):
    form_page = client.get(reverse("admin:accounts_customer_add"))
    data = {"name": "Nordwind", "email": "ap@nordwind.example", "country": "DE", "currency": "EUR", **fields}
    return client.post(reverse("admin:accounts_customer_add"), change_form_data(form_page, **data))


def test_add_customer_with_an_invalid_vat_number_is_an_error_on_the_tax_id_field(client, superuser):
    client.force_login(superuser)

    response = _add(client, tax_id="DE812345678")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "tax_id": ["DE812345678 is not a VAT number of Germany: its check digits do not match (a typing error?)."]
    }
    assert not Customer.objects.exists()


def test_add_customer_with_a_kind_of_tax_id_that_does_not_fit_the_country_is_an_error_on_the_kind(client, superuser):
    client.force_login(superuser)

    response = _add(client, tax_id="94-3141592", tax_id_type="us_ein")

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["tax_id_type"]
    assert not Customer.objects.exists()


def test_add_customer_stores_the_vat_number_normalized_and_shows_it_valid(client, superuser):
    client.force_login(superuser)

    response = _add(client, tax_id="de 812 345 673")

    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.tax_id, customer.tax_id_type, customer.tax_id_status) == ("DE812345673", "eu_vat", "valid")
    page = client.get(change_url(customer)).content.decode()
    assert "Valid (format and check digits)" in page


def test_changing_to_an_invalid_vat_number_is_a_form_error_and_changes_nothing(client, superuser):
    customer = CustomerFactory(name="Nordwind", country="DE", currency="EUR", tax_id="DE812345673")
    client.force_login(superuser)
    form_page = client.get(change_url(customer))
    assert "tax_id_status" not in form_page.context["adminform"].form.fields  # read-only

    response = client.post(change_url(customer), change_form_data(form_page, name="Renamed", tax_id="FR11123456782"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "tax_id": [
            "FR11123456782 is not a VAT number of Germany, where the customer is: it should start with DE (or give "
            "no prefix)."
        ]
    }
    customer.refresh_from_db()
    assert (customer.name, customer.tax_id, customer.tax_id_status) == ("Nordwind", "DE812345673", "valid")


def test_the_time_zone_is_an_iana_name_and_a_bad_one_is_a_form_error(client, superuser):
    customer = CustomerFactory(name="Keep Ltd.")
    client.force_login(superuser)
    form_page = client.get(change_url(customer))

    refused = client.post(change_url(customer), change_form_data(form_page, name="Changed", time_zone="Shanghai"))

    assert refused.status_code == 200
    assert "is not a time zone name; use an IANA name such as Asia/Shanghai or Europe/Paris." in (
        refused.content.decode().replace("&#x27;", "'")
    )
    customer.refresh_from_db()
    assert (customer.name, customer.time_zone) == ("Keep Ltd.", "UTC")

    saved = client.post(change_url(customer), change_form_data(form_page, time_zone="Asia/Shanghai"))

    assert saved.status_code == 302
    customer.refresh_from_db()
    assert customer.time_zone == "Asia/Shanghai"
