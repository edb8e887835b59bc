"""Database guard: once an invoice leaves draft, its amounts, parties, dates, number and lines never
change, and paid or void invoices never change status. Services already refuse such edits; this makes
the rule hold for any code path (raw updates included)."""

from django.db import migrations

FROZEN_COLUMNS = [
    "customer_id", "subscription_id", "number", "period_start_at", "period_end_at",
    "subtotal", "subtotal_currency", "tax_total", "tax_total_currency", "total", "total_currency",
    "memo", "due_on", "issued_at", "seller_details", "customer_details",
]  # fmt: skip

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION invoices_guard_finalized_invoice() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> 'draft' AND ({" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN_COLUMNS)}) THEN
        RAISE EXCEPTION 'invoice % is finalized: its amounts, parties, dates and number cannot change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status IN ('paid', 'void') AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'invoice % is %, a final status', OLD.id, OLD.status USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_finalized_invoice BEFORE UPDATE ON invoices_invoice
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_finalized_invoice();

CREATE OR REPLACE FUNCTION invoices_guard_finalized_lines() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND EXISTS (
        SELECT 1 FROM invoices_invoice WHERE id = OLD.invoice_id AND status <> 'draft'
    ) THEN
        RAISE EXCEPTION 'invoice % is finalized: its lines cannot change', OLD.invoice_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP <> 'DELETE' AND EXISTS (
        SELECT 1 FROM invoices_invoice WHERE id = NEW.invoice_id AND status <> 'draft'
    ) THEN
        RAISE EXCEPTION 'invoice % is finalized: its lines cannot change', NEW.invoice_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_finalized_lines BEFORE INSERT OR UPDATE OR DELETE ON invoices_invoiceline
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_finalized_lines();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS invoices_guard_finalized_lines ON invoices_invoiceline;
DROP FUNCTION IF EXISTS invoices_guard_finalized_lines();
DROP TRIGGER IF EXISTS invoices_guard_finalized_invoice ON invoices_invoice;
DROP FUNCTION IF EXISTS invoices_guard_finalized_invoice();
"""

# SQLite (local default): the same rules; deletes stay allowed because Django's test flush deletes rows.
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER invoices_guard_finalized_invoice BEFORE UPDATE ON invoices_invoice
    FOR EACH ROW WHEN OLD.status <> 'draft' AND ({" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN_COLUMNS)})
    BEGIN SELECT RAISE(ABORT, 'invoice is finalized: its amounts, parties, dates and number cannot change'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_final_status BEFORE UPDATE OF status ON invoices_invoice
    FOR EACH ROW WHEN OLD.status IN ('paid', 'void') AND NEW.status IS NOT OLD.status
    BEGIN SELECT RAISE(ABORT, 'invoice is paid or void, a final status'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_finalized_line_insert BEFORE INSERT ON invoices_invoiceline
    FOR EACH ROW WHEN (SELECT status FROM invoices_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'invoice is finalized: its lines cannot change'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_finalized_line_update BEFORE UPDATE ON invoices_invoiceline
    FOR EACH ROW WHEN (SELECT status FROM invoices_invoice WHERE id = OLD.invoice_id) <> 'draft'
        OR (SELECT status FROM invoices_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'invoice is finalized: its lines cannot change'); END;
    """,
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "invoices_guard_finalized_invoice",
        "invoices_guard_final_status",
        "invoices_guard_finalized_line_insert",
        "invoices_guard_finalized_line_update",
    )
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
    dependencies = [("invoices", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
