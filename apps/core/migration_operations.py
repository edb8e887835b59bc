"""Operations shared by migrations.

SQLite changes a table's constraints by rebuilding it, which drops the triggers on it and fails on
triggers of other tables that name it. `sqlite_triggers_kept` brackets such operations: the triggers
whose SQL names the table are set aside before them and put back after them (in reverse too).
PostgreSQL keeps its triggers through ALTER TABLE: both operations do nothing there."""

from django.db import migrations


def sqlite_triggers_kept(table: str) -> tuple[migrations.RunPython, migrations.RunPython]:
    """The operations to put before and after those that rebuild `table` on SQLite."""
    set_aside: list[tuple[str, str]] = []

    def take_out(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE %s", [f"%{table}%"])
            set_aside[:] = cursor.fetchall()
        for name, _sql in set_aside:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS "{name}"')

    def put_back(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        for _name, sql in set_aside:
            schema_editor.execute(sql)
        set_aside.clear()

    return migrations.RunPython(take_out, put_back), migrations.RunPython(put_back, take_out)
