"""Database guard for the per-rate taxes: like the lines (migration 0002), an issued invoice's tax
rows never change, whatever the code path."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION invoices_guard_finalized_taxes() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND EXISTS (
        SELECT 1 FROM invoices_invoice WHERE id = OLD.invoice_id AND status <> 'draft'
    ) THEN
        RAISE EXCEPTION 'invoice % is finalized: its taxes cannot change', OLD.invoice_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP <> 'DELETE' AND EXISTS (
        SELECT 1 FROM invoices_invoice WHERE id = NEW.invoice_id AND status <> 'draft'
    ) THEN
        RAISE EXCEPTION 'invoice % is finalized: its taxes cannot change', NEW.invoice_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_finalized_taxes BEFORE INSERT OR UPDATE OR DELETE ON invoices_invoicetax
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_finalized_taxes();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS invoices_guard_finalized_taxes ON invoices_invoicetax;
DROP FUNCTION IF EXISTS invoices_guard_finalized_taxes();
"""

# SQLite: inserts and updates refused; deletes stay allowed because Django's test flush deletes rows.
SQLITE_FORWARD = [
    """
    CREATE TRIGGER invoices_guard_finalized_tax_insert BEFORE INSERT ON invoices_invoicetax
    FOR EACH ROW WHEN (SELECT status FROM invoices_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'invoice is finalized: its taxes cannot change'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_finalized_tax_update BEFORE UPDATE ON invoices_invoicetax
    FOR EACH ROW WHEN (SELECT status FROM invoices_invoice WHERE id = OLD.invoice_id) <> 'draft'
        OR (SELECT status FROM invoices_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'invoice is finalized: its taxes cannot change'); END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS invoices_guard_finalized_tax_insert",
    "DROP TRIGGER IF EXISTS invoices_guard_finalized_tax_update",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0008_taxes")]

    operations = [migrations.RunPython(forward, backward)]
