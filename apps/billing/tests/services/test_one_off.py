"""One-off charges: pending invoice items billed once on the customer's next run invoice, and one-off
invoices issued at once. Amounts worked out by hand in each test."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_upcoming_invoice
from apps.billing.services.billing_chunk import billing_chunk_bill
from apps.billing.services.one_off import (
    OneOffCharge,
    invoice_item_create,
    invoice_item_delete,
    invoice_item_update,
    invoice_one_off_create,
)
from apps.catalog.tests.factories import PlanFactory
from apps.core.errors import NotEditable, ValidationFailed
from apps.invoices.constants import BillingReason, InvoiceLineKind, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem, InvoiceLine, TaxRate
from apps.invoices.services import invoice_void
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_GROUPING = "per_subscription"


@pytest.fixture
def vat():
    return TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")


@pytest.fixture
def reduced():
    return TaxRate.objects.create(name="Reduced VAT", percentage=Decimal("5"), country="GB", region="ZZ")


def _lines(invoice):
    return [(line.kind, line.description, line.quantity, line.amount) for line in invoice.lines.order_by("position")]


def test_pending_items_are_billed_once_on_the_next_run_invoice_with_their_taxes_to_the_cent(vat, reduced):
    customer = CustomerFactory(currency="USD")
    subscription = make_subscription(customer=customer, plan=PlanFactory(prices=[Money("99.00", "USD")]),
                                     started_at=utc(2026, 1, 1))  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 1, 1))
    # 3 × 33.333 = 99.999 → 100.00 (rounded once), at the customer's 20 %; 49.99 at its own 5 %.
    setup = invoice_item_create(
        customer_id=customer.pk, currency="USD", now=utc(2026, 1, 10),
        charge=OneOffCharge(quantity="3", unit_amount="33.333", description="Onboarding workshop"),
    )  # fmt: skip
    hardware = invoice_item_create(
        customer_id=customer.pk, now=utc(2026, 1, 11),
        charge=OneOffCharge(quantity=1, unit_amount=Decimal("49.99"), description="Sensor kit", tax_rate_id=reduced.pk),
    )  # fmt: skip
    assert (setup.amount, hardware.amount) == (Money("100.00", "USD"), Money("49.99", "USD"))

    run = bill_due_subscriptions(now=utc(2026, 2, 1))

    assert run.invoiced_count == 1
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 2, 1))
    assert invoice.status == InvoiceStatus.OPEN
    assert [line[1:] for line in _lines(invoice)][1:] == [
        ("Onboarding workshop", Decimal("3"), Money("100.00", "USD")),
        ("Sensor kit", Decimal("1"), Money("49.99", "USD")),
    ]
    assert {line.kind for line in invoice.lines.all()} == {InvoiceLineKind.RECURRING, InvoiceLineKind.ONE_OFF}
    # Tax: 20 % of (99.00 + 100.00) = 39.80; 5 % of 49.99 = 2.4995 → 2.50. Total 248.99 + 42.30.
    assert sorted((tax.name, tax.taxable_amount, tax.tax_amount) for tax in invoice.taxes.all()) == [
        ("Reduced VAT", Money("49.99", "USD"), Money("2.50", "USD")),
        ("VAT", Money("199.00", "USD"), Money("39.80", "USD")),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Money("248.99", "USD"), Money("42.30", "USD"), Money("291.29", "USD"),
    )  # fmt: skip
    setup.refresh_from_db()
    hardware.refresh_from_db()
    assert (setup.invoice_id, hardware.invoice_id) == (invoice.pk, invoice.pk)

    bill_due_subscriptions(now=utc(2026, 3, 1))
    march = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 3, 1))
    assert [line[0] for line in _lines(march)] == [InvoiceLineKind.RECURRING]
    assert InvoiceLine.objects.filter(kind=InvoiceLineKind.ONE_OFF).count() == 2


def test_the_bulk_path_leaves_a_customer_with_pending_items_to_the_one_by_one_path():
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    with_item = make_subscription(plan=plan, started_at=utc(2026, 1, 1))
    plain = make_subscription(plan=plan, started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    invoice_item_create(
        customer_id=with_item.customer_id, now=utc(2026, 1, 2),
        charge=OneOffCharge(quantity=1, unit_amount="250", description="Setup fee"),
    )  # fmt: skip

    outcome = billing_chunk_bill(subscription_ids=[with_item.pk, plain.pk], now=utc(2026, 2, 1))

    assert (outcome.one_by_one_ids, outcome.billed_subscription_ids) == ([with_item.pk], [plain.pk])
    run = bill_due_subscriptions(now=utc(2026, 2, 1))  # the one-by-one path bills it, with the item
    assert run.invoiced_count == 1
    invoice = Invoice.objects.get(subscription=with_item, period_start_at=utc(2026, 2, 1))
    assert invoice.total == Money("260.00", "USD")


def test_the_upcoming_invoice_shows_the_pending_item_and_the_voided_draft_gives_it_back(settings, vat):
    settings.INVOICE_DRAFT_GRACE_HOURS = 24
    subscription = make_subscription(plan=PlanFactory(prices=[Money("20.00", "USD")]), started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item = invoice_item_create(
        customer_id=subscription.customer_id, now=utc(2026, 1, 5),
        charge=OneOffCharge(quantity="2", unit_amount="7.50", description="Extra SIM cards"),
    )  # fmt: skip

    upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk, now=utc(2026, 1, 20))
    assert [(line.kind, line.description, line.amount) for line in upcoming.lines][1:] == [
        (InvoiceLineKind.ONE_OFF, "Extra SIM cards", Decimal("15.00")),
    ]
    # 20.00 + 15.00, VAT 20 %: 7.00.
    assert (upcoming.subtotal, upcoming.tax_total, upcoming.total) == (
        Decimal("35.00"),
        Decimal("7.00"),
        Decimal("42.00"),
    )

    bill_due_subscriptions(now=utc(2026, 2, 1))
    draft = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 2, 1))
    item.refresh_from_db()
    assert (draft.status, item.invoice_id) == (InvoiceStatus.DRAFT, draft.pk)
    with pytest.raises(NotEditable):
        invoice_item_update(item_id=item.pk, changes={"quantity": "3"})
    with pytest.raises(NotEditable):
        invoice_item_delete(item_id=item.pk)

    invoice_void(invoice_id=draft.pk, reason="wrong period")
    item.refresh_from_db()
    assert item.invoice_id is None  # waiting again, for the next invoice


def test_a_pending_item_is_changed_or_deleted_until_billed():
    customer = CustomerFactory(currency="EUR")
    item = invoice_item_create(
        customer_id=customer.pk, now=utc(2026, 1, 5),
        charge=OneOffCharge(quantity="1", unit_amount="100", description="Consulting"),
    )  # fmt: skip

    item = invoice_item_update(item_id=item.pk, changes={"quantity": "2.5", "unit_amount": "120.004"})

    # 2.5 × 120.004 = 300.01 exactly.
    assert (item.quantity, item.unit_amount, item.amount) == (
        Decimal("2.5"),
        Money("120.004", "EUR"),
        Money("300.01", "EUR"),
    )
    assert item.explanation == ["2.5 × 120.004 EUR"]
    invoice_item_delete(item_id=item.pk)
    assert not InvoiceItem.objects.exists()


@pytest.mark.parametrize(
    ("charge", "currency", "fields"),
    [
        (OneOffCharge(quantity="1", unit_amount="10", description="x"), "EUR", ["currency"]),
        (OneOffCharge(quantity="-1", unit_amount="10", description="x"), None, ["quantity"]),
        (OneOffCharge(quantity="0", unit_amount="10", description="x"), None, ["quantity"]),
        (OneOffCharge(quantity="two", unit_amount="10", description="x"), None, ["quantity"]),
        (OneOffCharge(quantity="1", unit_amount="ten", description="x"), None, ["unit_amount"]),
        (OneOffCharge(quantity="1", unit_amount="-5", description="x"), None, ["unit_amount"]),
        (OneOffCharge(quantity="1", unit_amount="10", description="x", tax_rate_id=999999), None, ["tax_rate"]),
        (OneOffCharge(quantity="1", unit_amount="10", description="x", product_id=999999), None, ["product"]),
        (OneOffCharge(quantity="1", unit_amount="10", description="  "), None, ["description"]),
        (
            OneOffCharge(
                quantity="1",
                unit_amount="10",
                description="x",
                period_start_at=utc(2026, 2, 1),
                period_end_at=utc(2026, 1, 1),
            ),
            None,
            ["period_end_at"],
        ),  # fmt: skip
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(charge, currency, fields):
    customer = CustomerFactory(currency="USD")

    with pytest.raises(ValidationFailed) as error:
        invoice_item_create(customer_id=customer.pk, charge=charge, currency=currency)

    assert sorted(error.value.fields) == fields
    assert not InvoiceItem.objects.exists()


def test_an_inactive_tax_rate_is_refused():
    rate = TaxRate.objects.create(name="Old VAT", percentage=Decimal("17.5"), country="GB", is_active=False)
    customer = CustomerFactory()

    with pytest.raises(ValidationFailed) as error:
        invoice_item_create(
            customer_id=customer.pk,
            charge=OneOffCharge(quantity=1, unit_amount=1, description="x", tax_rate_id=rate.pk),
        )

    assert list(error.value.fields) == ["tax_rate"]


def test_one_off_invoice_with_one_bad_line_writes_nothing():
    customer = CustomerFactory()

    with pytest.raises(ValidationFailed) as error:
        invoice_one_off_create(
            customer_id=customer.pk,
            charges=[
                OneOffCharge(quantity=1, unit_amount="10", description="Fine"),
                OneOffCharge(quantity="-2", unit_amount="10", description="Wrong"),
            ],
        )

    assert error.value.fields == {"lines.1.quantity": ["Must be greater than zero."]}
    assert not Invoice.objects.exists()
    assert not InvoiceLine.objects.exists()


def test_one_off_invoice_is_issued_at_once_and_numbered_in_the_same_series(vat, reduced):
    subscription = make_subscription(plan=PlanFactory(prices=[Money("99.00", "USD")]), started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    first = Invoice.objects.get(subscription=subscription)

    invoice = invoice_one_off_create(
        customer_id=subscription.customer_id, currency="USD", now=utc(2026, 1, 15), memo="PO 4711",
        charges=[
            OneOffCharge(quantity=1, unit_amount="1200.00", description="Installation",
                         period_start_at=utc(2026, 1, 12), period_end_at=utc(2026, 1, 14)),
            OneOffCharge(quantity="4", unit_amount="19.995", description="Gateway", tax_rate_id=reduced.pk),
        ],
    )  # fmt: skip

    # 4 × 19.995 = 79.98. VAT 20 % of 1,200.00 = 240.00; 5 % of 79.98 = 3.999 → 4.00.
    assert (invoice.billing_reason, invoice.subscription_id, invoice.status) == (
        BillingReason.MANUAL,
        None,
        InvoiceStatus.OPEN,
    )
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Money("1279.98", "USD"),
        Money("244.00", "USD"),
        Money("1523.98", "USD"),
    )
    assert first.number == "INV-2026-000001"
    assert invoice.number == "INV-2026-000002"
    assert (invoice.period_start_at, invoice.period_end_at) == (utc(2026, 1, 12), utc(2026, 1, 14))
    assert [line[1:] for line in _lines(invoice)] == [
        ("Installation", Decimal("1"), Money("1200.00", "USD")),
        ("Gateway", Decimal("4"), Money("79.98", "USD")),
    ]
    assert not InvoiceItem.objects.exists()  # nothing waits: the invoice billed it all


def test_one_off_invoice_waits_for_review_as_a_draft_unless_finalized_at_once(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 48
    customer = CustomerFactory()
    charge = OneOffCharge(quantity=1, unit_amount="50", description="Training")

    draft = invoice_one_off_create(customer_id=customer.pk, charges=[charge], now=utc(2026, 1, 15))
    issued = invoice_one_off_create(customer_id=customer.pk, charges=[charge], now=utc(2026, 1, 15), finalize=True)

    assert (draft.status, draft.number, draft.auto_finalize_at) == (InvoiceStatus.DRAFT, None, utc(2026, 1, 17))
    assert (issued.status, issued.number) == (InvoiceStatus.OPEN, "INV-2026-000001")
    # The billing run issues the draft once its review time is over.
    bill_due_subscriptions(now=utc(2026, 1, 17))
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.OPEN, "INV-2026-000002")


def test_a_grouped_invoice_takes_the_pending_item_once(settings):
    settings.INVOICE_GROUPING = "per_customer"
    customer = CustomerFactory(currency="USD")
    plan = PlanFactory(prices=[Money("10.00", "USD")])
    for _ in range(2):
        make_subscription(customer=customer, plan=plan, started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item = invoice_item_create(
        customer_id=customer.pk, now=utc(2026, 1, 5),
        charge=OneOffCharge(quantity="1", unit_amount="500", description="Setup fee"),
    )  # fmt: skip

    bill_due_subscriptions(now=utc(2026, 2, 1))

    invoice = Invoice.objects.get(customer=customer, period_start_at=utc(2026, 2, 1))
    assert invoice.subscription_id is None  # one invoice for both subscriptions
    assert invoice.total == Money("520.00", "USD")
    item.refresh_from_db()
    assert item.invoice_id == invoice.pk


def test_a_subscription_ending_bills_the_pending_item_on_its_final_invoice():
    from apps.billing.services import subscription_cancel

    subscription = make_subscription(plan=PlanFactory(prices=[Money("10.00", "USD")]), started_at=utc(2026, 1, 1))
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item = invoice_item_create(
        customer_id=subscription.customer_id, now=utc(2026, 1, 5),
        charge=OneOffCharge(quantity="1", unit_amount="80", description="Removal of the hardware"),
    )  # fmt: skip

    subscription_cancel(subscription_id=subscription.pk, when="period_end", now=utc(2026, 1, 10))
    bill_due_subscriptions(now=utc(2026, 2, 1))

    item.refresh_from_db()
    final = Invoice.objects.get(pk=item.invoice_id)
    assert [line[1:] for line in _lines(final)] == [("Removal of the hardware", Decimal("1"), Money("80.00", "USD"))]
    assert final.status == InvoiceStatus.OPEN
