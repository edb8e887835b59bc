"""The staff roles (groups) and their permissions, as apps/accounts/roles.py defines them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    # Permissions are normally created after the whole migrate; create those of the apps migrated so
    # far now, so that the groups are complete at once (the post_migrate receiver adds later ones).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
        app_config.models_module = None
    from apps.accounts.roles import roles_apply

    roles_apply(apps=apps, using=schema_editor.connection.alias)


def delete_roles(apps, schema_editor):
    from apps.accounts.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=[role.name for role in ROLES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_customer_collection_method"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
