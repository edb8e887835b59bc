# Test clocks' code name is SimulatedClock (pytest collected `Test*` classes and `test_*` functions
# imported into test modules). The table keeps its name; the content type follows the model (Django's
# rename of content types) and the permissions' code names are renamed with it.
from django.db import migrations


def permissions_rename(apps, schema_editor, old="testclock", new="simulatedclock"):
    permission = apps.get_model("auth", "Permission")
    for row in permission.objects.filter(content_type__app_label="accounts", codename__endswith=f"_{old}"):
        action = row.codename[: -len(old) - 1]
        if permission.objects.filter(content_type_id=row.content_type_id, codename=f"{action}_{new}").exists():
            continue
        row.codename = f"{action}_{new}"
        row.save(update_fields=["codename"])


def permissions_rename_back(apps, schema_editor):
    permissions_rename(apps, schema_editor, old="simulatedclock", new="testclock")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0014_customer_invitations"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        # After every migration that points at the model by its old name.
        ("invoices", "0007_billing_run_test_clock"),
    ]

    operations = [
        migrations.AlterModelTable(name="testclock", table="accounts_testclock"),
        migrations.RenameModel(old_name="TestClock", new_name="SimulatedClock"),
        migrations.AlterModelOptions(
            name="simulatedclock",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "test clock"},
        ),
        migrations.RunPython(permissions_rename, permissions_rename_back),
    ]
