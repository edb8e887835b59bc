"""Operations shared by migrations.

SQLite changes a table's constraints by rebuilding it, which drops the triggers on it and fails on
triggers of other tables that name it. `sqlite_triggers_kept` brackets such operations: the triggers
whose SQL names the table are set aside before them and put back after them (in reverse too).
PostgreSQL keeps its triggers through ALTER TABLE: both operations do nothing there.

`AlterLabels` applies many `AlterField` and `AlterModelOptions` operations that change only what the
database never sees (verbose names, help texts, choice labels, model options) to the migration state in
one step, and does nothing to the database. Django applies every operation of a migration on a fresh
copy of the project state and renders the changed models (and the models related to them) again after
each one: a few hundred label changes took most of the time of `migrate` on an empty database. Each
field change is checked when it is applied: anything but a non-database attribute differing from the
field it replaces stops the migration (see docs/architecture.md, "Migrations")."""

from collections.abc import Sequence

from django.db import migrations
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.migrations.utils import field_is_referenced
from django.db.models import Field


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


def database_attributes_changed(old_field: Field, new_field: Field) -> list[str]:
    """The attributes, other than those the database never sees, in which `new_field` differs from
    `old_field`; empty when replacing one with the other changes nothing in the database.

    This is the comparison of the schema editors' `_field_should_be_altered` (the fields' `deconstruct()`
    less their `non_db_attrs`), made stricter: a changed `db_column`, model pointed to or field class
    counts, as a field's state here is not bound to a model whose column or table could be compared."""
    _, old_path, old_args, old_kwargs = old_field.deconstruct()
    _, new_path, new_args, new_kwargs = new_field.deconstruct()
    for kwargs, field in ((old_kwargs, old_field), (new_kwargs, new_field)):
        for attribute in set(field.non_db_attrs) - {"db_column"}:
            kwargs.pop(attribute, None)
    changed = sorted(key for key in old_kwargs.keys() | new_kwargs.keys() if old_kwargs.get(key) != new_kwargs.get(key))
    if old_path != new_path:
        changed.insert(0, "class")
    if old_args != new_args:
        changed.insert(0, "args")
    return changed


class AlterLabels(Operation):
    """`AlterField` and `AlterModelOptions` operations that change only non-database attributes, applied
    to the state together, with no SQL: `AlterLabels(operations=[migrations.AlterField(...), ...])`.

    Applying it leaves the state exactly as the operations one by one would (the same field objects, in
    the same order, the same options); only the rendered models are refreshed once instead of after
    every operation. A field operation whose field differs from the one it replaces in anything the
    database sees raises `ValueError` (keep such a change a plain `AlterField`)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, operations: Sequence[migrations.AlterField | migrations.AlterModelOptions]):
        for operation in operations:
            if type(operation) not in (migrations.AlterField, migrations.AlterModelOptions):
                raise TypeError(f"AlterLabels takes AlterField and AlterModelOptions operations, not {operation!r}.")
            if isinstance(operation, migrations.AlterField) and not operation.preserve_default:
                raise TypeError(f"AlterLabels cannot take an AlterField with preserve_default=False: {operation!r}.")
        self.operations = list(operations)

    def deconstruct(self):
        return (self.__class__.__name__, [], {"operations": self.operations})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        # The model keys changed, each with whether its rendered model and the models related to it can
        # be refreshed lazily (Django's `delay`): only when every change to it allowed that.
        changed: dict[tuple[str, str], bool] = {}
        for operation in self.operations:
            if isinstance(operation, migrations.AlterModelOptions):
                model_key = app_label, operation.name_lower
                model_state = state.models[model_key]
                # As ProjectState.alter_model_options, without rendering the model again.
                model_state.options = {**model_state.options, **operation.options}
                for key in operation.ALTER_OPTION_KEYS:
                    if key not in operation.options:
                        model_state.options.pop(key, False)
                changed[model_key] = changed.get(model_key, True)
                continue
            model_key = app_label, operation.model_name_lower
            fields = state.models[model_key].fields
            name, field = operation.name, operation.field
            if name not in fields:
                raise ValueError(f"AlterLabels: {app_label}.{operation.model_name} has no field {name!r}.")
            if changed_attributes := database_attributes_changed(fields[name], field):
                raise ValueError(
                    f"AlterLabels: {app_label}.{operation.model_name}.{name} changes {', '.join(changed_attributes)}, "
                    "which the database sees; use a plain AlterField for it."
                )
            # As ProjectState.alter_field, without rendering the models again (the field moves to the
            # end of the model's fields once the state's relations are known, as it does there).
            if state._relations is not None:
                old_field = fields.pop(name)
                if old_field.is_relation:
                    state.resolve_model_field_relations(model_key, name, old_field)
                fields[name] = field
                if field.is_relation:
                    state.resolve_model_field_relations(model_key, name, field)
            else:
                fields[name] = field
            delay = not field.is_relation and not field_is_referenced(state, model_key, (name, field))
            changed[model_key] = changed.get(model_key, True) and delay
        if now := [model_key for model_key, delay in changed.items() if not delay]:
            state.reload_models(now, delay=False)
        if later := [model_key for model_key, delay in changed.items() if delay]:
            state.reload_models(later, delay=True)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        """Nothing: the database sees none of these attributes."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        """Nothing: the database sees none of these attributes."""

    def describe(self) -> str:
        fields = sum(isinstance(operation, migrations.AlterField) for operation in self.operations)
        return f"Alter the labels of {fields} fields and the options of {len(self.operations) - fields} models"

    @property
    def migration_name_fragment(self) -> str:
        return "alter_labels"
