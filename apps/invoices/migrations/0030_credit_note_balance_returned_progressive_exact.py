# A credit note puts back on the customer's balance its share of the money-balance credit the invoice
# used (docs/credits.md, "Credit notes and voids give credits back"): recorded on the credit note.

from django.db import migrations, models

from apps.core.migration_operations import sqlite_triggers_kept

# SQLite rebuilds the table to add a NOT NULL column, which drops the triggers on it: they are set aside
# first and put back afterwards, as in 0019, 0022 and 0028 (PostgreSQL keeps its triggers).
TRIGGERS_SET_ASIDE, TRIGGERS_PUT_BACK = sqlite_triggers_kept("invoices_creditnote")


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0029_model_texts_translated_zh_api"),
    ]

    operations = [
        TRIGGERS_SET_ASIDE,
        migrations.AddField(
            model_name="creditnote",
            name="balance_returned",
            field=models.DecimalField(
                decimal_places=4,
                default=0,
                editable=False,
                help_text="The share of the money-balance credit applied on the invoice that this credit note put "
                "back on the customer's balance (in proportion to the charges credited).",
                max_digits=19,
                verbose_name="balance credit given back",
            ),
        ),
        TRIGGERS_PUT_BACK,
    ]
