"""AlterLabels (apps.core.migration_operations): the label-only migrations apply their label changes to
the migration state in one step, with no SQL. Every such operation in the project's migrations changes
only attributes the database never sees, and leaves the state exactly as its AlterField and
AlterModelOptions operations applied one by one (Django's way) would."""

import io

import pytest
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState, ProjectState

from apps.core.migration_operations import AlterLabels, database_attributes_changed


def _the_same_state(state: ProjectState, expected: ProjectState) -> list[str]:
    """Where two states differ (fields compared in order, by their full deconstruction)."""
    differences = []
    for key in sorted(state.models.keys() | expected.models.keys()):
        if key not in state.models or key not in expected.models:
            differences.append(f"{key}: only in one state")
            continue
        model, expected_model = state.models[key], expected.models[key]
        fields = [(name, field.deconstruct()[1:]) for name, field in model.fields.items()]
        expected_fields = [(name, field.deconstruct()[1:]) for name, field in expected_model.fields.items()]
        if fields != expected_fields:
            differences.append(f"{key}: fields")
        if (model.options, model.bases, model.managers) != (
            expected_model.options,
            expected_model.bases,
            expected_model.managers,
        ):
            differences.append(f"{key}: options, bases or managers")
    return differences


def test_every_alter_labels_changes_only_labels_and_leaves_the_state_its_operations_would():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    plan = [node for leaf in loader.graph.leaf_nodes() for node in loader.graph.forwards_plan(leaf)]
    state = ProjectState(real_apps=loader.unmigrated_apps)
    applied: set[tuple[str, str]] = set()
    checked = []
    for key in plan:
        if key in applied:
            continue
        applied.add(key)
        app_label = key[0]
        for operation in loader.graph.nodes[key].operations:
            if not isinstance(operation, AlterLabels):
                operation.state_forwards(app_label, state)
                continue
            one_by_one = state.clone()
            if state._relations is not None:
                one_by_one.relations  # noqa: B018 -- known in the state too, as during `migrate`
            for inner in operation.operations:
                if isinstance(inner, migrations.AlterField):
                    replaced = one_by_one.models[app_label, inner.model_name_lower].fields[inner.name]
                    assert database_attributes_changed(replaced, inner.field) == [], (key, inner)
                inner.state_forwards(app_label, one_by_one)
            operation.state_forwards(app_label, state)
            assert _the_same_state(state, one_by_one) == [], key
            checked.append(key)

    assert len(checked) >= 27  # the label migrations of every app
    assert ("invoices", "0024_field_labels") in checked


def test_the_rendered_models_carry_the_new_labels_and_the_models_related_to_them_too():
    """During `migrate` the state's models are rendered; AlterLabels renders the changed ones again (and
    those related to them) once, so later operations and data migrations see the new labels."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    key = ("invoices", "0024_field_labels")
    state = loader.project_state(key, at_end=False)
    state.apps  # noqa: B018 -- rendered, as during `migrate`
    for operation in loader.graph.nodes[key].operations:
        operation.state_forwards("invoices", state)

    fresh = ProjectState(state.models, real_apps=loader.unmigrated_apps).apps
    for model in fresh.get_models():
        rendered = state.apps.get_model(model._meta.label_lower)
        assert _labels(rendered) == _labels(model), model
    line = state.apps.get_model("invoices", "invoiceline")
    assert str(line._meta.verbose_name_plural) == "invoice lines"


def _labels(model) -> list[tuple]:
    """What a rendered model says of itself and of each of its fields and relations, in a stable order."""
    fields = [
        (
            field.name,
            type(field).__name__,
            str(getattr(field, "verbose_name", "")),
            str(getattr(field, "help_text", "")),
            [(value, str(label)) for value, label in field.flatchoices] if hasattr(field, "flatchoices") else None,
            field.related_model._meta.label_lower if field.is_relation and field.related_model else None,
        )
        for field in model._meta.get_fields(include_hidden=True)
    ]
    return [(str(model._meta.verbose_name), str(model._meta.verbose_name_plural)), *sorted(fields)]


def _state_with_a_plan() -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "shop",
            "Plan",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=32, help_text="old help")),
                ("kind", models.CharField(max_length=8, choices=[("a", "A")])),
            ],
            options={"ordering": ["code"]},
        )
    )
    return state


def _relabel(field: models.Field) -> AlterLabels:
    return AlterLabels(operations=[migrations.AlterField(model_name="plan", name="code", field=field)])


def test_labels_help_texts_choices_blank_and_options_change_the_state_only():
    state = _state_with_a_plan()

    AlterLabels(
        operations=[
            migrations.AlterField(
                model_name="plan",
                name="code",
                field=models.CharField(max_length=32, blank=True, verbose_name="code", help_text="new help"),
            ),
            migrations.AlterField(
                model_name="plan", name="kind", field=models.CharField(max_length=8, choices=[("a", "Kind A")])
            ),
            migrations.AlterModelOptions(name="plan", options={"verbose_name": "plan"}),
        ]
    ).state_forwards("shop", state)

    plan = state.models["shop", "plan"]
    assert plan.fields["code"].help_text == "new help"
    assert plan.fields["code"].verbose_name == "code"
    assert plan.fields["kind"].choices == [("a", "Kind A")]
    assert plan.options == {"verbose_name": "plan", "indexes": [], "constraints": []}  # ordering dropped, as Django


@pytest.mark.parametrize("relations_known", [False, True])
def test_the_fields_keep_the_order_django_gives_them(relations_known):
    """Django's AlterField moves the field to the end of its model once the state's relations are known
    (the column order of a table SQLite rebuilds later follows it): AlterLabels does the same."""
    state = _state_with_a_plan()
    if relations_known:
        state.relations  # noqa: B018
    one_by_one = state.clone()
    if relations_known:
        one_by_one.relations  # noqa: B018
    operation = _relabel(models.CharField(max_length=32, help_text="new help"))

    operation.operations[0].state_forwards("shop", one_by_one)
    operation.state_forwards("shop", state)

    assert list(state.models["shop", "plan"].fields) == list(one_by_one.models["shop", "plan"].fields)
    expected = ["id", "kind", "code"] if relations_known else ["id", "code", "kind"]
    assert list(state.models["shop", "plan"].fields) == expected
    assert _the_same_state(state, one_by_one) == []


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        (models.CharField(max_length=64, help_text="new help"), "max_length"),
        (models.CharField(max_length=32, null=True), "null"),
        (models.CharField(max_length=32, db_column="plan_code"), "db_column"),
        (models.CharField(max_length=32, default="x"), "default"),
        (models.CharField(max_length=32, db_index=True), "db_index"),
        (models.TextField(), "class"),
    ],
)
def test_a_change_the_database_sees_is_refused_and_the_state_is_left_alone(field, changed):
    state = _state_with_a_plan()

    with pytest.raises(ValueError, match=rf"AlterLabels: shop\.plan\.code changes .*{changed}.*plain AlterField"):
        _relabel(field).state_forwards("shop", state)

    assert state.models["shop", "plan"].fields["code"].max_length == 32
    assert state.models["shop", "plan"].fields["code"].help_text == "old help"


def test_only_alter_field_and_alter_model_options_are_taken():
    with pytest.raises(TypeError, match="AlterLabels takes AlterField and AlterModelOptions operations"):
        AlterLabels(operations=[migrations.AddField(model_name="plan", name="note", field=models.TextField())])
    with pytest.raises(TypeError, match="preserve_default=False"):
        AlterLabels(
            operations=[
                migrations.AlterField(
                    model_name="plan", name="code", field=models.CharField(max_length=32), preserve_default=False
                )
            ]
        )


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's schema editor cannot start inside the test's transaction (sqlmigrate needs one)",
)
def test_a_label_migration_has_no_sql():
    out = io.StringIO()

    call_command("sqlmigrate", "invoices", "0024_field_labels", stdout=out)

    statements = [line for line in out.getvalue().splitlines() if line.strip() and not line.startswith("--")]
    assert statements in ([], ["BEGIN;", "COMMIT;"])
    assert "Alter the labels of 133 fields and the options of 12 models" in out.getvalue()
