"""Prices described and quotes explained in the active language: whole sentences from the catalogue,
amounts as the reader's language writes them ("US$7.00"). The English texts are pinned in
test_pricing.py."""

from decimal import Decimal

import pytest
from django.utils import translation

from apps.catalog.pricing import PackageRounding, PriceModel, PriceSpec, Tier, price_describe, price_quote

D = Decimal

# Stripe's Typographic tiers: 1–5 fonts at 7 USD, 6–10 at 6.50 USD, 11+ at 6 USD.
FONT_TIERS = (Tier(D(5), D(7)), Tier(D(10), D("6.5")), Tier(None, D(6)))


@pytest.fixture(autouse=True)
def chinese():
    with translation.override("zh-hans"):
        yield


def _explained(spec: PriceSpec, quantity: str, transactions: tuple[Decimal, ...] = ()) -> list[str]:
    return [line.description for line in price_quote(spec, quantity=D(quantity), transactions=transactions).lines]


def test_graduated_tiers_are_explained_in_chinese() -> None:
    # 5 × 7 + 5 × 6.50 + 2 × 6 = 79.50, after 1 included unit of 13.
    spec = PriceSpec(PriceModel.GRADUATED, "USD", tiers=FONT_TIERS, included_units=D(1))

    assert _explained(spec, "13") == [
        "包含单位：免费 1 个（共包含 1 个）",
        "第 1–5 个单位：5 × US$7.00",
        "第 6–10 个单位：5 × US$6.50",
        "第 11–12 个单位：2 × US$6.00",
    ]
    assert price_describe(spec) == (
        "累进阶梯：第 1–5 个单位：US$7.00；第 6–10 个单位：US$6.50；第 11 个及以上单位：US$6.00，前 1 个单位免费"
    )


def test_volume_package_and_percentage_prices_are_explained_in_chinese() -> None:
    volume = PriceSpec(PriceModel.VOLUME, "USD", tiers=(Tier(D(5), D(7), D(2)), Tier(None, D(6))))
    package = PriceSpec(PriceModel.PACKAGE, "USD", amount=D(10), package_size=D(60))
    whole_packages = PriceSpec(
        PriceModel.PACKAGE, "USD", amount=D(10), package_size=D(60), package_rounding=PackageRounding.DOWN
    )
    card = PriceSpec(
        PriceModel.PERCENTAGE, "USD", percentage=D("2.9"), fixed_fee=D("0.30"), min_per_transaction=D("0.50")
    )

    assert _explained(volume, "4") == ["全部 4 个单位按第 1 档计价（第 1–5 个单位）：4 × US$7.00 + 固定费用 US$2.00"]
    assert _explained(package, "61") == ["61 个单位，每包 60 个：2 包 × US$10.00（不足一包按一包计）"]
    assert price_describe(whole_packages) == "每包 60 个单位 US$10.00（仅计整包：不足一包的部分免费）"
    # 2.9 % of 10.00 + 0.30 = 0.59; of 5.00 + 0.30 = 0.445, raised to 0.50 (+0.055).
    assert _explained(card, "2", (D(10), D(5))) == [
        "US$15.00 的 2.9 %（2 笔交易）",
        "固定费用：2 × US$0.30",
        "按每笔交易最低费用 US$0.50 补足：1 笔交易",
    ]
    assert price_describe(card) == "每笔交易 2.9 % + US$0.30（最低 US$0.50）"


def test_graduated_percentage_is_explained_in_chinese() -> None:
    spec = PriceSpec(
        PriceModel.GRADUATED_PERCENTAGE,
        "USD",
        tiers=(Tier(D(1_000), flat_amount=D(200), percentage=D(1)), Tier(None, percentage=D(2))),
        minimum_amount=D(500),
    )

    assert _explained(spec, "1500") == [
        "前 US$1,000.00：US$1,000.00 的 1 % + 固定费用 US$200.00",
        "超过 US$1,000.00 至 US$1,500.00 的部分：US$500.00 的 2 %",
    ]
    assert price_describe(spec) == (
        "按金额累进百分比：前 US$1,000.00：1 % + 固定 US$200.00；超过 US$1,000.00：2 %，每周期最低 US$500.00"
    )
