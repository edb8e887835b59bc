"""Test clocks' code name changed (accounts 0015): the table and the permissions staff held stay."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.accounts.services import simulated_clock_create

pytestmark = pytest.mark.django_db

migration_0015 = importlib.import_module("apps.accounts.migrations.0015_simulated_clock_code_name")


def test_test_clocks_are_read_from_the_table_they_always_had():
    clock = simulated_clock_create(name="Trial walk-through")

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM accounts_testclock WHERE id = %s", [clock.pk])
        assert cursor.fetchone() == ("Trial walk-through",)


def test_the_permissions_staff_held_on_test_clocks_are_renamed_with_the_model():
    content_type = ContentType.objects.get(app_label="accounts", model="simulatedclock")
    Permission.objects.filter(content_type=content_type).delete()  # as before the rename
    old = Permission.objects.create(content_type=content_type, codename="change_testclock", name="Can change")
    group = Group.objects.create(name="Clock keepers")
    group.permissions.add(old)

    migration_0015.permissions_rename(apps, None)

    assert [p.codename for p in group.permissions.all()] == ["change_simulatedclock"]
    migration_0015.permissions_rename_back(apps, None)
    assert [p.codename for p in group.permissions.all()] == ["change_testclock"]
