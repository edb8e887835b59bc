"""The pricing engine (apps/catalog/pricing.py): exact values, published worked examples, the examples
of docs/pricing.md (read from the page itself), property tests, and validation. Pure: no database."""

import dataclasses
import math
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from django.utils import translation
from hypothesis import assume, given
from hypothesis import strategies as st

from apps.catalog.pricing import (
    InvalidPrice,
    PackageRounding,
    PriceModel,
    PriceSpec,
    Quote,
    Tier,
    format_amount,
    format_price,
    format_quantity,
    model_fields,
    percentage_transaction_fee,
    price_describe,
    price_quote,
    price_validate,
    tier_fields,
)
from apps.core.money import currency_decimal_places, quantize_amount
from apps.core.money_format import money_text

D = Decimal
FLAT, PER_UNIT, GRADUATED, VOLUME, PACKAGE, PERCENTAGE, GRADUATED_PERCENTAGE = (
    PriceModel.FLAT,
    PriceModel.PER_UNIT,
    PriceModel.GRADUATED,
    PriceModel.VOLUME,
    PriceModel.PACKAGE,
    PriceModel.PERCENTAGE,
    PriceModel.GRADUATED_PERCENTAGE,
)
DOWN = PackageRounding.DOWN

# Stripe's Typographic tiers: 1–5 fonts at 7 USD, 6–10 at 6.50 USD, 11+ at 6 USD.
STRIPE_FONT_TIERS = (Tier(D(5), D(7)), Tier(D(10), D("6.5")), Tier(None, D(6)))
# Lago's volume example: four tiers of API calls, each with a 10 USD flat fee.
LAGO_VOLUME_TIERS = (
    Tier(D(10_000), D("0.0010"), D(10)),
    Tier(D(50_000), D("0.0008"), D(10)),
    Tier(D(100_000), D("0.0006"), D(10)),
    Tier(None, D("0.0004"), D(10)),
)
# Lago's graduated percentage example: 0–1,000 at 1 % + 200 USD, 1,001–10,000 at 2 % + 300 USD,
# 10,001 and above at 3 % + 400 USD (a rate and a flat fee per tier; no unit price).
LAGO_GRADUATED_PERCENTAGE_TIERS = (
    Tier(D(1_000), flat_amount=D(200), percentage=D(1)),
    Tier(D(10_000), flat_amount=D(300), percentage=D(2)),
    Tier(None, flat_amount=D(400), percentage=D(3)),
)
LAGO_GRADUATED_PERCENTAGE = PriceSpec(GRADUATED_PERCENTAGE, "USD", tiers=LAGO_GRADUATED_PERCENTAGE_TIERS)


def quote(spec: PriceSpec, quantity: Decimal | int | str, transactions: tuple[Decimal, ...] = ()) -> Quote:
    return price_quote(spec, quantity=D(quantity), transactions=transactions)


def amounts(spec: PriceSpec, *quantities: int | str) -> list[Decimal]:
    return [quote(spec, quantity).amount for quantity in quantities]


def descriptions(result: Quote) -> list[str]:
    return [line.description for line in result.lines]


# --------------------------------------------------------------------------------------------
# Exact values, model by model


def test_flat_fee_ignores_the_quantity() -> None:
    spec = PriceSpec(FLAT, "EUR", amount=D("49.00"))
    assert amounts(spec, 0, 1, 1000) == [D("49.00")] * 3
    assert descriptions(quote(spec, 7)) == ["Flat fee: 49.00 EUR"]


def test_per_unit_price_with_more_decimals_than_the_currency_is_rounded_once() -> None:
    result = quote(PriceSpec(PER_UNIT, "USD", amount=D("0.00012")), 1_234_567)
    assert result.exact_amount == D("148.14804")
    assert result.amount == D("148.15")
    assert result.total == D("148.15")
    assert descriptions(result) == ["1,234,567 × 0.00012 USD"]


def test_per_unit_in_jpy_has_no_decimals_and_rounds_half_up() -> None:
    assert amounts(PriceSpec(PER_UNIT, "JPY", amount=D("0.5")), 3, 5) == [D("2"), D("3")]  # 1.5 → 2, 2.5 → 3
    result = quote(PriceSpec(PER_UNIT, "JPY", amount=D("12.5")), 3)
    assert (result.exact_amount, result.amount, str(result.amount)) == (D("37.5"), D("38"), "38")


def test_per_unit_in_kwd_has_three_decimals() -> None:
    result = quote(PriceSpec(PER_UNIT, "KWD", amount=D("0.0001")), 12_345)
    assert (result.exact_amount, result.amount, str(result.amount)) == (D("1.2345"), D("1.235"), "1.235")


def test_per_unit_fractional_quantity_and_included_units() -> None:
    spec = PriceSpec(PER_UNIT, "USD", amount=D("0.023"), included_units=D(5))
    result = quote(spec, "105.5")  # 100.5 GB billable × 0.023 = 2.3115
    assert (result.billable_quantity, result.exact_amount, result.amount) == (D("100.5"), D("2.3115"), D("2.31"))
    assert descriptions(result) == ["Included units: 5 of 5 free", "100.5 × 0.023 USD"]
    assert quote(spec, 3).billable_quantity == 0


def test_graduated_prices_each_tier_and_charges_a_tier_flat_fee_once() -> None:
    spec = PriceSpec(GRADUATED, "USD", tiers=(Tier(D(100), D("0.10")), Tier(None, D("0.05"), D("2.00"))))
    result = quote(spec, 1000)
    assert result.amount == D("57.00")  # 100 × 0.10 + 900 × 0.05 + 2.00
    assert descriptions(result) == [
        "Units 1–100: 100 × 0.10 USD",
        "Units 101–1,000: 900 × 0.05 USD + 2.00 USD flat fee",
    ]
    assert [line.amount for line in result.lines] == [D("10.00"), D("47.00")]
    assert quote(spec, 100).amount == D("10.00")  # the second tier is not reached: no flat fee


def test_graduated_fractional_quantity_falls_on_the_continuous_tier_boundary() -> None:
    spec = PriceSpec(GRADUATED, "USD", tiers=STRIPE_FONT_TIERS)
    result = quote(spec, "5.5")  # (0, 5] at 7, (5, 10] at 6.5: 35 + 0.5 × 6.5
    assert result.exact_amount == D("38.25")
    assert descriptions(result) == ["Units 1–5: 5 × 7.00 USD", "Units above 5 up to 5.5: 0.5 × 6.50 USD"]


def test_graduated_and_volume_price_nothing_for_quantity_zero_not_even_a_flat_fee() -> None:
    tiers = (Tier(D(10), D(1), D(50)), Tier(None, D(1), D(50)))
    for model in (GRADUATED, VOLUME):
        result = quote(PriceSpec(model, "USD", tiers=tiers), 0)
        assert (result.amount, result.lines) == (D("0.00"), ())


def test_doc_included_units_shift_the_tiers() -> None:
    spec = PriceSpec(GRADUATED, "USD", tiers=(Tier(D(1000), D("0.01")), Tier(None, D("0.005"))), included_units=D(100))
    # docs/pricing.md, "Included units": units 101 to 1,100 of the quantity are priced at the first tier.
    assert quote(spec, 1100).exact_amount == D(1000) * D("0.01")
    assert quote(spec, 1101).exact_amount == D(1000) * D("0.01") + D("0.005")


def test_volume_prices_all_units_at_the_tier_reached_plus_its_flat_fee() -> None:
    spec = PriceSpec(VOLUME, "USD", tiers=(Tier(D(10), D(2), D(5)), Tier(None, D(1), D(7))))
    assert quote(spec, 10).exact_amount == D(10) * 2 + 5  # on the bound: still tier 1
    assert quote(spec, 11).exact_amount == D(11) * 1 + 7  # one more: every unit at tier 2
    assert quote(spec, "10.001").exact_amount == D("10.001") + 7
    assert descriptions(quote(spec, 11)) == [
        "All 11 units at tier 2 (units 11 and above): 11 × 1.00 USD + 7.00 USD flat fee"
    ]


def test_package_rounds_started_packages_up_after_included_units() -> None:
    spec = PriceSpec(PACKAGE, "USD", amount=D("5"), package_size=D(100), included_units=D(100))
    assert amounts(spec, 0, 100, 101, 200, 201, 300, 301) == [D(0), D(0), D(5), D(5), D(10), D(10), D(15)]
    assert quote(spec, 201).lines[-1].quantity == 2


def test_package_rounded_down_counts_whole_packages_only_after_included_units() -> None:
    spec = PriceSpec(PACKAGE, "USD", amount=D("5"), package_size=D(100), included_units=D(100), package_rounding=DOWN)
    assert amounts(spec, 0, 100, 101, 199, 200, 201, 300, 399) == [D(0), D(0), D(0), D(0), D(5), D(5), D(10), D(10)]
    assert descriptions(quote(spec, 250)) == [
        "Included units: 100 of 100 free",
        "150 units in packages of 100: 1 × 5.00 USD (a partial package is free)",
    ]
    assert descriptions(quote(spec, 300))[-1] == "200 units in packages of 100: 2 × 5.00 USD"  # no remainder


def test_package_rounding_is_up_by_default_and_may_be_given_as_its_stored_value() -> None:
    assert PriceSpec(PACKAGE, "USD", amount=D(1)).package_rounding is PackageRounding.UP
    assert PriceSpec(PACKAGE, "USD", amount=D(1), package_rounding="down").package_rounding is DOWN  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PriceSpec(PACKAGE, "USD", package_rounding="nearest")  # type: ignore[arg-type]


def test_graduated_percentage_takes_each_tiers_rate_of_the_amount_in_it_plus_its_flat_fee() -> None:
    result = quote(LAGO_GRADUATED_PERCENTAGE, "12000.00")
    # 1,000.00 × 1 % + 200 | 9,000.00 × 2 % + 300 | 2,000.00 × 3 % + 400
    assert [line.amount for line in result.lines] == [D("210.00"), D("480.00"), D("460.00")]
    assert [(line.quantity, line.unit_amount, line.flat_amount) for line in result.lines] == [
        (D(1000), D("0.01"), D(200)),
        (D(9000), D("0.02"), D(300)),
        (D("2000.00"), D("0.03"), D(400)),
    ]
    assert (result.exact_amount, result.amount, result.billable_quantity) == (D(1150), D("1150.00"), D("12000.00"))


def test_graduated_percentage_rounds_once_and_puts_a_fraction_above_a_bound_in_the_next_tier() -> None:
    spec = PriceSpec(
        GRADUATED_PERCENTAGE, "USD", tiers=(Tier(D(100), percentage=D("2.9")), Tier(None, percentage=D(1)))
    )
    result = quote(spec, "100.01")  # 100 × 2.9 % + 0.01 × 1 % = 2.9 + 0.0001
    assert (result.exact_amount, result.amount) == (D("2.9001"), D("2.90"))
    assert descriptions(result) == [
        "First 100.00 USD: 2.9 % of 100.00 USD",
        "Above 100.00 USD up to 100.01 USD: 1 % of 0.01 USD",
    ]
    # Amounts of JPY have no decimals; the percentage of 999 JPY at 2.9 % is 28.971 → 29 JPY.
    yen = PriceSpec(GRADUATED_PERCENTAGE, "JPY", tiers=(Tier(None, percentage=D("2.9")),))
    assert quote(yen, 999).amount == D(29)


def test_graduated_percentage_of_nothing_is_nothing_not_even_a_flat_fee() -> None:
    result = quote(LAGO_GRADUATED_PERCENTAGE, 0)
    assert (result.amount, result.lines) == (D("0.00"), ())


def test_graduated_percentage_with_a_minimum_charge_gets_a_true_up() -> None:
    spec = PriceSpec(GRADUATED_PERCENTAGE, "USD", tiers=(Tier(None, percentage=D(1)),), minimum_amount=D(25))
    result = quote(spec, 1000)
    assert (result.amount, result.minimum_true_up, result.total) == (D("10.00"), D("15.00"), D("25.00"))


def test_describing_the_new_models() -> None:
    assert price_describe(LAGO_GRADUATED_PERCENTAGE) == (
        "graduated percentage of the amount: first 1,000.00 USD: 1 % + 200.00 USD flat; "
        "above 1,000.00 USD up to 10,000.00 USD: 2 % + 300.00 USD flat; above 10,000.00 USD: 3 % + 400.00 USD flat"
    )
    assert price_describe(PriceSpec(PACKAGE, "USD", amount=D(10), package_size=D(60), package_rounding=DOWN)) == (
        "10.00 USD per package of 60 units (whole packages only: a partial package is free)"
    )


def test_each_model_names_the_fields_it_uses() -> None:
    assert model_fields(PACKAGE) == {"amount", "package_size", "package_rounding", "included_units"}
    assert model_fields(GRADUATED_PERCENTAGE) == {"tiers"}
    assert model_fields("flat") == {"amount"}
    assert tier_fields(GRADUATED_PERCENTAGE) == {"up_to", "percentage", "flat_amount"}
    assert tier_fields(VOLUME) == {"up_to", "unit_amount", "flat_amount"}
    assert tier_fields(PER_UNIT) == set()


def test_package_with_a_fractional_size_and_quantity() -> None:
    spec = PriceSpec(PACKAGE, "JPY", amount=D("100"), package_size=D("0.5"))
    assert amounts(spec, "1.0", "1.01", "0.2") == [D(200), D(300), D(100)]


def test_percentage_sums_exact_fees_then_rounds_once() -> None:
    spec = PriceSpec(PERCENTAGE, "USD", percentage=D("2.9"), fixed_fee=D("0.30"))
    # Three 10.10 USD payments: 0.5929 each, 1.7787 exact → 1.78 (rounding each fee first gives 1.77).
    result = quote(spec, 3, (D("10.10"),) * 3)
    assert (result.exact_amount, result.amount) == (D("1.7787"), D("1.78"))
    assert sum(quantize_amount(percentage_transaction_fee(spec, D("10.10")), "USD") for _ in range(3)) == D("1.77")


def test_percentage_clamps_each_transaction_to_the_minimum_and_maximum() -> None:
    spec = PriceSpec(
        PERCENTAGE, "USD", percentage=D("2.9"), fixed_fee=D("0.30"),
        min_per_transaction=D("0.50"), max_per_transaction=D("5.00"),
    )  # fmt: skip
    result = quote(spec, 3, (D(5), D(100), D(1000)))
    assert result.amount == D("8.70")  # 0.50 (raised from 0.445) + 3.20 + 5.00 (capped from 29.30)
    assert [line.amount for line in result.lines] == [D("32.045"), D("0.90"), D("0.055"), D("-24.30")]
    assert [percentage_transaction_fee(spec, D(x)) for x in (5, 100, 1000)] == [D("0.50"), D("3.200"), D("5.00")]


def test_percentage_first_transactions_are_free_and_kwd_rounds_to_three_decimals() -> None:
    spec = PriceSpec(PERCENTAGE, "KWD", percentage=D("1.25"), fixed_fee=D("0.050"), included_units=D(2))
    result = quote(spec, 3, (D(100), D(100), D("10.01")))
    assert result.billable_quantity == 1
    assert (result.exact_amount, result.amount) == (D("0.175125"), D("0.175"))
    assert descriptions(result)[0] == "Free transactions: 2 of 2, no fee"


def test_minimum_true_up_makes_up_the_difference_as_its_own_rounded_line() -> None:
    spec = PriceSpec(PER_UNIT, "USD", amount=D("0.10"), minimum_amount=D(20))
    result = quote(spec, 120)
    assert (result.amount, result.minimum_true_up, result.total) == (D("12.00"), D("8.00"), D("20.00"))
    reached = quote(spec, 250)
    assert (reached.minimum_true_up, reached.total) == (D("0.00"), D("25.00"))
    odd = quote(PriceSpec(PER_UNIT, "USD", amount=D("0.001"), minimum_amount=D("10.005")), 1)
    assert (odd.amount, odd.minimum_true_up, odd.total) == (D("0.00"), D("10.01"), D("10.01"))  # 10.005 → 10.01


def test_formatting_helpers() -> None:
    assert format_quantity(D("1234567")) == "1,234,567"
    assert format_quantity(D("2.500")) == "2.5"
    assert format_quantity(D("1E+3")) == "1,000"
    assert format_amount(D("0.00012"), "USD") == "0.00012 USD"
    assert format_amount(D("7"), "USD") == "7.00 USD"
    assert format_amount(D("1000"), "JPY") == "1,000 JPY"
    assert format_amount(D("1.5"), "KWD") == "1.500 KWD"
    assert format_amount(D("0.0020"), "USD") == "0.002 USD"


# One money format everywhere (docs/money.md, "Showing amounts"): the catalog's formatters are
# `apps.core.money_format.money_text` under other names, so a price in a Chinese reader's admin,
# portal or bill reads as every other amount there does.
@pytest.mark.parametrize("language", ["en", "zh-hans"])
@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
    currency=st.sampled_from(["USD", "EUR", "JPY", "KWD", "CNY", "CHF"]),
)
def test_the_catalogs_formatters_are_the_one_money_format(language, amount, currency) -> None:
    with translation.override(language):
        assert format_price(amount, currency) == format_amount(amount, currency) == money_text(amount, currency)


def test_a_price_reads_the_chinese_way_for_a_chinese_reader() -> None:
    with translation.override("zh-hans"):
        assert format_price(D("1234.5"), "USD") == "US$1,234.50"
        assert format_price(D("0.00012"), "EUR") == "€0.00012"
        assert format_price(D("1000"), "JPY") == "JP¥1,000"
        assert format_price(D("1.5"), "KWD") == "KWD 1.500"
        assert format_price(D("-7"), "CNY") == "-¥7.00"
    assert format_price(D("1234.5"), "USD") == "1,234.50 USD"


def test_model_may_be_given_as_its_stored_value() -> None:
    assert PriceSpec("per_unit", "USD", amount=D(1)).model is PER_UNIT  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PriceSpec("tiered", "USD")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Published worked examples


def test_stripe_volume_tiers() -> None:
    # https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing ("Volume-based pricing"):
    # 1 → 7 USD, 5 → 35 USD, 6 → 39 USD, 20 → 120 USD, 25 → 150 USD.
    spec = PriceSpec(VOLUME, "USD", tiers=STRIPE_FONT_TIERS)
    assert amounts(spec, 1, 5, 6, 20, 25) == [D(7), D(35), D(39), D(120), D(150)]


def test_stripe_graduated_tiers() -> None:
    # https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing ("Graduated pricing"):
    # "5 fonts result in the same charge as volume-based pricing: 35 USD". The excerpt we could
    # retrieve ends there; the other rows (41.50, 127.50, 157.50 USD) follow from the rule the
    # page states ("the totals for each tier are summed together") and are not quoted from it.
    spec = PriceSpec(GRADUATED, "USD", tiers=STRIPE_FONT_TIERS)
    assert amounts(spec, 1, 5, 6, 20, 25) == [D(7), D(35), D("41.50"), D("127.50"), D("157.50")]


def test_stripe_package_pricing_by_transform_quantity() -> None:
    # https://stripe.com/docs/billing/subscriptions/quantity-transformation: 10 USD for every
    # 5 users or portion thereof: 1 → 10, 3 → 10, 5 → 10, 6 → 20, 7 → 20.
    spec = PriceSpec(PACKAGE, "USD", amount=D(10), package_size=D(5))
    assert amounts(spec, 1, 3, 5, 6, 7) == [D(10), D(10), D(10), D(20), D(20)]
    # https://docs.stripe.com/billing/subscriptions/usage-based/transform-quantities: 10 USD per
    # hour reported in minutes, rounded up: 150 minutes → 3 hours → 30 USD.
    assert quote(PriceSpec(PACKAGE, "USD", amount=D(10), package_size=D(60)), 150).amount == D(30)


def test_lago_volume_example() -> None:
    # https://getlago.com/docs/guide/plans/charges/charge-models/volume: "65,000 API calls would
    # cost 65,000 x $0.0006 + $10 = $49."
    assert quote(PriceSpec(VOLUME, "USD", tiers=LAGO_VOLUME_TIERS), 65_000).amount == D("49.00")


def test_lago_package_example() -> None:
    # https://getlago.com/docs/guide/plans/charges/charge-models/package: $5 per 100 units, the
    # first 100 free: "201 units would cost $0 (first 100 units) + $5 (next 100 units) + $5 (last unit) = $10."
    spec = PriceSpec(PACKAGE, "USD", amount=D(5), package_size=D(100), included_units=D(100))
    assert quote(spec, 201).amount == D("10.00")


def test_lago_percentage_example() -> None:
    # https://getlago.com/docs/guide/plans/charges/charge-models/percentage: 1.2 % + $0.10 per
    # transaction, the first 3 events free; the fourth transaction of $50 costs
    # "$0.10 x 1 event + 1.2% of $50 = $0.70". (Lago also frees the first $500 of volume, which we
    # do not model; in its example the fourth event is charged in full all the same.)
    spec = PriceSpec(PERCENTAGE, "USD", percentage=D("1.2"), fixed_fee=D("0.10"), included_units=D(3))
    assert quote(spec, 3, (D(200), D(100), D(100))).amount == D("0.00")
    assert quote(spec, 4, (D(200), D(100), D(100), D(50))).amount == D("0.70")


def test_stripe_transform_quantity_rounded_down() -> None:
    # https://docs.stripe.com/billing/subscriptions/usage-based/transform-quantities: 10 USD per hour
    # reported in minutes, divide_by 60; the API's `round` is "up" or "down". The page shows rounding
    # up (150 minutes → 3 hours → 30 USD, above); rounded down, by hand: 150 / 60 = 2.5 → 2 hours →
    # 20 USD, and 59 minutes → 0 hours → nothing.
    spec = PriceSpec(PACKAGE, "USD", amount=D(10), package_size=D(60), package_rounding=DOWN)
    assert amounts(spec, 150, 59, 60, 179, 180) == [D(20), D(0), D(10), D(20), D(30)]


def test_lago_graduated_percentage_example() -> None:
    # https://getlago.com/docs/guide/plans/charges/charge-models/graduated-percentage: tiers 0–1,000 at
    # 1 % + $200, 1,001–10,000 at 2 % + $300, 10,001+ at 3 % + $400. "A first transaction at $500 would
    # cost (500 units x 1%) + $200 flat fee = $205.00; A second transaction at $550 would cost
    # [(500 units x 1%) + (50 units x 2%)] + $300 flat fee = $306.00; A third transaction at $4,000
    # would cost (4,000 x 2%) = $80.00." Lago's v2 page: 5,050 USD in a month → 591 USD.
    # We price the period's total, so each transaction's cost is the growth of the running total; by
    # hand: 500 → 5 + 200 = 205; 1,050 → 10 + 200 + 1 + 300 = 511 (205 + 306); 5,050 → 10 + 200 +
    # 81 + 300 = 591 (511 + 80).
    totals = amounts(LAGO_GRADUATED_PERCENTAGE, "500", "1050", "5050")
    assert totals == [D("205.00"), D("511.00"), D("591.00")]
    assert [totals[0], totals[1] - totals[0], totals[2] - totals[1]] == [D("205.00"), D("306.00"), D("80.00")]
    # Where our rule differs: Lago's table says tier 2 starts at "1,001"; we bound tiers by their upper
    # bound on the continuous amount, so 1,000.50 USD puts its last 0.50 USD in tier 2 (0.01 USD +
    # the 300 USD flat fee), where Lago's table would leave it in no tier.
    assert quote(LAGO_GRADUATED_PERCENTAGE, "1000.50").amount == D("510.01")


def test_lago_graduated_example_has_no_published_total() -> None:
    # https://getlago.com/docs/guide/plans/charges/charge-models/graduated describes $1 for the first
    # 100 units, $0.50 for the next 100 and $0.10 after, but publishes no quantity or total; we
    # price 250 units by the stated rule (100 + 50 + 5) rather than cite a figure it does not give.
    spec = PriceSpec(GRADUATED, "USD", tiers=(Tier(D(100), D(1)), Tier(D(200), D("0.5")), Tier(None, D("0.1"))))
    assert quote(spec, 250).amount == D("155.00")


# --------------------------------------------------------------------------------------------
# docs/pricing.md: every example table is read from the page and priced again.

DOC = Path(__file__).resolve().parents[3] / "docs" / "pricing.md"

# The spec behind each "### Example: …" heading of docs/pricing.md (a heading without an entry fails).
DOC_EXAMPLES: dict[str, PriceSpec | None] = {
    # "## Rounding"
    "Rounding: a price with more decimals than the currency": PriceSpec(PER_UNIT, "USD", amount=D("0.00012")),
    "Rounding in yen and dinars": None,  # one spec per row, read from its currency and explanation
    # "## Flat fee"
    "A monthly platform fee": PriceSpec(FLAT, "EUR", amount=D("49.00")),
    # "## Per unit"
    "Seats with 3 included": PriceSpec(PER_UNIT, "USD", amount=D("12.50"), included_units=D(3)),
    # "## Graduated tiers"
    "Stripe's fonts, graduated": PriceSpec(GRADUATED, "USD", tiers=STRIPE_FONT_TIERS),
    "Storage in GB, graduated with a flat fee per tier": PriceSpec(
        GRADUATED, "USD", tiers=(Tier(D(100), D("0.10")), Tier(None, D("0.05"), D("2.00")))
    ),
    # "## Volume tiers"
    "Stripe's fonts, volume": PriceSpec(VOLUME, "USD", tiers=STRIPE_FONT_TIERS),
    "Lago's API calls, volume with a flat fee": PriceSpec(VOLUME, "USD", tiers=LAGO_VOLUME_TIERS),
    # "## Packages"
    "Stripe's productivity suite, 10 USD per 5 users": PriceSpec(PACKAGE, "USD", amount=D(10), package_size=D(5)),
    "Lago's API calls, 5 USD per 100 with 100 free": PriceSpec(
        PACKAGE, "USD", amount=D(5), package_size=D(100), included_units=D(100)
    ),
    # "## Percentage"
    "Lago's transactions, 3 free": PriceSpec(
        PERCENTAGE, "USD", percentage=D("1.2"), fixed_fee=D("0.10"), included_units=D(3)
    ),
    "Card payments with a minimum and a maximum fee": PriceSpec(
        PERCENTAGE,
        "USD",
        percentage=D("2.9"),
        fixed_fee=D("0.30"),
        min_per_transaction=D("0.50"),
        max_per_transaction=D("5.00"),
    ),  # fmt: skip
    "Stripe's car rental, 10 USD per hour reported in minutes, rounded down": PriceSpec(
        PACKAGE, "USD", amount=D(10), package_size=D(60), package_rounding=DOWN
    ),
    # "## Graduated percentage"
    "Lago's graduated percentage, 1 % / 2 % / 3 % with flat fees": LAGO_GRADUATED_PERCENTAGE,
    # "## Minimums"
    "Minimum charge of 20 USD": PriceSpec(PER_UNIT, "USD", amount=D("0.10"), minimum_amount=D(20)),
}


def _doc_tables() -> dict[str, list[dict[str, str]]]:
    """{example heading: [row as {column: cell}]} for every "### Example:" table of the page."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading, header = None, None
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            match = re.match(r"### Example: (.+)", line)
            heading, header = (match.group(1) if match else None), None
            if heading:
                tables[heading] = []
        elif heading and line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if header is None:
                header = cells
            elif not set("".join(cells)) <= set("-: "):
                tables[heading].append(dict(zip(header, cells, strict=True)))
    return tables


def _money(cell: str) -> Decimal:
    return D(cell.split()[0].replace(",", ""))


def test_every_doc_example_is_tested() -> None:
    assert set(_doc_tables()) == set(DOC_EXAMPLES)
    assert all(_doc_tables().values())


@pytest.mark.parametrize("heading", list(DOC_EXAMPLES))
def test_doc_example(heading: str) -> None:
    """Each row of the docs/pricing.md table under "### Example: <heading>" reproduces: amount,
    explanation lines, and (where shown) exact amount, true-up and total."""
    for row in _doc_tables()[heading]:
        spec = DOC_EXAMPLES[heading]
        if spec is None:  # "Rounding in yen and dinars": the unit price is in the explanation
            unit_price = D(row["Explanation"].split(" × ")[1].split()[0])
            spec = PriceSpec(PER_UNIT, row["Currency"], amount=unit_price)
        if "Transactions" in row:
            transactions = tuple(_money(cell) for cell in row["Transactions"].split(", "))
            result = quote(spec, len(transactions), transactions)
        else:  # a quantity of units, or an amount (graduated percentage)
            result = quote(spec, row.get("Quantity", row.get("Payment volume", "")).replace(",", ""))
        assert format_amount(result.amount, spec.currency) == row["Amount"], row
        assert ("; ".join(descriptions(result)) or "—") == row["Explanation"], row
        if "Exact amount" in row:
            assert result.exact_amount == D(row["Exact amount"]), row
        if "Total" in row:
            assert format_amount(result.minimum_true_up, spec.currency) == row["Minimum true-up"], row
            assert format_amount(result.total, spec.currency) == row["Total"], row


def test_doc_volume_tiers_amount_can_drop() -> None:
    # docs/pricing.md, "## Volume tiers": 10,000 calls cost 20.00 USD and 10,001 calls 18.00 USD.
    assert amounts(DOC_EXAMPLES["Lago's API calls, volume with a flat fee"], 10_000, 10_001) == [D(20), D(18)]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Properties

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
PRICES = st.decimals(min_value=0, max_value=10_000, places=5, allow_nan=False, allow_infinity=False)
QUANTITIES = st.decimals(min_value=0, max_value=1_000_000, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.decimals(min_value="0.5", max_value=100_000, places=2), max_size=4)))
    prices = [draw(PRICES) for _ in range(len(bounds) + 1)]
    flats = [draw(st.sampled_from([D(0), D(0), D("2.5"), D(10)])) for _ in range(len(bounds) + 1)]
    return tuple(Tier(up_to, price, flat) for up_to, price, flat in zip([*bounds, None], prices, flats, strict=True))


@st.composite
def specs(draw: st.DrawFn, model: PriceModel) -> PriceSpec:
    currency = draw(CURRENCIES)
    included = draw(st.sampled_from([D(0), D(0), D(3), D("10.5")]))
    minimum = draw(st.none() | PRICES)
    if model == FLAT:
        return PriceSpec(FLAT, currency, amount=draw(PRICES), minimum_amount=minimum)
    if model == PER_UNIT:
        return PriceSpec(PER_UNIT, currency, amount=draw(PRICES), included_units=included, minimum_amount=minimum)
    if model == PACKAGE:
        size = draw(st.sampled_from([D(1), D(5), D(100), D("0.25")]))
        return PriceSpec(
            PACKAGE, currency, amount=draw(PRICES), package_size=size, included_units=included, minimum_amount=minimum,
            package_rounding=draw(st.sampled_from(list(PackageRounding))),
        )  # fmt: skip
    if model == GRADUATED_PERCENTAGE:
        tiers = tuple(
            Tier(tier.up_to, flat_amount=tier.flat_amount, percentage=draw(st.decimals(0, 100, places=3)))
            for tier in draw(tier_lists())
        )
        return PriceSpec(GRADUATED_PERCENTAGE, currency, tiers=tiers, minimum_amount=minimum)
    if model == PERCENTAGE:
        low = draw(st.none() | st.sampled_from([D(0), D("0.50")]))
        high = draw(st.none() | st.sampled_from([D("0.50"), D(5), D(100)]))
        return PriceSpec(
            PERCENTAGE, currency, percentage=draw(st.decimals(min_value=0, max_value=100, places=2)),
            fixed_fee=draw(PRICES), included_units=draw(st.sampled_from([D(0), D(2)])),
            min_per_transaction=low, max_per_transaction=high, minimum_amount=minimum,
        )  # fmt: skip
    return PriceSpec(model, currency, tiers=draw(tier_lists()), included_units=included, minimum_amount=minimum)


TRANSACTIONS = st.lists(st.decimals(min_value=0, max_value=100_000, places=2), max_size=8).map(tuple)


def _tx_quote(spec: PriceSpec, transactions: tuple[Decimal, ...]) -> Quote:
    return quote(spec, len(transactions), transactions)


def _assert_well_rounded(result: Quote) -> None:
    places = currency_decimal_places(result.currency)
    for value in (result.amount, result.minimum_true_up, result.total):
        assert isinstance(value, Decimal)
        assert value.as_tuple().exponent == -places
    assert result.amount == quantize_amount(result.exact_amount, result.currency)  # rounded once
    assert result.exact_amount == sum((line.amount for line in result.lines), D(0))
    assert result.total == result.amount + result.minimum_true_up
    assert result.minimum_true_up >= 0


@pytest.mark.parametrize("model", [FLAT, PER_UNIT, GRADUATED, PACKAGE, GRADUATED_PERCENTAGE])
@given(data=st.data())
def test_amount_never_decreases_when_the_quantity_grows(model: PriceModel, data: st.DataObject) -> None:
    spec = data.draw(specs(model))
    smaller, larger = sorted([data.draw(QUANTITIES), data.draw(QUANTITIES)])
    low, high = quote(spec, smaller), quote(spec, larger)
    assert low.exact_amount <= high.exact_amount
    assert low.amount <= high.amount
    assert low.total <= high.total
    _assert_well_rounded(low)


@given(spec=specs(PERCENTAGE), transactions=TRANSACTIONS, extra=st.decimals(min_value=0, max_value=100_000, places=2))
def test_percentage_amount_never_decreases_when_a_transaction_is_added(
    spec: PriceSpec, transactions: tuple[Decimal, ...], extra: Decimal
) -> None:
    before, after = _tx_quote(spec, transactions), _tx_quote(spec, (*transactions, extra))
    assert before.exact_amount <= after.exact_amount
    _assert_well_rounded(after)
    charged = transactions[int(spec.included_units) :]
    assert before.exact_amount == sum((percentage_transaction_fee(spec, t) for t in charged), D(0))


def _tier_index(tiers: tuple[Tier, ...], quantity: Decimal) -> int:
    return next(i for i, tier in enumerate(tiers) if tier.up_to is None or quantity <= tier.up_to)


@given(spec=specs(VOLUME), first=QUANTITIES, second=QUANTITIES)
def test_volume_amount_never_decreases_within_a_tier(spec: PriceSpec, first: Decimal, second: Decimal) -> None:
    smaller, larger = sorted([max(D(0), first - spec.included_units), max(D(0), second - spec.included_units)])
    assume(smaller > 0 and _tier_index(spec.tiers, smaller) == _tier_index(spec.tiers, larger))
    low, high = quote(spec, smaller + spec.included_units), quote(spec, larger + spec.included_units)
    assert low.exact_amount <= high.exact_amount
    _assert_well_rounded(high)


@given(tiers=tier_lists(), index=st.integers(min_value=0, max_value=3), step=st.sampled_from([D("0.01"), D(1)]))
def test_volume_crossing_a_bound_prices_all_units_at_the_next_tier(
    tiers: tuple[Tier, ...], index: int, step: Decimal
) -> None:
    assume(index < len(tiers) - 1)
    spec = PriceSpec(VOLUME, "USD", tiers=tiers)
    bound = tiers[index].up_to
    assert bound is not None
    next_tier = tiers[index + 1]
    above = bound + step
    assume(next_tier.up_to is None or above <= next_tier.up_to)
    assert quote(spec, bound).exact_amount == bound * tiers[index].unit_amount + tiers[index].flat_amount
    assert quote(spec, above).exact_amount == above * next_tier.unit_amount + next_tier.flat_amount


def test_volume_amount_can_drop_when_the_next_tier_is_cheaper() -> None:
    spec = PriceSpec(VOLUME, "USD", tiers=(Tier(D(100), D("1.00")), Tier(None, D("0.50"))))
    assert amounts(spec, 100, 101) == [D("100.00"), D("50.50")]


@given(spec=specs(GRADUATED), quantity=QUANTITIES)
def test_graduated_equals_the_sum_of_its_tier_lines_and_an_independent_reference(
    spec: PriceSpec, quantity: Decimal
) -> None:
    result = quote(spec, quantity)
    billable = max(D(0), quantity - spec.included_units)
    reference, lower = Fraction(0), Fraction(0)
    for tier in spec.tiers:
        upper = Fraction(billable) if tier.up_to is None else min(Fraction(billable), Fraction(tier.up_to))
        if upper > lower:
            reference += (upper - lower) * Fraction(tier.unit_amount) + Fraction(tier.flat_amount)
        if tier.up_to is None:
            break
        lower = Fraction(tier.up_to)
    assert Fraction(result.exact_amount) == reference
    tier_lines = [line for line in result.lines if not line.description.startswith("Included")]
    assert result.exact_amount == sum((line.amount for line in tier_lines), D(0))
    assert sum((line.quantity for line in tier_lines), D(0)) == billable
    _assert_well_rounded(result)


@given(spec=specs(PACKAGE), quantity=QUANTITIES)
def test_package_is_started_or_whole_packages_times_the_package_price(spec: PriceSpec, quantity: Decimal) -> None:
    billable = max(D(0), quantity - spec.included_units)
    rounding = math.ceil if spec.package_rounding == PackageRounding.UP else math.floor
    packages = rounding(Fraction(billable) / Fraction(spec.package_size))
    result = quote(spec, quantity)
    assert result.exact_amount == packages * spec.amount
    assert result.billable_quantity == billable
    _assert_well_rounded(result)


@given(spec=specs(PACKAGE), quantity=QUANTITIES)
def test_package_rounded_down_never_costs_more_than_rounded_up_and_at_most_one_package_less(
    spec: PriceSpec, quantity: Decimal
) -> None:
    up = quote(dataclasses.replace(spec, package_rounding=PackageRounding.UP), quantity)
    down = quote(dataclasses.replace(spec, package_rounding=DOWN), quantity)
    assert up.exact_amount - spec.amount <= down.exact_amount <= up.exact_amount


@given(spec=specs(GRADUATED_PERCENTAGE), amount=QUANTITIES)
def test_graduated_percentage_equals_an_independent_reference(spec: PriceSpec, amount: Decimal) -> None:
    result = quote(spec, amount)
    reference, lower = Fraction(0), Fraction(0)
    for tier in spec.tiers:
        upper = Fraction(amount) if tier.up_to is None else min(Fraction(amount), Fraction(tier.up_to))
        if upper > lower:
            reference += (upper - lower) * Fraction(tier.percentage) / 100 + Fraction(tier.flat_amount)
        if tier.up_to is None:
            break
        lower = Fraction(tier.up_to)
    assert Fraction(result.exact_amount) == reference
    assert sum((line.quantity for line in result.lines), D(0)) == amount  # every part of the amount, once
    _assert_well_rounded(result)


@given(spec=specs(PER_UNIT), quantity=QUANTITIES)
def test_per_unit_is_billable_quantity_times_the_price_rounded_once(spec: PriceSpec, quantity: Decimal) -> None:
    result = quote(spec, quantity)
    assert result.exact_amount == max(D(0), quantity - spec.included_units) * spec.amount
    _assert_well_rounded(result)
    if spec.minimum_amount is not None:
        assert result.total >= quantize_amount(spec.minimum_amount, spec.currency)


@pytest.mark.parametrize(
    "build",
    [
        lambda: PriceSpec(PER_UNIT, "USD", amount=0.1),  # type: ignore[arg-type]
        lambda: PriceSpec(PACKAGE, "USD", amount=D(1), package_size=5.0),  # type: ignore[arg-type]
        lambda: PriceSpec(PER_UNIT, "USD", amount=D(1), included_units=1.5),  # type: ignore[arg-type]
        lambda: PriceSpec(PERCENTAGE, "USD", percentage=2.9),  # type: ignore[arg-type]
        lambda: PriceSpec(PERCENTAGE, "USD", max_per_transaction=5.0),  # type: ignore[arg-type]
        lambda: PriceSpec(PER_UNIT, "USD", minimum_amount=10.0),  # type: ignore[arg-type]
        lambda: Tier(10.0),  # type: ignore[arg-type]
        lambda: Tier(None, unit_amount=0.5),  # type: ignore[arg-type]
        lambda: Tier(None, percentage=2.9),  # type: ignore[arg-type]
        lambda: price_quote(PriceSpec(PER_UNIT, "USD", amount=D(1)), quantity=1.5),  # type: ignore[arg-type]
        lambda: price_quote(PriceSpec(PERCENTAGE, "USD"), quantity=D(1), transactions=[10.0]),  # type: ignore[list-item]
        lambda: format_quantity(1.5),  # type: ignore[arg-type]
    ],
)
def test_floats_are_refused_everywhere(build: Callable[[], object]) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        build()


def test_invalid_specs_and_quantities_are_refused_by_quote() -> None:
    with pytest.raises(InvalidPrice) as error:
        quote(PriceSpec(PER_UNIT, "USD", amount=D(-1)), 1)
    assert isinstance(error.value, ValueError)
    assert error.value.errors == {"amount": ["The amount cannot be negative."]}
    spec = PriceSpec(PER_UNIT, "USD", amount=D(1))
    for bad in (D(-1), D("NaN"), D("Infinity")):
        with pytest.raises(ValueError, match="quantity"):
            quote(spec, bad)
    with pytest.raises(ValueError, match="only a percentage price"):
        quote(spec, 1, (D(1),))
    percentage = PriceSpec(PERCENTAGE, "USD", percentage=D(1))
    with pytest.raises(ValueError, match="number of transactions"):
        quote(percentage, 2, (D(1),))
    with pytest.raises(ValueError, match="at least 0"):
        quote(percentage, 1, (D(-5),))


# --------------------------------------------------------------------------------------------
# Validation: one rule at a time, with its field key and message


def test_a_valid_spec_has_no_errors() -> None:
    assert price_validate(PriceSpec(GRADUATED, "USD", tiers=STRIPE_FONT_TIERS, included_units=D(10))) == {}
    assert price_validate(PriceSpec(PERCENTAGE, "KWD", percentage=D(100), min_per_transaction=D(1))) == {}


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (PriceSpec(FLAT, "XYZ", amount=D(1)), {"currency": ["“XYZ” is not a known ISO 4217 currency code."]}),
        (PriceSpec(FLAT, "USD", amount=D(-1)), {"amount": ["The amount cannot be negative."]}),
        (PriceSpec(PER_UNIT, "USD", amount=D("NaN")), {"amount": ["This must be a number."]}),
        (PriceSpec(PER_UNIT, "USD", included_units=D(-1)), {"included_units": ["Included units cannot be negative."]}),
        (PriceSpec(FLAT, "USD", minimum_amount=D(-5)), {"minimum_amount": ["The minimum charge cannot be negative."]}),
        (PriceSpec(GRADUATED, "USD"), {"tiers": ["A graduated price needs at least one tier."]}),
        (PriceSpec(VOLUME, "USD"), {"tiers": ["A volume price needs at least one tier."]}),
        (
            PriceSpec(GRADUATED, "USD", tiers=(Tier(D(10)), Tier(D(10)), Tier(None))),
            {"tiers.1.up_to": ["Tier 2 must end above tier 1, which ends at 10 units."]},
        ),
        (
            PriceSpec(VOLUME, "USD", tiers=(Tier(D(0)), Tier(None))),
            {"tiers.0.up_to": ["Tier 1: the upper bound must be greater than zero."]},
        ),
        (
            PriceSpec(GRADUATED, "USD", tiers=(Tier(None), Tier(None))),
            {"tiers.0.up_to": ["Only the last tier can be open-ended; give tier 1 an upper bound."]},
        ),
        (
            PriceSpec(GRADUATED, "USD", tiers=(Tier(D(5)), Tier(D(10)))),
            {
                "tiers.1.up_to": [
                    "The last tier must be open-ended (no upper bound), so that every quantity has a price; "
                    "add a tier above 10."
                ]
            },
        ),
        (
            PriceSpec(VOLUME, "USD", tiers=(Tier(D(5), D(-1)), Tier(None, D(1), D(-2)))),
            {
                "tiers.0.unit_amount": ["Tier 1: the unit price cannot be negative."],
                "tiers.1.flat_amount": ["Tier 2: the flat fee cannot be negative."],
            },
        ),
        (
            PriceSpec(PACKAGE, "USD", package_size=D(0)),
            {"package_size": ["The package size must be greater than zero."]},
        ),
        (
            PriceSpec(PERCENTAGE, "USD", percentage=D("100.1")),
            {"percentage": ["The percentage must be between 0 and 100."]},
        ),
        (PriceSpec(PERCENTAGE, "USD", percentage=D(-1)), {"percentage": ["The percentage must be between 0 and 100."]}),
        (
            PriceSpec(PERCENTAGE, "USD", fixed_fee=D("-0.3")),
            {"fixed_fee": ["The fixed fee per transaction cannot be negative."]},
        ),
        (
            PriceSpec(PERCENTAGE, "USD", min_per_transaction=D(5), max_per_transaction=D(1)),
            {"min_per_transaction": ["The minimum fee per transaction cannot be more than the maximum."]},
        ),
        (
            PriceSpec(PERCENTAGE, "USD", included_units=D("2.5")),
            {"included_units": ["Free transactions must be a whole number."]},
        ),
        (
            PriceSpec(PER_UNIT, "USD", amount=D(1), tiers=STRIPE_FONT_TIERS),
            {
                "tiers": [
                    "A per-unit price does not use tiers; only graduated, volume and graduated percentage prices do."
                ]
            },
        ),
        (
            PriceSpec(GRADUATED, "USD", amount=D(1), tiers=STRIPE_FONT_TIERS),
            {"amount": ["A graduated price does not use an amount; only flat, per-unit and package prices do."]},
        ),
        (
            PriceSpec(FLAT, "USD", amount=D(1), included_units=D(1)),
            {
                "included_units": [
                    "A flat price does not use included units; "
                    "only per-unit, graduated, volume, package and percentage prices do."
                ]
            },
        ),
        (
            PriceSpec(PER_UNIT, "USD", package_size=D(5)),
            {"package_size": ["A per-unit price does not use a package size; only package prices do."]},
        ),
        (
            PriceSpec(PER_UNIT, "USD", amount=D(1), package_rounding=DOWN),
            {"package_rounding": ["A per-unit price does not use rounding down; only package prices do."]},
        ),
        (
            PriceSpec(GRADUATED_PERCENTAGE, "USD"),
            {"tiers": ["A graduated percentage price needs at least one tier."]},
        ),
        (
            PriceSpec(
                GRADUATED_PERCENTAGE,
                "USD",
                tiers=(Tier(D(1000), percentage=D("100.5")), Tier(None, percentage=D(-1))),
            ),
            {
                "tiers.0.percentage": ["Tier 1: the percentage must be between 0 and 100."],
                "tiers.1.percentage": ["Tier 2: the percentage must be between 0 and 100."],
            },
        ),  # fmt: skip
        (
            PriceSpec(GRADUATED_PERCENTAGE, "USD", tiers=(Tier(D(1000), percentage=D(1)), Tier(D(1000)), Tier(None))),
            {"tiers.1.up_to": ["Tier 2 must end above tier 1, which ends at 1,000.00 USD."]},  # tiers cannot overlap
        ),
        (
            PriceSpec(GRADUATED_PERCENTAGE, "USD", tiers=(Tier(None, D("0.5"), percentage=D(1)),)),
            {
                "tiers.0.unit_amount": [
                    "Tier 1: a graduated percentage tier takes a percentage of the amount, not a unit price; "
                    "leave the unit price at 0."
                ]
            },
        ),
        (
            PriceSpec(VOLUME, "USD", tiers=(Tier(None, D(1), percentage=D(2)),)),
            {
                "tiers.0.percentage": [
                    "Tier 1: a volume tier has a unit price, not a percentage; only graduated percentage prices "
                    "take a percentage per tier."
                ]
            },
        ),
        (
            PriceSpec(
                GRADUATED_PERCENTAGE,
                "USD",
                amount=D(1),
                included_units=D(5),
                fixed_fee=D("0.3"),
                tiers=(Tier(None, percentage=D(1)),),
            ),
            {
                "amount": [
                    "A graduated percentage price does not use an amount; only flat, per-unit and package prices do."
                ],
                "included_units": [
                    "A graduated percentage price does not use included units; "
                    "only per-unit, graduated, volume, package and percentage prices do."
                ],
                "fixed_fee": [
                    "A graduated percentage price does not use a fixed fee per transaction; only percentage prices do."
                ],
            },
        ),  # fmt: skip
        (
            PriceSpec(PER_UNIT, "USD", amount=D(1), tiers=LAGO_GRADUATED_PERCENTAGE_TIERS),
            {
                "tiers": [
                    "A per-unit price does not use tiers; only graduated, volume and graduated percentage prices do."
                ]
            },
        ),
        (
            PriceSpec(PACKAGE, "USD", percentage=D(2), fixed_fee=D(1), max_per_transaction=D(1)),
            {
                "percentage": ["A package price does not use a percentage; only percentage prices do."],
                "fixed_fee": ["A package price does not use a fixed fee per transaction; only percentage prices do."],
                "max_per_transaction": [
                    "A package price does not use a maximum fee per transaction; only percentage prices do."
                ],
            },
        ),
    ],
)
def test_price_validate_reports_each_problem_on_its_field(spec: PriceSpec, errors: dict[str, list[str]]) -> None:
    assert price_validate(spec) == errors
