# A credit note may come to 0.00: on an invoice prepaid credits paid in full, it gives the credits back
# to the wallets and credits no money (docs/credits.md, "Credit notes and voids give credits back").

from django.db import migrations, models

# SQLite rebuilds a table to change a constraint, which drops the triggers on it: they are set aside
# first and put back afterwards, as in 0019 and 0022 (PostgreSQL keeps its triggers through ALTER TABLE).
_SET_ASIDE: list[tuple[str, str]] = []


def sqlite_triggers_set_aside(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%invoices_creditnote%'"
        )
        _SET_ASIDE[:] = cursor.fetchall()
    for name, _sql in _SET_ASIDE:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{name}"')


def sqlite_triggers_put_back(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for _name, sql in _SET_ASIDE:
        schema_editor.execute(sql)
    _SET_ASIDE.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0027_zhadmin_invoice_item_labels"),
    ]

    operations = [
        migrations.RunPython(sqlite_triggers_set_aside, sqlite_triggers_put_back),
        migrations.RemoveConstraint(
            model_name="creditnote",
            name="credit_note_amounts_positive",
        ),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("total__gte", 0),
                    ("amount_due_reduction__gte", 0),
                    ("credit_to_balance__gte", 0),
                    ("refund_amount__gte", 0),
                ),
                name="credit_note_amounts_positive",
            ),
        ),
        migrations.RunPython(sqlite_triggers_put_back, sqlite_triggers_set_aside),
    ]
