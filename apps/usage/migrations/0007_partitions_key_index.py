# The key table's primary key is its only index: PostgreSQL's schema editor adds a
# `varchar_pattern_ops` index to a text primary key (for LIKE) at the end of the migration that
# creates the table (0006), so it is dropped here. Nothing looks keys up by prefix, and each index
# is one more write per ingested event.

from django.db import migrations

KEYS = "usage_usageeventkey"


def key_table_lean(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary",
            [KEYS],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0006_partitions_event_keys'),
    ]

    operations = [
        migrations.RunPython(key_table_lean, migrations.RunPython.noop),
    ]
