"""Which tax a customer pays, and the per-rate tax of a draft invoice (see docs/billing-rules.md)."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext
from djmoney.money import Money

from apps.accounts.constants import EU_COUNTRIES, TaxIdStatus, TaxIdType
from apps.accounts.models import Customer
from apps.accounts.tax_ids import eu_vat_number_is_valid
from apps.core.errors import NotFound, ValidationFailed
from apps.core.validation import validate_instance

from ..constants import AFTER_TAX_LINE_KINDS, InvoiceStatus
from ..models import Invoice, InvoiceTax, ProgressiveCrossing, TaxRate
from ..pricing import TaxAmount, TaxRateSpec, tax_breakdown


@dataclass(frozen=True)
class TaxTreatment:
    rate: TaxRate | None
    reverse_charge: bool = False


def customer_is_reverse_charged(*, customer: Customer) -> bool:
    """EU reverse charge: a customer in another EU member state than the seller, with a valid VAT
    number of that state on file (format and check digits; see apps/accounts/tax_ids.py)."""
    country = str(customer.country.code)
    seller_country = str(settings.SELLER.get("country", "")).upper()
    return (
        country in EU_COUNTRIES
        and country != seller_country
        and customer.tax_id_type == TaxIdType.EU_VAT
        and customer.tax_id_status == TaxIdStatus.VALID
        and eu_vat_number_is_valid(tax_id=customer.tax_id, country=country)
    )


def customer_tax_treatment(*, customer: Customer) -> TaxTreatment:
    """Exempt customers pay no tax; reverse-charged ones neither (the bill says why); everyone else
    the active rate of their region, or else of their country; no rate on file means no tax."""
    if customer.tax_exempt or customer_is_reverse_charged(customer=customer):
        return customer_tax_treatment_among(customer=customer, rates=[])
    rates = TaxRate.objects.filter(country=customer.country, is_active=True)
    return customer_tax_treatment_among(customer=customer, rates=list(rates))


def active_tax_rates(*, countries: set[str]) -> list[TaxRate]:
    """The active rates of these countries, for `customer_tax_treatment_among` (one query for a whole
    chunk of the billing run)."""
    return list(TaxRate.objects.filter(country__in=countries, is_active=True))


def customer_tax_treatment_among(*, customer: Customer, rates: list[TaxRate]) -> TaxTreatment:
    """`customer_tax_treatment` choosing among `rates` (active rates, loaded by the caller): the newest
    rate of the customer's region, else the newest of the whole country."""
    if customer.tax_exempt:
        return TaxTreatment(rate=None)
    if customer_is_reverse_charged(customer=customer):
        return TaxTreatment(rate=None, reverse_charge=True)
    country = str(customer.country.code)
    candidates = sorted(
        (rate for rate in rates if rate.is_active and str(rate.country.code) == country),
        key=lambda rate: (rate.created_at, rate.pk),
        reverse=True,
    )
    region = customer.state.strip().lower()
    if region:
        regional = next((rate for rate in candidates if rate.region.lower() == region), None)
        if regional is not None:
            return TaxTreatment(rate=regional)
    return TaxTreatment(rate=next((rate for rate in candidates if rate.region == ""), None))


def tax_rate_spec(rate: TaxRate | None) -> TaxRateSpec | None:
    if rate is None:
        return None
    return TaxRateSpec(rate_id=rate.pk, name=rate.name, percentage=rate.percentage, inclusive=rate.inclusive)


def customer_tax_breakdown(
    *,
    customer: Customer,
    amounts: list[Decimal],
    currency: str,
    rates: Sequence[TaxRate | None] | None = None,
    invoiced: Sequence[TaxAmount] = (),
) -> tuple[list[TaxAmount], bool]:
    """The taxes per rate of these (rounded) line amounts for this customer, and whether the reverse
    charge applies. Every line is taxed at the customer's rate, but a line given a rate of its own in
    `rates` (a one-off charge's, same order as `amounts`) is taxed at that one; exempt and
    reverse-charged customers pay no tax on any line. `invoiced`: the taxes of the interim invoices
    whose base these lines complete (see `tax_breakdown`). Writes nothing."""
    treatment = customer_tax_treatment(customer=customer)
    default = tax_rate_spec(treatment.rate)
    untaxed = customer.tax_exempt or treatment.reverse_charge
    own = list(rates) if rates is not None else [None] * len(amounts)
    lines = [
        (amount, None if untaxed else (tax_rate_spec(rate) if rate is not None else default))
        for amount, rate in zip(amounts, own, strict=True)
    ]
    return tax_breakdown(lines=lines, currency=currency, invoiced=invoiced), treatment.reverse_charge


def is_taxed_kind(kind: str) -> bool:
    """Every line is taxed but the credits from credit notes: they carry their own tax already and are
    taken off after tax."""
    return kind not in AFTER_TAX_LINE_KINDS


def interim_invoice_taxes(*, crossings: QuerySet[ProgressiveCrossing]) -> list[TaxAmount]:
    """The taxes charged by the interim invoices of these progressive-billing crossings (voided ones
    charged nothing), per rate, as `tax_breakdown`'s `invoiced`."""
    rows = InvoiceTax.objects.filter(invoice__progressive_crossing__in=crossings).exclude(
        invoice__status=InvoiceStatus.VOID
    )
    return [
        TaxAmount(
            rate_id=row.rate_id,
            name=row.name,
            percentage=row.percentage,
            inclusive=row.inclusive,
            taxable_amount=row.taxable_amount.amount,
            tax_amount=row.tax_amount.amount,
        )
        for row in rows.order_by("pk")
    ]


def invoice_tax_breakdown(*, invoice: Invoice) -> tuple[list[TaxAmount], bool]:
    """The draft's taxes per rate from its taxed lines, and whether the reverse charge applies. An
    invoice closing a progressive-billing period completes the tax its interim invoices charged: per
    rate, the tax of the whole period's base rounded once, less what they charged at it."""
    lines = [line for line in invoice.lines.all() if is_taxed_kind(line.kind)]
    own_rates = {rate.pk: rate for rate in TaxRate.objects.filter(pk__in={line.tax_rate_id for line in lines} - {None})}
    return customer_tax_breakdown(
        customer=invoice.customer,
        amounts=[line.amount.amount for line in lines],
        currency=invoice.currency,
        rates=[own_rates.get(line.tax_rate_id) if line.tax_rate_id is not None else None for line in lines],
        invoiced=interim_invoice_taxes(crossings=ProgressiveCrossing.objects.filter(deducted_by=invoice)),
    )


def invoice_taxes_store(*, invoice: Invoice, breakdown: list[TaxAmount]) -> None:
    """Replace the draft's per-rate tax rows by `breakdown` (snapshots of name and percentage)."""
    currency = invoice.currency
    InvoiceTax.objects.filter(invoice=invoice).delete()
    InvoiceTax.objects.bulk_create(
        InvoiceTax(
            invoice=invoice,
            rate_id=tax.rate_id,
            name=tax.name,
            percentage=tax.percentage,
            inclusive=tax.inclusive,
            taxable_amount=Money(tax.taxable_amount, currency),
            tax_amount=Money(tax.tax_amount, currency),
        )
        for tax in breakdown
    )


TAX_RATE_EDITABLE_FIELDS = ("name", "percentage", "is_active")
# What a rate is about never changes (issued invoices name the rate): a new one replaces it.
TAX_RATE_FIXED_FIELDS = ("country", "region", "inclusive")


def tax_rate_create(
    *,
    name: str,
    percentage: Decimal,
    country: str,
    region: str = "",
    inclusive: bool = False,
    is_active: bool = True,
) -> TaxRate:
    """A tax rate for customers in `country` (and `region`, a state code, when given). It applies to
    invoices made from now on; issued invoices keep the rate they were issued with."""
    rate = TaxRate(
        name=name,
        percentage=percentage,
        country=country,
        region=region.strip(),
        inclusive=inclusive,
        is_active=is_active,
    )
    validate_instance(rate)
    rate.save()
    return rate


@transaction.atomic
def tax_rate_update(*, tax_rate_id: int, **changes) -> TaxRate:
    """Change a rate (e.g. a new percentage, or `is_active=False` to stop charging it). Drafts pick the
    change up when their totals are computed again; issued invoices never change."""
    rate = TaxRate.objects.select_for_update().filter(pk=tax_rate_id).first()
    if rate is None:
        raise NotFound(gettext("Tax rate %(tax_rate_id)s does not exist.") % {"tax_rate_id": tax_rate_id})
    fixed = {
        name: [gettext("Fixed once the rate exists: create a new rate and deactivate this one.")]
        for name in TAX_RATE_FIXED_FIELDS
        if name in changes and _fixed_value(name, changes.pop(name)) != _fixed_value(name, getattr(rate, name))
    }
    if fixed:
        raise ValidationFailed(gettext("A tax rate's country, region and kind cannot be changed."), fields=fixed)
    unknown = set(changes) - set(TAX_RATE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(gettext("Unknown fields: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))})
    for name, value in changes.items():
        setattr(rate, name, value)
    validate_instance(rate)
    rate.save()
    return rate


def _fixed_value(name: str, value):
    if name == "country":
        return str(getattr(value, "code", value) or "").upper()
    return value.strip() if isinstance(value, str) else value
