"""Customer tax IDs: which kind a number is, its normal form, and whether it is valid.

Pure functions (no ORM, no settings, no network). Messages are in the active language (the portal's
customer users read them in theirs). The format and check digits of VAT numbers are
checked with python-stdnum; whether a number is actually registered (VIES) is not checked here.
See docs/billing-rules.md, "Tax IDs".
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django_countries import countries
from stdnum import exceptions as stdnum_errors
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_vat
from stdnum.us import ein as us_ein
from stdnum.util import clean

from .constants import EU_COUNTRIES, TaxIdStatus, TaxIdType

# Greece's VAT numbers start with "EL", not its ISO code "GR".
EU_VAT_PREFIXES = {country: "EL" if country == "GR" else country for country in EU_COUNTRIES}
# Two-letter starts that say a number is some other VAT scheme's (EU states, Northern Ireland, the
# non-Union OSS scheme, the UK).
_KNOWN_VAT_PREFIXES = frozenset({*EU_VAT_PREFIXES.values(), "GR", "XI", "EU", "GB"})


class InvalidTaxId(ValueError):
    """A tax ID that cannot be accepted; `field` is the input the message is about."""

    def __init__(self, message: str, *, field: str = "tax_id") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class TaxIdCheck:
    tax_id: str  # the normal form: compact, upper-case, with its country prefix where it has one
    type: TaxIdType
    status: TaxIdStatus


@dataclass(frozen=True)
class _Scheme:
    description: Callable[[str], str]  # "a VAT number of Germany", given the customer's country
    countries: frozenset[str] | None  # None: any country
    where: Callable[[], str]  # the countries, in words
    normalize: Callable[[str, str], str] | None  # (number, country) -> normal form; None: not checked


def _country_name(country: str) -> str:
    return str(countries.name(country)) or country


def _eu_vat_normalize(number: str, country: str) -> str:
    prefix = EU_VAT_PREFIXES[country]
    compact = clean(number, " -./,:").upper()
    start = compact[:2]
    if start in {prefix, country}:  # Greek numbers may be typed with "GR"
        compact = compact[2:]
    elif start in _KNOWN_VAT_PREFIXES:
        raise InvalidTaxId(
            _(
                "%(number)s is not a VAT number of %(country)s, where the customer is: it should start with "
                "%(prefix)s (or give no prefix)."
            )
            % {"number": compact, "country": _country_name(country), "prefix": prefix}
        )
    return str(eu_vat.validate(prefix + compact))


def _gb_vat_normalize(number: str, country: str) -> str:
    return "GB" + str(gb_vat.validate(number))


def _ch_vat_normalize(number: str, country: str) -> str:
    return str(ch_vat.format(ch_vat.validate(number)))


def _no_vat_normalize(number: str, country: str) -> str:
    return str(no_vat.validate(number))


def _us_ein_normalize(number: str, country: str) -> str:
    return str(us_ein.format(us_ein.validate(number)))


SCHEMES: dict[TaxIdType, _Scheme] = {
    TaxIdType.EU_VAT: _Scheme(
        lambda country: _("a VAT number of %(country)s") % {"country": _country_name(country)},
        EU_COUNTRIES,
        lambda: _("an EU member state"),
        _eu_vat_normalize,
    ),
    TaxIdType.GB_VAT: _Scheme(
        lambda country: _("a UK VAT number"), frozenset({"GB"}), lambda: _("the United Kingdom"), _gb_vat_normalize
    ),
    TaxIdType.CH_VAT: _Scheme(
        lambda country: _("a Swiss VAT number"),
        frozenset({"CH", "LI"}),
        lambda: _("Switzerland or Liechtenstein"),
        _ch_vat_normalize,
    ),
    TaxIdType.NO_VAT: _Scheme(
        lambda country: _("a Norwegian VAT number"), frozenset({"NO"}), lambda: _("Norway"), _no_vat_normalize
    ),
    TaxIdType.US_EIN: _Scheme(
        lambda country: _("a US EIN"), frozenset({"US"}), lambda: _("the United States"), _us_ein_normalize
    ),
    TaxIdType.OTHER: _Scheme(lambda country: _("a tax ID"), None, lambda: _("any country"), None),
}


def tax_id_type_for_country(country: str) -> TaxIdType:
    """The kind of tax ID a business in `country` has, when none is given: its VAT number where we
    can check one, else "other"."""
    for tax_id_type, scheme in SCHEMES.items():
        if scheme.countries is not None and country in scheme.countries:
            return tax_id_type
    return TaxIdType.OTHER


def tax_id_type_fits_country(*, tax_id_type: str, country: str) -> bool:
    """Whether a customer in `country` may have a tax ID of this kind (an unknown kind: no)."""
    if tax_id_type not in TaxIdType.values:
        return False
    allowed = SCHEMES[TaxIdType(tax_id_type)].countries
    return allowed is None or country in allowed


def _reason(error: stdnum_errors.ValidationError) -> str:
    if isinstance(error, stdnum_errors.InvalidChecksum):
        return _("its check digits do not match (a typing error?)")
    if isinstance(error, stdnum_errors.InvalidLength):
        return _("it has the wrong number of characters")
    return _("it is not in the right format")


def tax_id_check(*, tax_id: str, country: str, tax_id_type: str = "") -> TaxIdCheck:
    """Check and normalize a non-empty tax ID of a customer in `country` (ISO code). `tax_id_type`
    empty means the country's usual kind. Numbers of a kind with a checker must pass it (format and
    check digits) and belong to the customer's country; others are kept as typed, unverified.
    Raises InvalidTaxId."""
    value = tax_id.strip()
    if not value:
        raise InvalidTaxId(_("Give the tax ID."))
    if not tax_id_type:
        chosen = tax_id_type_for_country(country)
    elif tax_id_type in TaxIdType.values:
        chosen = TaxIdType(tax_id_type)
    else:
        raise InvalidTaxId(_("Unknown kind of tax ID %(kind)r.") % {"kind": tax_id_type}, field="tax_id_type")
    scheme = SCHEMES[chosen]
    if not tax_id_type_fits_country(tax_id_type=chosen, country=country):
        raise InvalidTaxId(
            _("The customer is in %(country)s; %(kind)ss are for customers in %(where)s.")
            % {"country": _country_name(country), "kind": chosen.label, "where": scheme.where()},
            field="tax_id_type",
        )
    if scheme.normalize is None:
        return TaxIdCheck(tax_id=value, type=chosen, status=TaxIdStatus.UNVERIFIED)
    try:
        normal = scheme.normalize(value, country)
    except stdnum_errors.ValidationError as error:
        raise InvalidTaxId(
            _("%(number)s is not %(description)s: %(reason)s.")
            % {"number": value, "description": scheme.description(country), "reason": _reason(error)}
        ) from error
    return TaxIdCheck(tax_id=normal, type=chosen, status=TaxIdStatus.VALID)


def tax_id_classify(*, tax_id: str, country: str, tax_id_type: str = "") -> TaxIdCheck:
    """Like `tax_id_check`, but never refuses: a number that fails its check is returned as typed
    with the status "invalid" (for records made before tax IDs were checked)."""
    try:
        return tax_id_check(tax_id=tax_id, country=country, tax_id_type=tax_id_type)
    except InvalidTaxId:
        known = tax_id_type if tax_id_type in TaxIdType.values else tax_id_type_for_country(country)
        return TaxIdCheck(tax_id=tax_id.strip(), type=TaxIdType(known), status=TaxIdStatus.INVALID)


def eu_vat_number_is_valid(*, tax_id: str, country: str) -> bool:
    """Whether `tax_id` is, in its normal form, a valid VAT number of the EU member state `country`."""
    if country not in EU_COUNTRIES or not tax_id.startswith(EU_VAT_PREFIXES[country]):
        return False
    return bool(eu_vat.is_valid(tax_id))
