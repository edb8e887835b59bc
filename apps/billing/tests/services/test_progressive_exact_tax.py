"""Progressive billing, exact tax (docs/billing-rules.md, "Progressive billing", "Tax across the period"):
the invoice closing a period charges, per tax rate, the tax of the whole period's base rounded once less
the tax its (non-void) interim invoices charged at that rate, so the period's invoices add up to what a
single invoice would have been, tax included, to the cent. Every amount is computed by hand below.

The example: VAT 20 % (the customer's rate) and a reduced 5 % rate for a one-off charge; a fee of
9.98 USD a month in advance; API calls at 0.37 each; an interim invoice every 5.00 USD of usage; a
10 % coupon for one invoice. Two customers send the same usage: "acme" bills progressively, "plain" does
not (its May invoice is the single invoice of the period).

    5, 12 and 19 April: 14 calls each, 14 × 0.37 = 5.18 per step:
      5 Apr  14 calls  5.18 ≥ 5.00   interim 1 bills 5.18; VAT 5.18 × 20 % = 1.036 → 1.04
     12 Apr  28 calls 10.36 ≥ 10.00  interim 2 bills 10.36 − 5.18 = 5.18; VAT 1.04
     19 Apr  42 calls 15.54 ≥ 15.00  interim 3 bills 15.54 − 10.36 = 5.18; VAT 1.04
     25 Apr  45 calls 16.65 < 20.00  nothing
    1 May, the single invoice ("plain"): one-off 3.30 (5 %), usage 45 × 0.37 = 16.65, fee 9.98,
      discount 10 % × (16.65 + 9.98 = 26.63) = 2.663 → −2.66.
      VAT base 16.65 + 9.98 − 2.66 = 23.97 → 23.97 × 20 % = 4.794 → 4.79; 5 %: 3.30 × 5 % = 0.165 → 0.17.
      Subtotal 3.30 + 23.97 = 27.27; tax 4.96; total 32.23.
    1 May, the final invoice ("acme"): the same lines less 3 × 5.18 = 15.54 of deductions.
      VAT base 23.97 − 15.54 = 8.43. Rounded on its own: 8.43 × 20 % = 1.686 → 1.69, and the period
      would charge 3 × 1.04 + 1.69 = 4.81 VAT instead of 4.79 (2 cents of drift).
      Exact: 4.79 (the whole period's VAT) − 3.12 (the interim invoices') = 1.67; 5 %: 0.17.
      Subtotal 3.30 + 8.43 = 11.73; tax 1.84; total 13.57.
    3 × 6.22 + 13.57 = 32.23 = the single invoice; tax 3 × 1.04 + 1.84 = 4.96."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start, subscription_upcoming_invoice
from apps.billing.services.one_off import OneOffCharge, invoice_item_create
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.billing.tests.services.progressive_usage import send_calls
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    billable_metric_create,
    plan_create,
    plan_version_progressive_billing_set,
)
from apps.catalog.tests.factories import CouponFactory, ProductFactory
from apps.invoices.constants import BillingReason
from apps.invoices.models import Invoice, TaxRate
from apps.invoices.pricing import TaxAmount, TaxRateSpec, tax_breakdown
from apps.invoices.services.lifecycle import invoice_void
from apps.subscriptions.periods import utc
from apps.subscriptions.services import coupon_redeem

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def metrics():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")


@pytest.fixture
def vat():
    return TaxRate.objects.create(name="VAT", percentage=D("20"), country="GB")


@pytest.fixture
def reduced():
    return TaxRate.objects.create(name="Reduced VAT", percentage=D("5"), country="GB", region="ZZ")


FEE = ChargeInput(name="Platform", price_model="flat", prices=[PriceInput(currency="USD", amount=D("9.98"))])
CALLS = ChargeInput(
    name="API calls", kind="usage", metric_code="api_calls", price_model="per_unit",
    prices=[PriceInput(currency="USD", amount=D("0.37"))],
)  # fmt: skip


def _subscribe(code: str, *, progressive: bool, reduced: TaxRate):
    plan = plan_create(product=ProductFactory(name="Cloud"), code=code, name=code.title(), charges=[FEE, CALLS])
    if progressive:
        plan_version_progressive_billing_set(version=plan.versions.get(), currency="USD", amounts=[], every="5")
    customer = CustomerFactory(currency="USD", external_id=code)  # in GB: VAT 20 %
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    coupon_redeem(coupon=CouponFactory(percent_off=D("10"), code=f"ten-{code}"), subscription=subscription,
                  now=utc(2026, 4, 1))  # fmt: skip
    invoice_item_create(
        customer_id=customer.pk, now=utc(2026, 4, 2),
        charge=OneOffCharge(quantity=1, unit_amount="3.30", description="Setup", tax_rate_id=reduced.pk),
    )  # fmt: skip
    return subscription


def _evaluate(subscription, day: int):
    return subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, day, 1))


def _taxes(invoice) -> dict[str, Decimal]:
    return {tax.name: tax.tax_amount.amount for tax in invoice.taxes.all()}


def _may(subscription):
    return Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 5, 1))


def test_three_interim_invoices_and_the_final_invoice_charge_the_tax_of_a_single_invoice_to_the_cent(vat, reduced):
    acme = _subscribe("acme", progressive=True, reduced=reduced)
    plain = _subscribe("plain", progressive=False, reduced=reduced)
    interims = []
    for day in (5, 12, 19):
        send_calls(acme, 14, day=day)
        send_calls(plain, 14, day=day)
        interims.append(_evaluate(acme, day))
    send_calls(acme, 3, day=25)
    send_calls(plain, 3, day=25)
    assert _evaluate(acme, 25) is None  # 16.65 < 20.00

    for interim in interims:  # 5.18 each, VAT 1.036 → 1.04, rounded on its own
        assert interim.billing_reason == BillingReason.SUBSCRIPTION_THRESHOLD
        assert (interim.subtotal, interim.tax_total, interim.total) == (
            Money("5.18", "USD"), Money("1.04", "USD"), Money("6.22", "USD"),
        )  # fmt: skip
        assert _taxes(interim) == {"VAT": D("1.04")}

    preview = subscription_upcoming_invoice(subscription_id=acme.pk, now=utc(2026, 4, 30))
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))
    single, final = _may(plain), _may(acme)

    assert (single.subtotal, single.tax_total, single.total) == (
        Money("27.27", "USD"), Money("4.96", "USD"), Money("32.23", "USD"),
    )  # fmt: skip
    assert _taxes(single) == {"VAT": D("4.79"), "Reduced VAT": D("0.17")}
    assert sorted(line.amount.amount for line in final.lines.all()) == sorted([
        D("3.30"), D("16.65"), D("-5.18"), D("-5.18"), D("-5.18"), D("9.98"), D("-2.66"),
    ])  # fmt: skip
    # VAT: 4.79 − 3 × 1.04 = 1.67 (not 8.43 × 20 % = 1.686 → 1.69); 5 %: 0.17.
    assert _taxes(final) == {"VAT": D("1.67"), "Reduced VAT": D("0.17")}
    assert {tax.name: tax.taxable_amount.amount for tax in final.taxes.all()} == {
        "VAT": D("8.43"), "Reduced VAT": D("3.30"),
    }  # fmt: skip
    assert (final.subtotal, final.tax_total, final.total) == (
        Money("11.73", "USD"), Money("1.84", "USD"), Money("13.57", "USD"),
    )  # fmt: skip
    # The period: 3 × 6.22 + 13.57 = 32.23, tax 3 × 1.04 + 1.84 = 4.96 — the single invoice's.
    assert sum((invoice.tax_total for invoice in interims), final.tax_total) == single.tax_total
    assert sum((invoice.total for invoice in interims), final.total) == single.total
    # The preview of 30 April showed what the renewal billed.
    assert (preview.tax_total, preview.total) == (D("1.84"), D("13.57"))


def test_a_voided_interim_invoice_charges_no_tax_and_the_final_invoice_completes_the_others(vat, reduced):
    """Interim 2 is voided on 13 April: interim 3 bills 15.54 − 5.18 = 10.36, VAT 2.072 → 2.07. The final
    invoice deducts interims 1 and 3 (15.54): VAT base 8.43 as before; VAT 4.79 − (1.04 + 2.07) = 1.68
    (on its own: 1.69, and the period would charge 4.80). Total 11.73 + 1.68 + 0.17 = 13.58;
    6.22 + 12.43 + 13.58 = 32.23."""
    acme = _subscribe("acme", progressive=True, reduced=reduced)
    plain = _subscribe("plain", progressive=False, reduced=reduced)
    interims = []
    for day in (5, 12, 19):
        if day == 19:
            invoice_void(invoice_id=interims[1].pk, now=utc(2026, 4, 13))
        send_calls(acme, 14, day=day)
        send_calls(plain, 14, day=day)
        interims.append(_evaluate(acme, day))
    send_calls(acme, 3, day=25)
    send_calls(plain, 3, day=25)
    first, voided, third = interims

    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))
    single, final = _may(plain), _may(acme)

    assert (third.subtotal, third.tax_total, third.total) == (
        Money("10.36", "USD"), Money("2.07", "USD"), Money("12.43", "USD"),
    )  # fmt: skip
    assert sorted(line.amount.amount for line in final.lines.all()) == sorted([
        D("3.30"), D("16.65"), D("-5.18"), D("-10.36"), D("9.98"), D("-2.66"),
    ])  # fmt: skip
    assert _taxes(final) == {"VAT": D("1.68"), "Reduced VAT": D("0.17")}
    assert (final.tax_total, final.total) == (Money("1.85", "USD"), Money("13.58", "USD"))
    assert first.total + third.total + final.total == single.total == Money("32.23", "USD")
    assert first.tax_total + third.tax_total + final.tax_total == single.tax_total


def test_an_inclusive_rate_completes_the_earlier_tax_of_the_gross_base():
    """19 % included: earlier invoices 10.00 + 10.00 gross, each containing 10.00 × 19/119 = 1.5966 → 1.60;
    this one 10.00 gross. Whole 30.00 → 30.00 × 19/119 = 4.7899 → 4.79; less 3.20 = 1.59 (on its own:
    1.60, and 4.80 in all). The net is 10.00 − 1.59 = 8.41."""
    rate = TaxRateSpec(rate_id=7, name="MwSt", percentage=D("19"), inclusive=True)
    earlier = TaxAmount(rate_id=7, name="MwSt", percentage=D("19"), inclusive=True, taxable_amount=D("8.40"),
                        tax_amount=D("1.60"))  # fmt: skip
    other_rate = TaxAmount(rate_id=8, name="Other", percentage=D("19"), inclusive=True, taxable_amount=D("8.40"),
                           tax_amount=D("1.60"))  # fmt: skip

    (alone,) = tax_breakdown(lines=[(D("10.00"), rate)], currency="EUR")
    (completed,) = tax_breakdown(lines=[(D("10.00"), rate)], currency="EUR", invoiced=[earlier, earlier, other_rate])

    assert (alone.tax_amount, alone.taxable_amount) == (D("1.60"), D("8.40"))
    assert (completed.tax_amount, completed.taxable_amount) == (D("1.59"), D("8.41"))
