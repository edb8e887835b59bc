"""The database guard of issued credit notes (0010) also freezes `balance_returned` (0030): what a credit
note put back on the customer's balance is part of what it did, like `credit_to_balance`.

PostgreSQL: the guard function is replaced with one that names the column too. SQLite: the trigger that
lists the frozen columns is dropped and created again with it."""

import importlib

from django.db import migrations

GUARD_0010 = importlib.import_module("apps.invoices.migrations.0010_credit_notes")
BEFORE = GUARD_0010.FROZEN_COLUMNS
AFTER = [*BEFORE, "balance_returned"]


def _postgres_function(columns: list[str]) -> str:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    pdf_changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in GUARD_0010.PDF_COLUMNS)
    return f"""
CREATE OR REPLACE FUNCTION invoices_guard_issued_credit_note() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'credit note % is issued: it is voided, never deleted', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF {changed} THEN
        RAISE EXCEPTION 'credit note % is issued: its amounts, parties, dates and number cannot change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'void' AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.voided_at IS DISTINCT FROM OLD.voided_at)
    THEN
        RAISE EXCEPTION 'credit note % is void, a final status', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.pdf_sha256 <> '' AND ({pdf_changed}) THEN
        RAISE EXCEPTION 'credit note % already has its PDF: it is never replaced', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


def _sqlite_trigger(columns: list[str]) -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    return [
        "DROP TRIGGER IF EXISTS invoices_guard_issued_credit_note",
        f"""
        CREATE TRIGGER invoices_guard_issued_credit_note BEFORE UPDATE ON invoices_creditnote
        FOR EACH ROW WHEN {changed}
        BEGIN SELECT RAISE(ABORT, 'credit note is issued: its amounts, parties, dates and number cannot change'); END;
        """,
    ]


def _guard(columns: list[str]):
    def apply(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(_postgres_function(columns), params=None)
        elif vendor == "sqlite":
            for statement in _sqlite_trigger(columns):
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0030_credit_note_balance_returned_progressive_exact"),
    ]

    operations = [migrations.RunPython(_guard(AFTER), _guard(BEFORE))]
