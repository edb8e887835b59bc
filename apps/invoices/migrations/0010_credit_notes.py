"""Credit notes (with their lines and per-rate taxes), and the database guard that keeps an issued
credit note as it was issued, like an issued invoice (migrations 0002 and 0009): its amounts, parties,
number and dates never change; a void credit note stays void; its PDF, once stored, is never replaced;
its lines and taxes are never updated (nor deleted, on PostgreSQL). Services already refuse all of this;
the guard makes it hold for any code path."""

from decimal import Decimal

import apps.core.money
import apps.invoices.models
import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.math
import django.db.models.lookups
import djmoney.models.fields
from django.conf import settings
from django.db import migrations, models


FROZEN_COLUMNS = [
    "invoice_id", "customer_id", "number", "reason", "memo", "subtotal", "subtotal_currency", "tax_total",
    "tax_total_currency", "total", "total_currency", "amount_due_reduction", "amount_due_reduction_currency",
    "credit_to_balance", "credit_to_balance_currency", "refund_amount", "refund_amount_currency",
    "refund_reference", "reverse_charge", "issued_at", "seller_details", "customer_details",
]  # fmt: skip
PDF_COLUMNS = ["pdf", "pdf_sha256", "pdf_rendered_at"]

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION invoices_guard_issued_credit_note() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'credit note % is issued: it is voided, never deleted', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN_COLUMNS)} THEN
        RAISE EXCEPTION 'credit note % is issued: its amounts, parties, dates and number cannot change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'void' AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.voided_at IS DISTINCT FROM OLD.voided_at)
    THEN
        RAISE EXCEPTION 'credit note % is void, a final status', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.pdf_sha256 <> '' AND ({" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in PDF_COLUMNS)}) THEN
        RAISE EXCEPTION 'credit note % already has its PDF: it is never replaced', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_issued_credit_note BEFORE UPDATE OR DELETE ON invoices_creditnote
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_issued_credit_note();

CREATE OR REPLACE FUNCTION invoices_guard_credit_note_rows() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'credit note % is issued: its lines and taxes cannot change', OLD.credit_note_id
        USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_guard_credit_note_lines BEFORE UPDATE OR DELETE ON invoices_creditnoteline
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_credit_note_rows();
CREATE TRIGGER invoices_guard_credit_note_taxes BEFORE UPDATE OR DELETE ON invoices_creditnotetax
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_credit_note_rows();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS invoices_guard_credit_note_taxes ON invoices_creditnotetax;
DROP TRIGGER IF EXISTS invoices_guard_credit_note_lines ON invoices_creditnoteline;
DROP FUNCTION IF EXISTS invoices_guard_credit_note_rows();
DROP TRIGGER IF EXISTS invoices_guard_issued_credit_note ON invoices_creditnote;
DROP FUNCTION IF EXISTS invoices_guard_issued_credit_note();
"""

# SQLite (local default): the same rules; deletes stay allowed because Django's test flush deletes rows.
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER invoices_guard_issued_credit_note BEFORE UPDATE ON invoices_creditnote
    FOR EACH ROW WHEN {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN_COLUMNS)}
    BEGIN SELECT RAISE(ABORT, 'credit note is issued: its amounts, parties, dates and number cannot change'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_void_credit_note BEFORE UPDATE ON invoices_creditnote
    FOR EACH ROW WHEN OLD.status = 'void' AND (NEW.status IS NOT OLD.status OR NEW.voided_at IS NOT OLD.voided_at)
    BEGIN SELECT RAISE(ABORT, 'credit note is void, a final status'); END;
    """,
    f"""
    CREATE TRIGGER invoices_guard_credit_note_pdf BEFORE UPDATE ON invoices_creditnote
    FOR EACH ROW WHEN OLD.pdf_sha256 <> '' AND ({" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in PDF_COLUMNS)})
    BEGIN SELECT RAISE(ABORT, 'credit note already has its PDF: it is never replaced'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_credit_note_line_update BEFORE UPDATE ON invoices_creditnoteline
    BEGIN SELECT RAISE(ABORT, 'credit note is issued: its lines cannot change'); END;
    """,
    """
    CREATE TRIGGER invoices_guard_credit_note_tax_update BEFORE UPDATE ON invoices_creditnotetax
    BEGIN SELECT RAISE(ABORT, 'credit note is issued: its taxes cannot change'); END;
    """,
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "invoices_guard_issued_credit_note",
        "invoices_guard_void_credit_note",
        "invoices_guard_credit_note_pdf",
        "invoices_guard_credit_note_line_update",
        "invoices_guard_credit_note_tax_update",
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

    dependencies = [
        ('accounts', '0005_customer_tax_exempt'),
        ('invoices', '0009_finalized_invoice_tax_guard'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='invoiceevent',
            name='type',
            field=models.CharField(choices=[('created', 'Created'), ('updated', 'Draft updated'), ('finalized', 'Finalized'), ('paid', 'Marked paid'), ('voided', 'Voided'), ('marked_uncollectible', 'Marked uncollectible'), ('pdf_rendered', 'PDF rendered'), ('pdf_failed', 'PDF rendering failed'), ('credit_note_issued', 'Credit note issued'), ('credit_note_voided', 'Credit note voided'), ('credit_note_pdf_rendered', 'Credit note PDF rendered'), ('credit_note_pdf_failed', 'Credit note PDF rendering failed')], max_length=32),
        ),
        migrations.AlterField(
            model_name='invoiceitem',
            name='kind',
            field=models.CharField(choices=[('recurring', 'Recurring fee'), ('usage', 'Usage'), ('minimum', 'Minimum charge true-up'), ('proration', 'Proration'), ('discount', 'Discount'), ('manual', 'Manual'), ('credit_note', 'Credit from a credit note')], default='proration', max_length=16),
        ),
        migrations.AlterField(
            model_name='invoiceline',
            name='kind',
            field=models.CharField(choices=[('recurring', 'Recurring fee'), ('usage', 'Usage'), ('minimum', 'Minimum charge true-up'), ('proration', 'Proration'), ('discount', 'Discount'), ('manual', 'Manual'), ('credit_note', 'Credit from a credit note')], default='recurring', max_length=16),
        ),
        migrations.CreateModel(
            name='CreditNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('number', models.CharField(editable=False, max_length=64)),
                ('status', models.CharField(choices=[('issued', 'Issued'), ('void', 'Void')], default='issued', max_length=16)),
                ('reason', models.CharField(choices=[('duplicate', 'Duplicate charge'), ('product_unsatisfactory', 'Product unsatisfactory'), ('order_change', 'Order change'), ('other', 'Other')], max_length=32)),
                ('memo', models.TextField(blank=True, help_text='Printed on the credit note.')),
                ('subtotal_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('subtotal', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, max_digits=19)),
                ('tax_total_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('tax_total', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, help_text='Tax credited on top of the lines (exclusive rates only).', max_digits=19)),
                ('total_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('total', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, help_text='Everything credited: subtotal plus tax.', max_digits=19)),
                ('amount_due_reduction_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('amount_due_reduction', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, help_text='Taken off what is still due on the (unpaid) invoice.', max_digits=19)),
                ('credit_to_balance_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('credit_to_balance', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, help_text="Credited to the customer's balance, taken off their next invoices.", max_digits=19)),
                ('refund_amount_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('refund_amount', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, help_text='Paid back to the customer (recorded here; paid outside the product).', max_digits=19)),
                ('refund_reference', models.CharField(blank=True, help_text='E.g. the bank transfer reference.', max_length=255)),
                ('reverse_charge', models.BooleanField(default=False)),
                ('issued_at', models.DateTimeField()),
                ('voided_at', models.DateTimeField(blank=True, null=True)),
                ('seller_details', models.JSONField(blank=True, default=dict, editable=False)),
                ('customer_details', models.JSONField(blank=True, default=dict, editable=False)),
                ('pdf', models.FileField(blank=True, editable=False, upload_to=apps.invoices.models.credit_note_pdf_path, verbose_name='PDF')),
                ('pdf_sha256', models.CharField(blank=True, editable=False, max_length=64, verbose_name='PDF SHA-256')),
                ('pdf_rendered_at', models.DateTimeField(blank=True, editable=False, null=True, verbose_name='PDF rendered at')),
                ('balance_item', models.OneToOneField(blank=True, editable=False, help_text='The customer credit this note created, while some of it is waiting.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='credit_note', to='invoices.invoiceitem')),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='accounts.customer')),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='invoices.invoice')),
                ('issued_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-issued_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='CreditNoteLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField(default=0)),
                ('kind', models.CharField(choices=[('invoice_line', 'Invoice line'), ('adjustment', 'Amount'), ('discount_share', "Share of the invoice's discounts"), ('balance_share', 'Share of the balance applied on the invoice')], max_length=16)),
                ('description', models.CharField(max_length=500)),
                ('quantity', models.DecimalField(blank=True, decimal_places=6, help_text='Units credited, when credited by quantity.', max_digits=19, null=True)),
                ('amount_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('amount', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, max_digits=19)),
                ('explanation', models.JSONField(blank=True, default=list)),
                ('credit_note', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='invoices.creditnote')),
                ('invoice_line', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credit_note_lines', to='invoices.invoiceline')),
            ],
            options={
                'ordering': ['credit_note', 'position', 'id'],
            },
        ),
        migrations.CreateModel(
            name='CreditNoteTax',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=128)),
                ('percentage', models.DecimalField(decimal_places=4, max_digits=7)),
                ('inclusive', models.BooleanField(default=False)),
                ('taxable_amount_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('taxable_amount', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, max_digits=19)),
                ('tax_amount_currency', djmoney.models.fields.CurrencyField(choices=apps.core.money.currency_choices, default=None, editable=False, max_length=3)),
                ('tax_amount', djmoney.models.fields.MoneyField(currency_choices=apps.core.money.currency_choices, decimal_places=4, default_currency=None, max_digits=19)),
                ('credit_note', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='taxes', to='invoices.creditnote')),
                ('invoice_tax', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_note_taxes', to='invoices.invoicetax')),
            ],
            options={
                'verbose_name_plural': 'credit note taxes',
                'ordering': ['credit_note', 'id'],
            },
        ),
        migrations.AddIndex(
            model_name='creditnote',
            index=models.Index(fields=['customer', '-issued_at'], name='credit_note_customer_idx'),
        ),
        migrations.AddIndex(
            model_name='creditnote',
            index=models.Index(fields=['issued_at'], name='credit_note_issued_at_idx'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.UniqueConstraint(fields=('number',), name='credit_note_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=django.db.models.lookups.LessThan(django.db.models.functions.math.Abs(django.db.models.expressions.CombinedExpression(models.F('total'), '-', django.db.models.expressions.CombinedExpression(models.F('subtotal'), '+', models.F('tax_total')))), models.Value(Decimal('0.00005'))), name='credit_note_total_is_sum'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=django.db.models.lookups.LessThan(django.db.models.functions.math.Abs(django.db.models.expressions.CombinedExpression(models.F('total'), '-', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('amount_due_reduction'), '+', models.F('credit_to_balance')), '+', models.F('refund_amount')))), models.Value(Decimal('0.00005'))), name='credit_note_settled_in_full'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=models.Q(('total__gt', 0), ('amount_due_reduction__gte', 0), ('credit_to_balance__gte', 0), ('refund_amount__gte', 0)), name='credit_note_amounts_positive'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=models.Q(('subtotal_currency', models.F('total_currency')), ('tax_total_currency', models.F('total_currency')), ('amount_due_reduction_currency', models.F('total_currency')), ('credit_to_balance_currency', models.F('total_currency')), ('refund_amount_currency', models.F('total_currency'))), name='credit_note_single_currency'),
        ),
        migrations.AddConstraint(
            model_name='creditnoteline',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'invoice_line'), _negated=True), ('invoice_line__isnull', False), _connector='OR'), name='credit_note_line_has_invoice_line'),
        ),
        migrations.RunPython(forward, backward),
    ]
