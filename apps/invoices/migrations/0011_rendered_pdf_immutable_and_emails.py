"""A rendered PDF bill is immutable: the database refuses any change to the stored file name, its
SHA-256 and its rendering time once set (like the finalized-invoice guard of migration 0002), and a
stored PDF always has its hash. Also the event types for emailing bills."""

from importlib import import_module

import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models

PDF_COLUMNS = ["pdf", "pdf_sha256", "pdf_rendered_at"]

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION invoices_guard_rendered_pdf() RETURNS trigger AS $$
BEGIN
    IF OLD.pdf_sha256 <> '' AND ({" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in PDF_COLUMNS)}) THEN
        RAISE EXCEPTION 'invoice % has a rendered PDF bill: it is immutable', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_rendered_pdf BEFORE UPDATE ON invoices_invoice
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_rendered_pdf();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS invoices_guard_rendered_pdf ON invoices_invoice;
DROP FUNCTION IF EXISTS invoices_guard_rendered_pdf();
"""

SQLITE_FORWARD = f"""
CREATE TRIGGER invoices_guard_rendered_pdf BEFORE UPDATE ON invoices_invoice
FOR EACH ROW WHEN OLD.pdf_sha256 <> '' AND ({" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in PDF_COLUMNS)})
BEGIN SELECT RAISE(ABORT, 'invoice has a rendered PDF bill: it is immutable'); END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS invoices_guard_rendered_pdf"


# The SQLite guards of earlier migrations that name invoices_invoice (on it, or reading it).
GUARD_MIGRATIONS = ("0002_finalized_invoice_guard", "0009_finalized_invoice_tax_guard")


def drop_sqlite_guard(apps, schema_editor):
    """SQLite rebuilds invoices_invoice to add the check constraint, which drops its triggers and
    fails on triggers of other tables that read it: lift the guards of migrations 0002 and 0009 for
    the rebuild (restored below, same transaction). PostgreSQL keeps its triggers."""
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in GUARD_MIGRATIONS:
        for statement in import_module(f"apps.invoices.migrations.{name}").SQLITE_BACKWARD:
            schema_editor.execute(statement)


def restore_sqlite_guard(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in GUARD_MIGRATIONS:
        for statement in import_module(f"apps.invoices.migrations.{name}").SQLITE_FORWARD:
            schema_editor.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0010_credit_notes'),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_guard, restore_sqlite_guard),
        migrations.AlterField(
            model_name='invoice',
            name='pdf_sha256',
            field=models.CharField(blank=True, editable=False, help_text='SHA-256 of the stored file (hex).', max_length=64, verbose_name='PDF SHA-256'),
        ),
        migrations.AlterField(
            model_name='invoiceevent',
            name='type',
            field=models.CharField(choices=[('created', 'Created'), ('updated', 'Draft updated'), ('finalized', 'Finalized'), ('paid', 'Marked paid'), ('voided', 'Voided'), ('marked_uncollectible', 'Marked uncollectible'), ('pdf_rendered', 'PDF rendered'), ('pdf_failed', 'PDF rendering failed'), ('emailed', 'Emailed to the customer'), ('email_failed', 'Email failed')], max_length=32),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('pdf', ''), ('pdf_sha256', ''), ('pdf_rendered_at__isnull', True)), models.Q(models.Q(('pdf', ''), _negated=True), django.db.models.lookups.Exact(django.db.models.functions.text.Length('pdf_sha256'), 64), ('pdf_rendered_at__isnull', False)), _connector='OR'), name='invoice_pdf_has_sha256', violation_error_message='A stored PDF bill needs its SHA-256 and rendering time.'),
        ),
        migrations.RunPython(restore_sqlite_guard, drop_sqlite_guard),
        migrations.RunPython(forward, backward),
    ]
