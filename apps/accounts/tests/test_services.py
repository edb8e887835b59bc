import pytest

from apps.accounts.models import Customer
from apps.accounts.services import customer_create, customer_membership_add, customer_update
from apps.accounts.tests.factories import UserFactory
from apps.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

VALID = {"name": "Globex", "email": "ap@globex.example", "country": "US", "currency": "USD"}


def test_customer_create():
    customer = customer_create(**VALID, external_id="globex-1", tax_id="US12-3456789")
    assert (customer.name, customer.currency, customer.country.code) == ("Globex", "USD", "US")


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
