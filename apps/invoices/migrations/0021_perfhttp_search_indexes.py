"""Trigram indexes for the admin's and the API's text search (PostgreSQL only).

Search boxes match anywhere in a value (`icontains`, which PostgreSQL runs as
`UPPER(column::text) LIKE UPPER('%term%')`); without an index that reads every row. A GIN index of
trigrams on the same expression answers it from the index. `pg_trgm` is a trusted extension: the
database's owner may create it. SQLite (the local default) has no such index and scans, which is fine
at its sizes.
"""

from django.db import migrations

# (table, column, index name)
SEARCHED = [
    ("accounts_customer", "name", "customer_name_trgm_idx"),
    ("accounts_customer", "external_id", "customer_external_id_trgm_idx"),
    ("invoices_invoice", "number", "invoice_number_trgm_idx"),
    ("invoices_creditnote", "number", "credit_note_number_trgm_idx"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column, name in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, _, name in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0016_user_tokens"),
        ("invoices", "0020_perfhttp_list_indexes"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
