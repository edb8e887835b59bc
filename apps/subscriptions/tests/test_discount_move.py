"""Discounts moved from the catalog to the subscriptions app (subscriptions 0009): the rows stay in their
table and the permissions given to staff follow the model."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import CouponFactory
from apps.subscriptions.models import Discount
from apps.subscriptions.services import coupon_redeem

pytestmark = pytest.mark.django_db

migration_0009 = importlib.import_module("apps.subscriptions.migrations.0009_discount")


def test_discounts_are_read_from_the_table_they_always_had():
    discount = coupon_redeem(coupon=CouponFactory(), customer=CustomerFactory())

    with connection.cursor() as cursor:
        cursor.execute("SELECT coupon_id, customer_id FROM catalog_discount WHERE id = %s", [discount.pk])
        assert cursor.fetchone() == (discount.coupon_id, discount.customer_id)
    assert Discount.objects.get(pk=discount.pk).coupon_id == discount.coupon_id


def test_the_permissions_staff_held_on_discounts_follow_the_model():
    ContentType.objects.filter(app_label="subscriptions", model="discount").delete()  # as before the move
    old = ContentType.objects.create(app_label="catalog", model="discount")
    permission = Permission.objects.create(content_type=old, codename="view_discount", name="Can view discount")
    group = Group.objects.create(name="Coupon readers")
    group.permissions.add(permission)

    migration_0009.discount_content_type_move(apps, None)

    old.refresh_from_db()
    assert (old.app_label, old.model) == ("subscriptions", "discount")
    assert [f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()] == [
        "subscriptions.view_discount"
    ]


def test_moving_twice_changes_nothing():
    before = list(ContentType.objects.filter(model="discount").values_list("app_label", flat=True))

    migration_0009.discount_content_type_move(apps, None)

    assert list(ContentType.objects.filter(model="discount").values_list("app_label", flat=True)) == before
