import pytest

from apps.accounts.constants import TaxIdStatus, TaxIdType
from apps.accounts.models import Customer
from apps.accounts.services import customer_create, customer_membership_add, customer_update
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.core import clock
from apps.core.errors import ValidationFailed
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

VALID = {"name": "Globex", "email": "ap@globex.example", "country": "US", "currency": "USD"}


def test_customer_create():
    customer = customer_create(**VALID, external_id="globex-1", tax_id="12-3456789")
    assert (customer.name, customer.currency, customer.country.code) == ("Globex", "USD", "US")
    assert (customer.tax_id, customer.tax_id_type, customer.tax_id_status) == ("12-3456789", "us_ein", "valid")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"country": "XX"}, "country"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_customer_input_is_refused_per_field_and_nothing_is_written(override, field):
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**{**VALID, **override})
    assert field in excinfo.value.fields
    assert Customer.objects.count() == 0


def test_unknown_currency_message_is_clear():
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**{**VALID, "currency": "XYZ"})
    assert excinfo.value.fields["currency"] == ["Value 'XYZ' is not a valid choice."]


def test_external_id_is_unique_when_set():
    customer_create(**VALID, external_id="acme")
    customer_create(**VALID)  # empty external ids do not clash
    customer_create(**VALID)
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**VALID, external_id="acme")
    assert excinfo.value.fields == {"external_id": ["A customer with this external ID already exists."]}
    assert Customer.objects.count() == 3


def test_billing_currency_cannot_change():
    customer = customer_create(**VALID)
    with pytest.raises(ValidationFailed) as excinfo:
        customer_update(customer_id=customer.pk, currency="EUR")
    assert "currency" in excinfo.value.fields
    customer.refresh_from_db()
    assert customer.currency == "USD"
    assert customer_update(customer_id=customer.pk, name="Globex Corp", currency="USD").name == "Globex Corp"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"country": "US", "address_line1": "400 Pine St", "city": "Seattle", "state": "WA", "postal_code": "98101"},
            ["400 Pine St", "Seattle, WA 98101", "United States of America"],
        ),
        (
            {"country": "DE", "address_line1": "Speicherstraße 12", "city": "Hamburg", "postal_code": "20457"},
            ["Speicherstraße 12", "20457 Hamburg", "Germany"],
        ),
        (
            {"country": "GB", "address_line1": "1 High St", "city": "London", "postal_code": "EC1A 1BB"},
            ["1 High St", "London", "EC1A 1BB", "United Kingdom"],
        ),
        ({"country": "FR"}, ["France"]),
    ],
)
def test_address_lines_follow_the_country_convention(fields, expected):
    assert customer_create(**{**VALID, **fields}).address_lines == expected


def test_customer_membership_add_is_idempotent_and_a_user_may_join_several_customers():
    user = UserFactory()
    first, second = customer_create(**VALID), customer_create(**VALID)
    customer_membership_add(customer=first, user=user, role="viewer")
    customer_membership_add(customer=first, user=user, role="owner")
    customer_membership_add(customer=second, user=user)
    assert sorted(user.memberships.values_list("customer_id", "role")) == [(first.pk, "owner"), (second.pk, "billing")]


# --- tax IDs -------------------------------------------------------------------------------------

EU = {"name": "Nordwind", "email": "ap@nordwind.example", "country": "DE", "currency": "EUR"}


def _tax_id_fields(customer: Customer) -> tuple:
    customer.refresh_from_db()
    return customer.tax_id, customer.tax_id_type, customer.tax_id_status, customer.tax_id_checked_at


def test_a_vat_number_is_stored_normalized_with_its_kind_status_and_check_time():
    with clock.frozen_at(utc(2026, 5, 1, 9)):
        customer = customer_create(**EU, tax_id="de 812 345 673")

    assert _tax_id_fields(customer) == ("DE812345673", "eu_vat", "valid", utc(2026, 5, 1, 9))


def test_a_greek_vat_number_is_stored_with_the_el_prefix():
    customer = customer_create(**{**EU, "country": "GR"}, tax_id="GR 094259216")

    assert (customer.tax_id, customer.tax_id_type, customer.tax_id_status) == ("EL094259216", "eu_vat", "valid")


@pytest.mark.parametrize("tax_id", ["DE812345678", "FR11123456782", "not a number"])
def test_an_invalid_vat_number_is_refused_on_its_field_and_nothing_is_written(tax_id):
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**EU, tax_id=tax_id)

    assert excinfo.value.message == "The tax ID is not valid."
    assert list(excinfo.value.fields) == ["tax_id"]
    assert excinfo.value.fields["tax_id"][0].startswith(tax_id)
    assert Customer.objects.count() == 0


def test_tax_id_errors_come_with_the_other_field_errors():
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**{**EU, "email": "nope"}, tax_id="DE812345678")

    assert sorted(excinfo.value.fields) == ["email", "tax_id"]


def test_a_tax_id_without_a_checker_is_kept_unverified():
    customer = customer_create(**{**VALID, "country": "JP"}, tax_id="T1234567890123")
    other = customer_create(**VALID, tax_id="EIN 94-3141592", tax_id_type="other")

    assert (customer.tax_id, customer.tax_id_type, customer.tax_id_status) == ("T1234567890123", "other", "unverified")
    assert (other.tax_id, other.tax_id_type, other.tax_id_status) == ("EIN 94-3141592", "other", "unverified")


def test_no_tax_id_means_no_kind_status_or_check_time():
    customer = customer_create(**EU, tax_id="  ", tax_id_type="eu_vat")

    assert _tax_id_fields(customer) == ("", "", "", None)


def test_updating_the_tax_id_checks_it_again():
    customer = customer_create(**EU, tax_id="DE812345673")

    with pytest.raises(ValidationFailed) as excinfo:
        customer_update(customer_id=customer.pk, tax_id="DE812345678", name="Renamed")

    assert list(excinfo.value.fields) == ["tax_id"]
    customer.refresh_from_db()
    assert (customer.name, customer.tax_id, customer.tax_id_status) == ("Nordwind", "DE812345673", "valid")

    with clock.frozen_at(utc(2026, 6, 1)):
        customer_update(customer_id=customer.pk, tax_id="DE 298 765 435")
    assert _tax_id_fields(customer) == ("DE298765435", "eu_vat", "valid", utc(2026, 6, 1))


def test_removing_the_tax_id_clears_its_kind_and_status():
    customer = customer_create(**EU, tax_id="DE812345673")

    customer_update(customer_id=customer.pk, tax_id="")

    assert _tax_id_fields(customer) == ("", "", "", None)


def test_moving_to_another_country_checks_the_tax_id_against_it():
    customer = customer_create(**EU, tax_id="DE812345673")

    with pytest.raises(ValidationFailed) as excinfo:
        customer_update(customer_id=customer.pk, country="FR")
    assert list(excinfo.value.fields) == ["tax_id"]
    assert Customer.objects.get(pk=customer.pk).country.code == "DE"

    customer_update(customer_id=customer.pk, country="FR", tax_id="FR11123456782")
    assert _tax_id_fields(customer)[:3] == ("FR11123456782", "eu_vat", "valid")

    customer_update(customer_id=customer.pk, country="US", tax_id="94-3141592")  # EU VAT does not apply there
    assert _tax_id_fields(customer)[:3] == ("94-3141592", "us_ein", "valid")


def test_a_tax_id_of_the_kind_other_stays_other_when_the_customer_moves():
    customer = customer_create(**EU, tax_id="21/815/08150", tax_id_type="other")

    customer_update(customer_id=customer.pk, country="AT")

    assert _tax_id_fields(customer)[:3] == ("21/815/08150", "other", "unverified")


def test_a_kind_that_does_not_fit_the_country_is_refused_on_the_kind():
    with pytest.raises(ValidationFailed) as excinfo:
        customer_create(**VALID, tax_id="DE812345673", tax_id_type=TaxIdType.EU_VAT)

    assert list(excinfo.value.fields) == ["tax_id_type"]
    assert Customer.objects.count() == 0


def test_other_changes_leave_a_tax_id_recorded_before_the_checks_as_it_is():
    customer = CustomerFactory(country="DE", currency="EUR", tax_id="DE123456789")  # as the migration marks it
    assert customer.tax_id_status == TaxIdStatus.INVALID

    customer_update(customer_id=customer.pk, name="Renamed")

    customer.refresh_from_db()
    assert (customer.name, customer.tax_id, customer.tax_id_status) == ("Renamed", "DE123456789", "invalid")
