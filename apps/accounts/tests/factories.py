import factory
from django.contrib.auth import get_user_model

from apps.accounts.models import Customer, CustomerMembership


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


class CustomerMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerMembership

    user = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
