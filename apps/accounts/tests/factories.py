import factory
from django.contrib.auth import get_user_model

from apps.accounts.models import Customer, CustomerMembership
from apps.accounts.tax_ids import tax_id_classify
from apps.core import clock


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n} Ltd.")
    email = factory.Sequence(lambda n: f"billing{n}@customer.example")
    external_id = factory.Sequence(lambda n: f"cus_{n:05d}")
    address_line1 = "10 Downing Street"
    city = "London"
    postal_code = "SW1A 2AA"
    country = "GB"
    currency = "USD"
    tax_id = ""
    tax_id_type = ""

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        # Record a tax ID as the services would: checked and normalized. One that fails its check is
        # marked "invalid" rather than refused (as if recorded before tax IDs were checked).
        if kwargs["tax_id"]:
            checked = tax_id_classify(
                tax_id=kwargs["tax_id"], country=str(kwargs["country"]), tax_id_type=kwargs["tax_id_type"]
            )
            kwargs.update(
                tax_id=checked.tax_id,
                tax_id_type=checked.type,
                tax_id_status=checked.status,
                tax_id_checked_at=clock.now(),
            )
        return kwargs


class CustomerMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerMembership

    user = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
