# Usage events in monthly partitions on PostgreSQL, transaction ids kept unique in a key table.
#
# 1. `usage_usageeventkey`: one row per transaction id taken (the primary key is the uniqueness that
#    the event table can no longer hold once partitioned), filled from the stored events and from the
#    events voided so far (their ids stay taken).
# 2. The unique constraint on usage_usageevent.transaction_id goes (everywhere: SQLite and PostgreSQL
#    alike claim the key first; see apps/usage/services.py).
# 3. PostgreSQL only: usage_usageevent becomes PARTITION BY RANGE (occurred_at), a partition per month
#    with events and per month of the window around today (the project's clock), and a DEFAULT
#    partition; its rows, ids, indexes and foreign keys carried over (apps/usage/partitions.py).
#    SQLite keeps one plain table.
# (0007 drops the key table's LIKE index, which Django creates only at the end of this migration.)

import django.db.models.deletion
from django.db import migrations, models

KEYS = "usage_usageeventkey"


def keys_fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {KEYS} (transaction_id, customer_id, metric_id, occurred_at) "
            "SELECT transaction_id, customer_id, metric_id, occurred_at FROM usage_usageevent"
        )
        cursor.execute(
            f"INSERT INTO {KEYS} (transaction_id, customer_id, metric_id, occurred_at) "
            "SELECT transaction_id, min(customer_id), min(metric_id), min(occurred_at) FROM usage_usageeventchange "
            "WHERE kind = 'void' GROUP BY transaction_id ON CONFLICT (transaction_id) DO NOTHING"
        )


def events_partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from apps.core import clock
    from apps.usage.partitions import events_table_partition

    with schema_editor.connection.cursor() as cursor:
        events_table_partition(cursor, now=clock.now())


def events_unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from apps.usage.partitions import EVENTS_TABLE, events_table_unpartition

    customer_index = schema_editor._create_index_name(EVENTS_TABLE, ["customer_id"])
    with schema_editor.connection.cursor() as cursor:
        events_table_unpartition(cursor, customer_index=customer_index)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0020_time_zone_label'),
        ('catalog', '0019_model_names'),
        ('usage', '0005_field_labels'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageEventKey',
            fields=[
                ('transaction_id', models.CharField(max_length=255, primary_key=True, serialize=False, verbose_name='transaction ID')),
                ('occurred_at', models.DateTimeField(help_text="The event's time (after a replace, its new time).")),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.customer')),
                ('metric', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='catalog.billablemetric')),
            ],
        ),
        migrations.RunPython(keys_fill, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name='usageevent',
            name='usage_event_transaction_id_unique',
        ),
        migrations.RunPython(events_partition, events_unpartition),
    ]
