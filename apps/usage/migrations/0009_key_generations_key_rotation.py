# Generations of the transaction ids' key table (PostgreSQL): the view `usage_usageeventkey_all` over
# the current table and the generations that `keys_rotate` makes (apps/usage/keys.py). Ingestion looks
# for duplicates through it; corrections find a key through it. SQLite keeps one table and no view.
# Reversed: the generations' keys merged back into the one table.

from django.db import migrations


def view_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from apps.usage.keys import KEYS_TABLE, KEYS_VIEW, view_definition

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE VIEW {KEYS_VIEW} AS {view_definition([KEYS_TABLE])}")


def generations_merge(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from apps.usage.keys import generations_merge

    with schema_editor.connection.cursor() as cursor:
        generations_merge(cursor)


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0008_model_texts_translated_zh_api'),
    ]

    operations = [
        migrations.RunPython(view_create, generations_merge),
    ]
