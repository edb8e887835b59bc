"""Checking and normalizing customer tax IDs (pure: no database)."""

import pytest

from apps.accounts.constants import TaxIdStatus, TaxIdType
from apps.accounts.tax_ids import (
    InvalidTaxId,
    TaxIdCheck,
    eu_vat_number_is_valid,
    tax_id_check,
    tax_id_classify,
    tax_id_type_for_country,
)


def _valid_eu_vat(tax_id: str) -> TaxIdCheck:
    return TaxIdCheck(tax_id=tax_id, type=TaxIdType.EU_VAT, status=TaxIdStatus.VALID)


@pytest.mark.parametrize(
    ("country", "typed", "stored"),
    [
        ("DE", "DE812345673", "DE812345673"),
        ("DE", "de 812 345 673", "DE812345673"),
        ("DE", "812345673", "DE812345673"),  # no prefix: the customer's country's
        ("FR", "FR 11 123456782", "FR11123456782"),
        ("NL", "NL812345678B01", "NL812345678B01"),
        ("NL", "nl8123.45678.b01", "NL812345678B01"),
        ("IE", "IE9876543H", "IE9876543H"),
        ("IE", "1234567FA", "IE1234567FA"),
        ("BE", "BE 0123.456.749", "BE0123456749"),
        ("GR", "EL094259216", "EL094259216"),
        ("GR", "GR094259216", "EL094259216"),  # Greece's VAT prefix is EL, not its ISO code
        ("GR", "094259216", "EL094259216"),
        ("ES", "ESB12345674", "ESB12345674"),
        ("ES", "es-x1234567l", "ESX1234567L"),
    ],
)
def test_a_valid_eu_vat_number_is_normalized_with_its_country_prefix(country, typed, stored):
    assert tax_id_check(tax_id=typed, country=country) == _valid_eu_vat(stored)


CHECK_DIGITS = "its check digits do not match (a typing error?)"


@pytest.mark.parametrize(
    ("country", "typed", "state", "reason"),
    [
        ("DE", "DE812345678", "Germany", CHECK_DIGITS),
        ("DE", "DE81234567", "Germany", "it has the wrong number of characters"),
        ("FR", "FR40123456789", "France", CHECK_DIGITS),
        ("NL", "NL812345679B01", "Netherlands", CHECK_DIGITS),
        ("IE", "IE9876543W", "Ireland", CHECK_DIGITS),
        ("BE", "BE0123456789", "Belgium", CHECK_DIGITS),
        ("GR", "EL094259217", "Greece", CHECK_DIGITS),
        ("ES", "ESB12345675", "Spain", CHECK_DIGITS),
        ("ES", "ES-not-a-number", "Spain", "it is not in the right format"),
    ],
)
def test_an_eu_vat_number_failing_its_check_is_refused_with_the_reason(country, typed, state, reason):
    with pytest.raises(InvalidTaxId) as excinfo:
        tax_id_check(tax_id=typed, country=country)

    assert excinfo.value.field == "tax_id"
    assert excinfo.value.message == f"{typed} is not a VAT number of {state}: {reason}."


@pytest.mark.parametrize(
    ("country", "typed"),
    [("FR", "DE812345673"), ("DE", "EL094259216"), ("IE", "GB123456727"), ("NL", "XI123456727")],
)
def test_a_vat_number_of_another_country_than_the_customers_is_refused(country, typed):
    with pytest.raises(InvalidTaxId) as excinfo:
        tax_id_check(tax_id=typed, country=country)

    assert excinfo.value.field == "tax_id"
    assert "where the customer is: it should start with" in excinfo.value.message


@pytest.mark.parametrize(
    ("country", "typed", "expected"),
    [
        ("GB", "GB 123 4567 27", TaxIdCheck("GB123456727", TaxIdType.GB_VAT, TaxIdStatus.VALID)),
        ("GB", "123456727", TaxIdCheck("GB123456727", TaxIdType.GB_VAT, TaxIdStatus.VALID)),
        ("CH", "CHE-113.553.355 MWST", TaxIdCheck("CHE-113.553.355 MWST", TaxIdType.CH_VAT, TaxIdStatus.VALID)),
        ("NO", "NO 995 525 828 MVA", TaxIdCheck("995525828MVA", TaxIdType.NO_VAT, TaxIdStatus.VALID)),
        ("US", "943141592", TaxIdCheck("94-3141592", TaxIdType.US_EIN, TaxIdStatus.VALID)),
        # No checker for the country's IDs: kept as typed (trimmed), not verified.
        ("JP", " T1234567890123 ", TaxIdCheck("T1234567890123", TaxIdType.OTHER, TaxIdStatus.UNVERIFIED)),
    ],
)
def test_non_eu_tax_ids_are_checked_where_a_checker_exists_else_kept_unverified(country, typed, expected):
    assert tax_id_check(tax_id=typed, country=country) == expected


def test_a_tax_id_of_the_kind_other_is_kept_as_typed_and_unverified_in_any_country():
    assert tax_id_check(tax_id="Steuernummer 21/815/08150", country="DE", tax_id_type="other") == TaxIdCheck(
        "Steuernummer 21/815/08150", TaxIdType.OTHER, TaxIdStatus.UNVERIFIED
    )
    assert tax_id_check(tax_id="EIN 94-3141592", country="US", tax_id_type="other").status == TaxIdStatus.UNVERIFIED


@pytest.mark.parametrize(
    ("country", "typed"), [("GB", "GB123456789"), ("US", "US-123"), ("CH", "CHE-113.553.359 MWST"), ("NO", "123")]
)
def test_non_eu_tax_ids_failing_their_check_are_refused(country, typed):
    with pytest.raises(InvalidTaxId) as excinfo:
        tax_id_check(tax_id=typed, country=country)

    assert excinfo.value.field == "tax_id"
    assert excinfo.value.message.startswith(f"{typed} is not a ")


def test_a_kind_that_does_not_fit_the_customers_country_is_refused_on_the_kind():
    with pytest.raises(InvalidTaxId) as excinfo:
        tax_id_check(tax_id="DE812345673", country="US", tax_id_type="eu_vat")

    assert (excinfo.value.field, excinfo.value.message) == (
        "tax_id_type",
        "The customer is in United States of America; EU VAT numbers are for customers in an EU member state.",
    )


def test_an_unknown_kind_is_refused_on_the_kind():
    with pytest.raises(InvalidTaxId) as excinfo:
        tax_id_check(tax_id="123", country="DE", tax_id_type="de_stnr")

    assert (excinfo.value.field, excinfo.value.message) == ("tax_id_type", "Unknown kind of tax ID 'de_stnr'.")


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("DE", TaxIdType.EU_VAT),
        ("GR", TaxIdType.EU_VAT),
        ("GB", TaxIdType.GB_VAT),
        ("CH", TaxIdType.CH_VAT),
        ("LI", TaxIdType.CH_VAT),
        ("NO", TaxIdType.NO_VAT),
        ("US", TaxIdType.US_EIN),
        ("JP", TaxIdType.OTHER),
    ],
)
def test_the_kind_of_tax_id_follows_the_country_when_none_is_given(country, expected):
    assert tax_id_type_for_country(country) == expected


def test_classify_marks_a_failing_number_invalid_instead_of_refusing_it():
    assert tax_id_classify(tax_id=" DE123456789 ", country="DE") == TaxIdCheck(
        "DE123456789", TaxIdType.EU_VAT, TaxIdStatus.INVALID
    )
    assert tax_id_classify(tax_id="de 812 345 673", country="DE") == _valid_eu_vat("DE812345673")


@pytest.mark.parametrize(
    ("tax_id", "country", "expected"),
    [
        ("DE812345673", "DE", True),
        ("EL094259216", "GR", True),
        ("DE812345678", "DE", False),  # check digit
        ("DE812345673", "FR", False),  # another state's number
        ("812345673", "DE", False),  # not in its normal form
        ("GB123456727", "GB", False),  # not an EU member state
    ],
)
def test_eu_vat_number_is_valid(tax_id, country, expected):
    assert eu_vat_number_is_valid(tax_id=tax_id, country=country) is expected
