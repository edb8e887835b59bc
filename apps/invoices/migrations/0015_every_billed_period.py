"""Every billed subscription period gets its InvoicedPeriod row (until now only periods on grouped
invoices had one), so that one unique constraint bills a period once, whichever invoice bills it."""

from django.db import migrations

BACKFILL = """
INSERT INTO invoices_invoicedperiod (invoice_id, subscription_id, period_start_at, period_end_at)
SELECT id, subscription_id, period_start_at, period_end_at
FROM invoices_invoice
WHERE billing_reason = 'subscription_cycle'
  AND subscription_id IS NOT NULL
  AND period_start_at IS NOT NULL
  AND period_end_at IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0014_grouped_invoices"),
    ]

    operations = [
        migrations.RunSQL(
            BACKFILL,
            reverse_sql="DELETE FROM invoices_invoicedperiod WHERE invoice_id IN "
            "(SELECT id FROM invoices_invoice WHERE subscription_id IS NOT NULL)",
        ),
    ]
