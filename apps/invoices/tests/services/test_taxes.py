"""Taxes on invoices: the customer's rate, per-rate totals, exemption and the EU reverse charge."""

from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import override_settings
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.catalog.tests.factories import CouponFactory, PlanFactory
from apps.core.errors import NotEditable
from apps.invoices.constants import REVERSE_CHARGE_NOTE
from apps.invoices.models import Invoice, InvoiceItem, InvoiceTax, TaxRate
from apps.invoices.services import invoice_finalize
from apps.invoices.services.lifecycle import invoice_recompute_totals
from apps.invoices.services.pdf import invoice_pdf_context
from apps.invoices.services.taxes import customer_tax_treatment
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem

pytestmark = pytest.mark.django_db


def _bill(*, price: str, currency: str = "EUR", coupon=None, credit: str | None = None, **customer) -> Invoice:
    plan = PlanFactory(name="Pro", product__name="Hosting", prices=[Money(price, currency)])
    subscription = subscription_start(
        customer=CustomerFactory(currency=currency, **customer), plan=plan, quantity=1,
        started_at=utc(2026, 5, 1), now=utc(2026, 4, 30),
    )  # fmt: skip
    if coupon is not None:
        coupon_redeem(coupon=coupon, subscription=subscription, now=utc(2026, 4, 30))
    if credit is not None:
        InvoiceItem.objects.create(
            customer=subscription.customer, description="Credit", amount=Money(credit, currency),
            created_at=utc(2026, 4, 30),
        )  # fmt: skip
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=24):  # a draft, finalized when a test says so
        bill_due_subscriptions(now=utc(2026, 5, 1, 1))
    return Invoice.objects.get(subscription=subscription)


def _taxes(invoice):
    return [
        (tax.name, tax.percentage, tax.inclusive, tax.taxable_amount.amount, tax.tax_amount.amount)
        for tax in invoice.taxes.all()
    ]


def _amounts(invoice):
    return invoice.subtotal.amount, invoice.tax_total.amount, invoice.total.amount


def test_an_exclusive_rate_is_added_to_the_invoice():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")

    invoice = _bill(price="190.00", country="DE")

    assert _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("190.00"), Decimal("36.10"))]
    assert _amounts(invoice) == (Decimal("190.00"), Decimal("36.10"), Decimal("226.10"))
    assert invoice.reverse_charge is False


def test_an_inclusive_rate_is_shown_but_not_added():
    TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB", inclusive=True)

    invoice = _bill(price="120.00", currency="GBP", country="GB")

    assert _taxes(invoice) == [("VAT", Decimal("20"), True, Decimal("100.00"), Decimal("20.00"))]
    assert _amounts(invoice) == (Decimal("120.00"), Decimal("0.00"), Decimal("120.00"))


def test_a_state_rate_is_chosen_over_the_country_rate():
    TaxRate.objects.create(name="Federal", percentage=Decimal("5"), country="US")
    TaxRate.objects.create(name="CA sales tax", percentage=Decimal("7.25"), country="US", region="CA")

    california = _bill(price="100.00", currency="USD", country="US", state="CA")
    oregon = _bill(price="100.00", currency="USD", country="US", state="OR")

    assert _taxes(california) == [("CA sales tax", Decimal("7.25"), False, Decimal("100.00"), Decimal("7.25"))]
    assert _taxes(oregon) == [("Federal", Decimal("5"), False, Decimal("100.00"), Decimal("5.00"))]


def test_an_inactive_rate_is_not_charged():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE", is_active=False)

    invoice = _bill(price="190.00", country="DE")

    assert _taxes(invoice) == []
    assert _amounts(invoice) == (Decimal("190.00"), Decimal("0.00"), Decimal("190.00"))


def test_an_exempt_customer_pays_no_tax():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")

    invoice = _bill(price="190.00", country="DE", tax_exempt=True)

    assert _taxes(invoice) == []
    assert invoice.total == Money("190.00", "EUR")
    assert invoice.reverse_charge is False


@override_settings(SELLER={"name": "Acme", "country": "IE"})
def test_an_eu_business_in_another_member_state_is_reverse_charged_and_the_bill_says_so():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")

    invoice = _bill(price="190.00", country="DE", tax_id="DE812345673")
    invoice = invoice_finalize(invoice_id=invoice.pk, now=utc(2026, 5, 1, 2))

    assert _taxes(invoice) == []
    assert invoice.reverse_charge is True
    assert _amounts(invoice) == (Decimal("190.00"), Decimal("0.00"), Decimal("190.00"))
    assert REVERSE_CHARGE_NOTE in render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice))


@override_settings(SELLER={"name": "Acme", "country": "DE"})
def test_no_reverse_charge_in_the_sellers_own_country_nor_without_a_tax_id():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")

    same_country = customer_tax_treatment(customer=CustomerFactory(country="DE", tax_id="DE812345673"))
    no_tax_id = customer_tax_treatment(customer=CustomerFactory(country="FR", tax_id=""))
    outside_eu = customer_tax_treatment(customer=CustomerFactory(country="US", tax_id="12-3456789"))

    assert same_country.rate is not None and same_country.reverse_charge is False
    assert (no_tax_id.rate, no_tax_id.reverse_charge) == (None, False)
    assert (outside_eu.rate, outside_eu.reverse_charge) == (None, False)


@override_settings(SELLER={"name": "Acme", "country": "IE"})
@pytest.mark.parametrize(
    ("country", "tax_id"),
    [
        ("DE", "DE812345673"),
        ("FR", "FR11123456782"),
        ("NL", "NL812345678B01"),
        ("BE", "BE0123456749"),
        ("GR", "EL094259216"),
        ("ES", "ESB12345674"),
    ],
)
def test_the_reverse_charge_applies_with_a_valid_vat_number_of_the_customers_member_state(country, tax_id):
    treatment = customer_tax_treatment(customer=CustomerFactory(country=country, tax_id=tax_id))

    assert (treatment.rate, treatment.reverse_charge) == (None, True)


@override_settings(SELLER={"name": "Acme", "country": "IE"})
def test_no_reverse_charge_without_a_valid_vat_number_the_customer_pays_the_vat():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    # Recorded before tax IDs were checked: the check digit is wrong (the migration marks it invalid).
    legacy = CustomerFactory(country="DE", tax_id="DE123456789")
    # A tax ID of another kind is never checked, so never enough for the reverse charge.
    other_kind = CustomerFactory(country="DE", tax_id="21/815/08150", tax_id_type="other")
    # Marked valid, but not a VAT number of the customer's (new) country: moved without the services.
    moved = CustomerFactory(country="DE", tax_id="DE812345673")
    Customer.objects.filter(pk=moved.pk).update(country="FR")
    moved.refresh_from_db()

    assert (legacy.tax_id_status, other_kind.tax_id_status, moved.tax_id_status) == ("invalid", "unverified", "valid")
    for customer in (legacy, other_kind):
        treatment = customer_tax_treatment(customer=customer)
        assert treatment.reverse_charge is False and treatment.rate is not None
    assert customer_tax_treatment(customer=moved).reverse_charge is False

    invoice = _bill(price="190.00", country="DE", tax_id="DE123456789")
    assert invoice.reverse_charge is False
    assert _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("190.00"), Decimal("36.10"))]


def test_a_discount_lowers_the_taxable_base():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    coupon = CouponFactory(name="Launch", code="launch", percent_off=Decimal("10"), duration="once")

    invoice = _bill(price="200.00", country="DE", coupon=coupon)

    # 200.00 − 20.00 = 180.00; 19 % of it: 34.20.
    assert _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("180.00"), Decimal("34.20"))]
    assert _amounts(invoice) == (Decimal("180.00"), Decimal("34.20"), Decimal("214.20"))


def test_a_credit_lowers_the_taxable_base():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")

    invoice = _bill(price="190.00", country="DE", credit="-90.00")

    assert _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("100.00"), Decimal("19.00"))]
    assert _amounts(invoice) == (Decimal("100.00"), Decimal("19.00"), Decimal("119.00"))


def test_a_finalized_invoice_keeps_its_taxes_when_the_rate_or_customer_changes():
    rate = TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    invoice = _bill(price="190.00", country="DE")
    invoice = invoice_finalize(invoice_id=invoice.pk, now=utc(2026, 5, 1, 2))
    rate.percentage = Decimal("16")
    rate.name = "Reduced VAT"
    rate.save()
    invoice.customer.tax_exempt = True
    invoice.customer.save()

    with pytest.raises(NotEditable):
        invoice_recompute_totals(invoice)

    invoice.refresh_from_db()
    assert _taxes(invoice) == [("VAT", Decimal("19"), False, Decimal("190.00"), Decimal("36.10"))]
    assert _amounts(invoice) == (Decimal("190.00"), Decimal("36.10"), Decimal("226.10"))
    assert InvoiceTax.objects.count() == 1


def test_a_draft_takes_the_rate_in_force_when_it_is_finalized():
    rate = TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    invoice = _bill(price="100.00", country="DE")
    rate.percentage = Decimal("16")
    rate.save()

    invoice = invoice_finalize(invoice_id=invoice.pk, now=utc(2026, 5, 1, 2))

    assert _taxes(invoice) == [("VAT", Decimal("16"), False, Decimal("100.00"), Decimal("16.00"))]
    assert invoice.total == Money("116.00", "EUR")


def test_the_upcoming_invoice_preview_adds_the_tax_the_invoice_will_have():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    invoice = _bill(price="190.00", country="DE")

    upcoming = subscription_upcoming_invoice(subscription_id=invoice.subscription_id, now=utc(2026, 5, 2))

    assert (upcoming.subtotal, upcoming.tax_total, upcoming.total) == (
        Decimal("190.00"), Decimal("36.10"), Decimal("226.10"),
    )  # fmt: skip
    assert [(tax.name, tax.tax_amount) for tax in upcoming.taxes] == [("VAT", Decimal("36.10"))]


def test_the_bill_prints_the_tax_per_rate():
    TaxRate.objects.create(name="VAT", percentage=Decimal("19"), country="DE")
    invoice = invoice_finalize(invoice_id=_bill(price="190.00", country="DE").pk, now=utc(2026, 5, 1, 2))

    html = render_to_string("invoices/invoice_pdf.html", invoice_pdf_context(invoice))

    assert "VAT 19 %" in html
    assert REVERSE_CHARGE_NOTE not in html
