"""Database guard: wallet ledger entries are append-only. An entry is never changed (except its actor
link, which Django sets to NULL when a staff user is deleted) and, on PostgreSQL, never deleted."""

from django.db import migrations

TABLE = "wallets_walletentry"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION wallets_guard_entry() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'wallet entry % cannot be deleted', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF (to_jsonb(NEW) - 'actor_id') IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id') THEN
        RAISE EXCEPTION 'wallet entry % cannot be changed', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER wallets_guard_entry BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION wallets_guard_entry();
"""
POSTGRES_BACKWARD = f"""
DROP TRIGGER IF EXISTS wallets_guard_entry ON {TABLE};
DROP FUNCTION IF EXISTS wallets_guard_entry();
"""


def _sqlite_forward(columns: list[str]) -> str:
    # Updates only: Django's test flush deletes rows on SQLite (PostgreSQL truncates).
    changed = " OR ".join(f'NEW."{column}" IS NOT OLD."{column}"' for column in columns)
    return (
        f"CREATE TRIGGER wallets_guard_entry BEFORE UPDATE ON {TABLE} FOR EACH ROW WHEN {changed} "
        "BEGIN SELECT RAISE(ABORT, 'wallet entries cannot be changed'); END;"
    )


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        model = apps.get_model("wallets", "WalletEntry")
        columns = [field.column for field in model._meta.concrete_fields if field.column != "actor_id"]
        schema_editor.execute(_sqlite_forward(columns))


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS wallets_guard_entry")


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_wallets_initial")]

    operations = [migrations.RunPython(forward, backward)]
