# A credit note may come to 0.00: on an invoice prepaid credits paid in full, it gives the credits back
# to the wallets and credits no money (docs/credits.md, "Credit notes and voids give credits back").

from django.db import migrations, models

from apps.core.migration_operations import sqlite_triggers_kept

# SQLite rebuilds a table to change a constraint, which drops the triggers on it: they are set aside
# first and put back afterwards, as in 0019 and 0022 (PostgreSQL keeps its triggers through ALTER TABLE).
TRIGGERS_SET_ASIDE, TRIGGERS_PUT_BACK = sqlite_triggers_kept("invoices_creditnote")


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0027_zhadmin_invoice_item_labels"),
    ]

    operations = [
        TRIGGERS_SET_ASIDE,
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
        TRIGGERS_PUT_BACK,
    ]
