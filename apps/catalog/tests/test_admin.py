from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from apps.catalog.models import Plan, PlanVersion, Price, PriceTier
from apps.catalog.tests.factories import PlanFactory, ProductFactory, add_charge
from apps.core.tests.test_admin import change_form_data
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def version_post(plan, *charges: dict, notes: str = "", minimum_commitments: tuple = ()) -> dict:
    """The add-version POST with charges (each: name, kind, price_model, metric_code, prices=[{currency,
    amount, …, tiers=[(up_to, unit_amount, flat_amount[, percentage]), …]}]) and minimum commitments
    ((currency, amount), …), as the nested inlines send it."""
    data = {
        "plan": plan.pk,
        "notes": notes,
        "charges-TOTAL_FORMS": len(charges),
        "charges-INITIAL_FORMS": 0,
        "minimum_commitments-TOTAL_FORMS": len(minimum_commitments),
        "minimum_commitments-INITIAL_FORMS": 0,
        "feature_grants-TOTAL_FORMS": 0,
        "feature_grants-INITIAL_FORMS": 0,
        "progressive_billing-TOTAL_FORMS": 0,
        "progressive_billing-INITIAL_FORMS": 0,
    }
    for index, (currency, amount) in enumerate(minimum_commitments):
        data.update({f"minimum_commitments-{index}-currency": currency, f"minimum_commitments-{index}-amount": amount})
    for index, charge in enumerate(charges):
        prefix = f"charges-{index}"
        data.update(
            {
                f"{prefix}-position": index + 1,
                f"{prefix}-kind": charge.get("kind", "recurring"),
                f"{prefix}-name": charge["name"],
                f"{prefix}-price_model": charge.get("price_model", "per_unit"),
                f"{prefix}-metric_code": charge.get("metric_code", ""),
                f"{prefix}-billing_timing": charge.get("billing_timing", "in_advance"),
                f"{prefix}-pooled_allowance": charge.get("pooled_allowance", ""),
                f"{prefix}-pool_code": charge.get("pool_code", ""),
                f"{prefix}-peak_start_hour": charge.get("peak_start_hour", ""),
                f"{prefix}-peak_end_hour": charge.get("peak_end_hour", ""),
                f"{prefix}-prices-TOTAL_FORMS": len(charge["prices"]),
                f"{prefix}-prices-INITIAL_FORMS": 0,
            }
        )
        for price_index, price in enumerate(charge["prices"]):
            price_prefix = f"{prefix}-prices-{price_index}"
            tiers = price.get("tiers", [])
            data.update(
                {
                    f"{price_prefix}-currency": price["currency"],
                    f"{price_prefix}-dimension_values": price.get("dimension_values", ""),
                    f"{price_prefix}-time_window": price.get("time_window", ""),
                    f"{price_prefix}-amount": price.get("amount", "0"),
                    f"{price_prefix}-package_size": price.get("package_size", 1),
                    f"{price_prefix}-package_rounding": price.get("package_rounding", "up"),
                    f"{price_prefix}-included_units": price.get("included_units", "0"),
                    f"{price_prefix}-percentage": price.get("percentage", "0"),
                    f"{price_prefix}-fixed_fee": price.get("fixed_fee", "0"),
                    f"{price_prefix}-min_per_transaction": price.get("min_per_transaction", ""),
                    f"{price_prefix}-max_per_transaction": price.get("max_per_transaction", ""),
                    f"{price_prefix}-minimum_amount": price.get("minimum_amount", ""),
                    f"{price_prefix}-tiers-TOTAL_FORMS": len(tiers),
                    f"{price_prefix}-tiers-INITIAL_FORMS": 0,
                }
            )
            for tier_index, (up_to, unit_amount, flat_amount, *percentage) in enumerate(tiers):
                tier_prefix = f"{price_prefix}-tiers-{tier_index}"
                data.update(
                    {
                        f"{tier_prefix}-position": tier_index + 1,
                        f"{tier_prefix}-up_to": up_to,
                        f"{tier_prefix}-unit_amount": unit_amount,
                        f"{tier_prefix}-flat_amount": flat_amount,
                        f"{tier_prefix}-percentage": percentage[0] if percentage else "0",
                    }
                )
    return data


PLATFORM_FEE = {"name": "Platform fee", "price_model": "flat", "prices": [{"currency": "USD", "amount": "99"}]}
GRADUATED_API_CALLS = {
    "name": "API calls",
    "price_model": "graduated",
    "prices": [{"currency": "USD", "tiers": [("1000", "0", "0"), ("10000", "0.002", "0"), ("", "0.001", "5")]}],
}


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("admin:catalog_product_changelist", ""),
        ("admin:catalog_product_changelist", "is_archived__exact=1"),
        ("admin:catalog_product_changelist", "q=cloud"),
        ("admin:catalog_plan_changelist", ""),
        ("admin:catalog_plan_changelist", "interval__exact=month&is_archived__exact=0"),
        ("admin:catalog_plan_changelist", "q=plan"),
        ("admin:catalog_planversion_changelist", ""),
        ("admin:catalog_planversion_changelist", "q=plan"),
        ("admin:catalog_price_changelist", ""),
        ("admin:catalog_price_changelist", "currency__exact=EUR&charge__price_model__exact=per_unit"),
        ("admin:catalog_price_changelist", "q=plan"),
    ],
)
def test_changelists_load_with_search_and_filters(client, superuser, url, query):
    PlanFactory.create_batch(3)
    client.force_login(superuser)
    response = client.get(f"{reverse(url)}?{query}")
    assert response.status_code == 200
    assert "errornote" not in response.content.decode()


def test_plan_list_shows_the_latest_version_and_its_prices(client, superuser):
    plan = PlanFactory()
    PlanFactory()
    client.force_login(superuser)

    response = client.get(reverse("admin:catalog_plan_changelist"), {"product__id__exact": plan.product_id})

    assert list(response.context["cl"].result_list) == [plan]
    assert "Subscription fee: 45.00 EUR, 49.00 USD" in response.content.decode()


def test_change_pages_load(client, superuser):
    plan = PlanFactory()
    version = plan.versions.get()
    price = Price.objects.filter(charge__plan_version=version).first()
    client.force_login(superuser)
    for url in [
        reverse("admin:catalog_product_change", args=[plan.product_id]),
        reverse("admin:catalog_plan_change", args=[plan.pk]),
        reverse("admin:catalog_plan_add"),
        reverse("admin:catalog_planversion_change", args=[version.pk]),
        reverse("admin:catalog_planversion_add") + f"?plan={plan.pk}",
        reverse("admin:catalog_price_change", args=[price.pk]),
    ]:
        assert client.get(url).status_code == 200, url


def test_list_queries_are_bounded(client, superuser, django_assert_max_num_queries):
    PlanFactory.create_batch(20)
    client.force_login(superuser)
    for url in [
        "admin:catalog_plan_changelist",
        "admin:catalog_planversion_changelist",
        "admin:catalog_price_changelist",
        "admin:catalog_product_changelist",
    ]:
        client.get(reverse(url))
        with django_assert_max_num_queries(12):
            assert client.get(reverse(url)).status_code == 200


def test_add_plan_then_a_version_with_tiers_inline(client, superuser):
    product = ProductFactory()
    client.force_login(superuser)
    form_page = client.get(reverse("admin:catalog_plan_add"))
    response = client.post(
        reverse("admin:catalog_plan_add"),
        change_form_data(form_page, product=product.pk, code="api", name="API", interval="month", interval_count=1),
    )
    assert response.status_code == 302
    plan = Plan.objects.get(code="api")

    response = client.post(
        reverse("admin:catalog_planversion_add"),
        version_post(plan, PLATFORM_FEE, GRADUATED_API_CALLS),
    )  # fmt: skip

    assert response.status_code == 302, response.context["errors"] if response.context else response
    version = plan.versions.get()
    assert version.number == 1
    assert [(charge.name, charge.price_model) for charge in version.charges.all()] == [
        ("Platform fee", "flat"),
        ("API calls", "graduated"),
    ]
    tiers = PriceTier.objects.filter(price__charge__name="API calls").order_by("position")
    assert [(tier.up_to, tier.unit_amount, tier.flat_amount) for tier in tiers] == [
        (Decimal("1000"), Decimal("0"), Decimal("0")),
        (Decimal("10000"), Decimal("0.002"), Decimal("0")),
        (None, Decimal("0.001"), Decimal("5")),
    ]


def test_a_fee_is_set_to_bill_in_arrears_on_the_version_page(client, superuser):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)
    assert "billing_timing" in client.get(reverse("admin:catalog_planversion_add")).content.decode()
    fee = {"name": "Support", "price_model": "flat", "billing_timing": "in_arrears",
           "prices": [{"currency": "USD", "amount": "30"}]}  # fmt: skip

    response = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, fee))

    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert plan.versions.get().charges.get().billing_timing == "in_arrears"
    response = client.post(
        reverse("admin:catalog_planversion_add"), version_post(plan, {**fee, "billing_timing": "later"})
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert plan.versions.count() == 1


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([("1000", "0", "0"), ("500", "0.002", "0"), ("", "0.001", "0")], "Tier 2 must end above tier 1"),
        ([("1000", "0", "0"), ("", "0.002", "0"), ("", "0.001", "0")], "Only the last tier can be open-ended"),
        ([("1000", "0", "0"), ("5000", "0.002", "0")], "The last tier must be open-ended"),
        ([], "A graduated price needs at least one tier."),
    ],
)
def test_bad_tiers_are_form_errors_and_nothing_is_saved(client, superuser, tiers, message):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)
    charge = {"name": "API calls", "price_model": "graduated", "prices": [{"currency": "USD", "tiers": tiers}]}

    response = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, charge))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PlanVersion.objects.exists()
    assert not PriceTier.objects.exists()


@pytest.mark.parametrize(
    ("charge", "message"),
    [
        ({"name": "Fee", "prices": [{"currency": "USD", "amount": "-1"}]}, "This cannot be negative."),
        ({"name": "Fee", "prices": [{"currency": "XYZ", "amount": "1"}]}, "Select a valid choice"),
        (
            {
                "name": "Fee",
                "price_model": "per_unit",
                "prices": [{"currency": "USD", "amount": "1", "percentage": "2"}],
            },
            "only percentage prices do",
        ),
        (
            {"name": "Fee", "price_model": "percentage", "prices": [{"currency": "USD", "percentage": "2"}]},
            "usage charge",
        ),
    ],
)
def test_bad_prices_are_form_errors_and_nothing_is_saved(client, superuser, charge, message):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    response = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, charge))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PlanVersion.objects.exists()


def test_charges_priced_in_different_currencies_are_refused(client, superuser):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planversion_add"),
        version_post(
            plan,
            {
                "name": "Platform fee",
                "prices": [{"currency": "USD", "amount": "10"}, {"currency": "EUR", "amount": "9"}],
            },
            {"name": "Seats", "prices": [{"currency": "USD", "amount": "5"}]},
        ),
    )

    assert response.status_code == 200
    assert "has no price in EUR" in response.content.decode()
    assert not PlanVersion.objects.exists()


def test_a_version_with_subscribers_is_read_only_and_can_be_copied(client, superuser):
    subscription = make_subscription()
    version = subscription.plan_version
    client.force_login(superuser)
    url = reverse("admin:catalog_planversion_change", args=[version.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert 'id="version-locked"' in page.content.decode()
    assert page.context["has_change_permission"] is False
    price = Price.objects.get(charge__plan_version=version, currency="USD")
    response = client.post(
        reverse("admin:catalog_price_change", args=[price.pk]), {"amount": "1.00", "currency": "USD"}
    )
    assert response.status_code == 403
    price.refresh_from_db()
    assert price.amount == Decimal("49.00")

    response = client.post(reverse("admin:catalog_planversion_copy", args=[version.pk]))

    new_version = PlanVersion.objects.get(plan=version.plan, number=2)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:catalog_planversion_change", args=[new_version.pk])
    assert client.get(response["Location"]).context["has_change_permission"] is True
    subscription.refresh_from_db()
    assert subscription.plan_version == version  # grandfathered


def test_price_calculator_explains_the_amount(client, superuser):
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    price = add_charge(
        version, name="API calls", price_model="graduated",
        tiers=[("5", "7", "0"), ("10", "6.5", "0"), (None, "6", "0")],
    )  # fmt: skip
    client.force_login(superuser)

    page = client.get(reverse("admin:catalog_price_change", args=[price.pk]), {"quantity": "12"})
    body = page.content.decode()
    assert page.status_code == 200
    assert "Units 6–10: 5 × 6.50 USD" in body
    assert "79.50 USD" in body

    live = client.get(reverse("admin:catalog_price_quote", args=[price.pk]), {"quantity": "12"})
    assert live.json()["amount"] == "79.50"
    assert [line["amount"] for line in live.json()["lines"]] == ["35", "32.5", "12"]

    bad = client.get(reverse("admin:catalog_price_quote", args=[price.pk]), {"quantity": "twelve"})
    assert bad.status_code == 400
    assert "Type a number" in bad.json()["error"]


def test_price_calculator_needs_view_permission(client, make_staff):
    plan = PlanFactory()
    price = Price.objects.filter(charge__plan_version__plan=plan).first()
    client.force_login(make_staff())

    response = client.get(reverse("admin:catalog_price_quote", args=[price.pk]), {"quantity": "1"})

    assert response.status_code == 403


def test_archived_product_takes_no_new_plans(client, superuser):
    product = ProductFactory(is_archived=True)
    client.force_login(superuser)
    form_page = client.get(reverse("admin:catalog_plan_add"))

    response = client.post(
        reverse("admin:catalog_plan_add"),
        change_form_data(form_page, product=product.pk, code="x", name="X", interval="month", interval_count=1),
    )

    assert response.status_code == 200
    assert "This product is archived and takes no new plans." in response.content.decode()


def test_products_and_plans_are_archived_not_deleted(client, superuser):
    plan = PlanFactory(prices=[Money("1", "USD")])
    client.force_login(superuser)

    assert client.get(reverse("admin:catalog_plan_delete", args=[plan.pk])).status_code == 403
    assert client.get(reverse("admin:catalog_product_delete", args=[plan.product_id])).status_code == 403


# --- the completed price models -------------------------------------------------------------------

PAYMENT_FEES = {
    "name": "Payment fees",
    "kind": "usage",
    "metric_code": "payments",
    "price_model": "graduated_percentage",
    "prices": [
        {"currency": "USD", "tiers": [("1000", "0", "200", "1"), ("10000", "0", "300", "2"), ("", "0", "400", "3")]}
    ],
}


def _payment_fees(*tiers: tuple) -> dict:
    return {**PAYMENT_FEES, "prices": [{"currency": "USD", "tiers": list(tiers)}]}


HOURS_ROUNDED_DOWN = {
    "name": "Rental hours",
    "price_model": "package",
    "prices": [{"currency": "USD", "amount": "10", "package_size": 60, "package_rounding": "down"}],
}


@pytest.fixture
def payments_metric():
    from apps.catalog.models import BillableMetric

    return BillableMetric.objects.create(code="payments", name="Payments", aggregation="sum", field_name="amount")


def test_add_a_version_with_the_new_models_and_a_minimum_commitment(client, superuser, payments_metric):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planversion_add"),
        version_post(plan, PLATFORM_FEE, HOURS_ROUNDED_DOWN, PAYMENT_FEES, minimum_commitments=[("USD", "1000")]),
    )

    assert response.status_code == 302, response.context["errors"] if response.context else response
    version = plan.versions.get()
    assert version.charges.get(name="Rental hours").prices.get().package_rounding == "down"
    tiers = PriceTier.objects.filter(price__charge__name="Payment fees").order_by("position")
    assert [(tier.up_to, tier.percentage, tier.flat_amount) for tier in tiers] == [
        (Decimal("1000"), Decimal("1"), Decimal("200")),
        (Decimal("10000"), Decimal("2"), Decimal("300")),
        (None, Decimal("3"), Decimal("400")),
    ]
    assert [(row.currency, row.amount) for row in version.minimum_commitments.all()] == [("USD", Decimal("1000"))]
    page = client.get(reverse("admin:catalog_planversion_change", args=[version.pk])).content.decode()
    assert 'id="price-model-fields"' in page and "catalog/price_model_fields.js" in page


@pytest.mark.parametrize(
    ("charges", "commitments", "message"),
    [
        (
            [_payment_fees(("1000", "0", "0", "150"), ("", "0", "0", "1"))],
            [],
            "percentage",
        ),
        (
            [_payment_fees(("1000", "0.5", "0", "1"), ("", "0", "0", "1"))],
            [],
            "a graduated percentage tier takes a percentage of the amount, not a unit price",
        ),
        (
            [{**PAYMENT_FEES, "kind": "recurring", "metric_code": ""}],
            [],
            "Percentage and graduated percentage prices apply to usage charges only.",
        ),
        (
            [{"name": "Seats", "prices": [{"currency": "USD", "amount": "5", "package_rounding": "down"}]}],
            [],
            "does not use rounding down",
        ),
        ([PLATFORM_FEE], [("EUR", "100")], "The plan is not priced in EUR"),
        ([PLATFORM_FEE], [("USD", "0")], "A minimum commitment is more than 0."),
    ],
)  # fmt: skip
def test_bad_new_prices_and_commitments_are_form_errors_and_nothing_is_saved(
    client, superuser, payments_metric, charges, commitments, message
):
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    response = client.post(
        reverse("admin:catalog_planversion_add"), version_post(plan, *charges, minimum_commitments=commitments)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PlanVersion.objects.exists()
    assert not PriceTier.objects.exists()


def test_a_price_page_shows_only_its_models_fields_and_the_calculator_prices_an_amount(client, superuser):
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    fees = add_charge(
        version, name="Payment fees", kind="usage", metric_code="payments", price_model="graduated_percentage",
        tiers=[("1000", "0", "200"), (None, "0", "300")],
    )  # fmt: skip
    PriceTier.objects.filter(price=fees, position=1).update(percentage=Decimal(1))
    PriceTier.objects.filter(price=fees, position=2).update(percentage=Decimal(2))
    hours = add_charge(version, name="Hours", price_model="package", amount=Decimal(10), package_size=60,
                       package_rounding="down")  # fmt: skip
    client.force_login(superuser)

    fees_page = client.get(reverse("admin:catalog_price_change", args=[fees.pk]), {"quantity": "5050"})
    form = fees_page.context["adminform"].form
    assert set(form.fields) == {"currency", "minimum_amount"}  # the tiers are all a graduated percentage uses
    tier_form = fees_page.context["inline_admin_formsets"][0].formset.forms[0]
    assert {"up_to", "percentage", "flat_amount"} <= set(tier_form.fields)
    assert "unit_amount" not in tier_form.fields
    body = fees_page.content.decode()
    assert "Above 1,000.00 USD up to 5,050.00 USD: 2 % of 4,050.00 USD + 300.00 USD flat fee" in body
    assert "591.00 USD" in body
    assert '<label for="calculator-quantity">Amount</label>' in body

    hours_page = client.get(reverse("admin:catalog_price_change", args=[hours.pk]))
    assert set(hours_page.context["adminform"].form.fields) == {
        "currency", "amount", "package_size", "package_rounding", "included_units", "minimum_amount",
    }  # fmt: skip
    assert hours_page.context["inline_admin_formsets"] == []  # no tiers on a package price
    live = client.get(reverse("admin:catalog_price_quote", args=[hours.pk]), {"quantity": "150"})
    assert live.json()["amount"] == "20.00"
    assert (
        live.json()["lines"][0]["description"]
        == "150 units in packages of 60: 2 × 10.00 USD (a partial package is free)"
    )


def test_a_price_without_tiers_is_checked_on_its_own_page_and_nothing_is_saved(client, superuser):
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    price = add_charge(
        version, name="Payments", kind="usage", metric_code="payments", price_model="percentage",
        percentage=Decimal("2.9"), fixed_fee=Decimal("0.30"),
    )  # fmt: skip
    client.force_login(superuser)
    url = reverse("admin:catalog_price_change", args=[price.pk])

    response = client.post(
        url, change_form_data(client.get(url), min_per_transaction="5", max_per_transaction="1", percentage="3")
    )

    assert response.status_code == 200
    assert "The minimum fee per transaction cannot be more than the maximum." in response.content.decode()
    price.refresh_from_db()
    assert (price.percentage, price.min_per_transaction, price.max_per_transaction) == (Decimal("2.9"), None, None)


def test_dimension_prices_are_added_with_the_version_and_checked_against_the_metric(client, superuser):
    from apps.catalog.models import BillableMetric

    BillableMetric.objects.create(code="transfer", name="Transfer", group_by="region")
    plan = PlanFactory(prices=[])
    client.force_login(superuser)

    def transfer(dimension_values: str) -> dict:
        return {
            "name": "Transfer", "kind": "usage", "metric_code": "transfer", "price_model": "per_unit",
            "prices": [
                {"currency": "USD", "amount": "0.09"},
                {"currency": "USD", "amount": "0.05", "dimension_values": dimension_values},
            ],
        }  # fmt: skip

    refused = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, transfer('{"zone": "a"}')))

    assert refused.status_code == 200
    assert "&#x27;zone&#x27; is not a property the metric &#x27;transfer&#x27; groups by" in refused.content.decode()
    assert not PlanVersion.objects.exists()

    saved = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, transfer('{"region": "eu"}')))

    assert saved.status_code == 302
    prices = Price.objects.filter(charge__name="Transfer").order_by("amount")
    assert [(price.amount, price.dimension_values) for price in prices] == [
        (Decimal("0.05"), {"region": "eu"}),
        (Decimal("0.09"), {}),
    ]
    version = plan.versions.get()
    page = client.get(reverse("admin:catalog_planversion_change", args=[version.pk])).content.decode()
    assert "USD (region eu)" in page and "USD (default)" in page


def test_pooled_allowances_and_peak_hours_are_set_with_the_version_and_checked(client, superuser):
    from apps.catalog.models import BillableMetric, Charge

    BillableMetric.objects.create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    BillableMetric.objects.create(code="users", name="Users", aggregation="unique_count", field_name="user")
    plan = PlanFactory(prices=[])
    client.force_login(superuser)
    data = {
        "name": "Data", "kind": "usage", "metric_code": "data_gb", "price_model": "per_unit",
        "pooled_allowance": "1", "prices": [{"currency": "USD", "amount": "2.00"}],
    }  # fmt: skip
    transfer = {
        "name": "Transfer", "kind": "usage", "metric_code": "data_gb", "price_model": "per_unit",
        "peak_start_hour": "8", "peak_end_hour": "22",
        "prices": [{"currency": "USD", "amount": "0.05"}, {"currency": "USD", "amount": "0.10", "time_window": "peak"}],
    }  # fmt: skip

    unpoolable = client.post(
        reverse("admin:catalog_planversion_add"), version_post(plan, {**data, "metric_code": "users"}, transfer)
    )
    same_hour = client.post(
        reverse("admin:catalog_planversion_add"), version_post(plan, data, {**transfer, "peak_end_hour": "8"})
    )

    assert (unpoolable.status_code, same_hour.status_code) == (200, 200)
    assert "a pool is consumed event by event, so it needs a count or sum metric." in unpoolable.content.decode()
    assert "Peak hours are a start and an end hour (0–23) that differ" in same_hour.content.decode()
    assert not PlanVersion.objects.exists()

    saved = client.post(reverse("admin:catalog_planversion_add"), version_post(plan, data, transfer))

    assert saved.status_code == 302
    assert Charge.objects.get(name="Data").pooled_allowance == Decimal(1)
    peak = Charge.objects.get(name="Transfer")
    assert (peak.peak_start_hour, peak.peak_end_hour) == (8, 22)
    assert peak.peak_price_for("USD").amount == Decimal("0.10")
    assert peak.price_for("USD").amount == Decimal("0.05")
    page = client.get(reverse("admin:catalog_planversion_change", args=[peak.plan_version_id])).content.decode()
    assert "peak hours 08:00–22:00" in page and "USD (peak hours)" in page and "USD (off-peak hours)" in page
    assert "pooled allowance 1 per subscription" in page


def test_a_pool_code_is_set_with_the_version_and_bad_ones_are_form_errors(client, superuser):
    from apps.catalog.models import BillableMetric, Charge

    BillableMetric.objects.create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    BillableMetric.objects.create(code="sms", name="SMS", aggregation="count")
    small, large = PlanFactory(prices=[], name="SIM 1 GB"), PlanFactory(prices=[], name="SIM 5 GB")
    client.force_login(superuser)
    data = {
        "name": "Data", "kind": "usage", "metric_code": "data_gb", "price_model": "per_unit",
        "pooled_allowance": "1", "pool_code": "fleet-data", "prices": [{"currency": "USD", "amount": "2.00"}],
    }  # fmt: skip
    add_url = reverse("admin:catalog_planversion_add")
    assert client.post(add_url, version_post(small, data)).status_code == 302

    no_allowance = client.post(add_url, version_post(large, {**data, "pooled_allowance": ""}))
    other_metric = client.post(add_url, version_post(large, {**data, "metric_code": "sms"}))

    assert (no_allowance.status_code, other_metric.status_code) == (200, 200)
    assert "Only a charge with a pooled allowance names a pool" in no_allowance.content.decode()
    assert (
        "The pool &#x27;fleet-data&#x27; adds up the metric &#x27;data_gb&#x27; (plan SIM 1 GB); this charge bills "
        "&#x27;sms&#x27;." in other_metric.content.decode()
    )
    assert not PlanVersion.objects.filter(plan=large).exists()

    saved = client.post(add_url, version_post(large, {**data, "pooled_allowance": "5"}))

    assert saved.status_code == 302
    charge = Charge.objects.get(plan_version__plan=large)
    assert (charge.pool_code, charge.pooled_allowance) == ("fleet-data", Decimal(5))
    page = client.get(reverse("admin:catalog_planversion_change", args=[charge.plan_version_id])).content.decode()
    assert "pooled allowance 5 per subscription · pool fleet-data" in page


def test_a_plan_of_a_pool_cannot_move_to_another_interval_than_the_pools_other_plans(client, superuser):
    from apps.catalog.models import BillableMetric

    BillableMetric.objects.create(code="data_gb", name="Data", aggregation="sum", field_name="gb")
    monthly, other = PlanFactory(prices=[], name="SIM monthly"), PlanFactory(prices=[], name="SIM 5 GB")
    client.force_login(superuser)
    data = {
        "name": "Data", "kind": "usage", "metric_code": "data_gb", "price_model": "per_unit",
        "pooled_allowance": "1", "pool_code": "fleet-data", "prices": [{"currency": "USD", "amount": "2.00"}],
    }  # fmt: skip
    for plan in (monthly, other):
        assert client.post(reverse("admin:catalog_planversion_add"), version_post(plan, data)).status_code == 302
    url = reverse("admin:catalog_plan_change", args=[other.pk])

    response = client.post(url, change_form_data(client.get(url), interval="year"))

    assert response.status_code == 200
    assert (
        "The pool &#x27;fleet-data&#x27; is shared with the plan SIM monthly, billed monthly: the plans of one pool "
        "bill on the same interval." in response.content.decode()
    )
    other.refresh_from_db()
    assert other.interval == "month"
