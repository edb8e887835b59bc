"""Database guard: audit log entries are append-only. An entry is never changed (except its actor
link, which Django sets to NULL when a staff user is deleted) and, on PostgreSQL, never deleted. The
admin already offers no way to change the trail; this makes it hold for any code path."""

from django.db import migrations

TABLE = "auditlog_logentry"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION audit_guard_log_entry() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit log entry % cannot be deleted', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF (to_jsonb(NEW) - 'actor_id') IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id') THEN
        RAISE EXCEPTION 'audit log entry % cannot be changed', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_guard_log_entry BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_guard_log_entry();
"""
POSTGRES_BACKWARD = f"""
DROP TRIGGER IF EXISTS audit_guard_log_entry ON {TABLE};
DROP FUNCTION IF EXISTS audit_guard_log_entry();
"""


def _sqlite_forward(columns: list[str]) -> str:
    # Updates only: Django's test flush deletes rows on SQLite (PostgreSQL truncates).
    changed = " OR ".join(f'NEW."{column}" IS NOT OLD."{column}"' for column in columns)
    return (
        f"CREATE TRIGGER audit_guard_log_entry BEFORE UPDATE ON {TABLE} FOR EACH ROW WHEN {changed} "
        "BEGIN SELECT RAISE(ABORT, 'audit log entries cannot be changed'); END;"
    )


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        model = apps.get_model("auditlog", "LogEntry")
        columns = [field.column for field in model._meta.concrete_fields if field.column != "actor_id"]
        schema_editor.execute(_sqlite_forward(columns))


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_guard_log_entry")


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0017_add_actor_email")]

    operations = [migrations.RunPython(forward, backward)]
