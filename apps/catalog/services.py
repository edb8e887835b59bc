"""Catalog services: products, plans and their versions, charges and prices; billable metrics;
coupons and the discounts they give once redeemed.

A plan version is immutable once a subscription uses it: changing its prices means a new version
(`plan_version_create`, or `plan_version_copy` to start from the current one), and existing
subscribers stay on theirs until migrated (`apps.subscriptions.services.subscription_migrate_version`).
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext
from djmoney.money import Money

from apps.core import clock
from apps.core.errors import NotEditable, NotFound, ValidationFailed
from apps.core.money import has_more_decimals_than_currency, is_supported_currency
from apps.core.validation import validate_instance

from . import pricing
from .constants import (
    DEFAULT_LATENESS_WINDOW_DAYS,
    SIMPLE_CHARGE_NAME,
    USAGE_ONLY_MODELS,
    BillingTiming,
    ChargeKind,
    CouponDuration,
    DiscountType,
    FeatureKind,
    MetricAggregation,
    PackageRounding,
    PriceModelChoice,
    PriceTimeWindow,
    TrialUsage,
)
from .models import (
    GROUP_KEY_SEPARATOR,
    BillableMetric,
    Charge,
    Coupon,
    CouponAmount,
    Feature,
    FeatureGrant,
    MinimumCommitment,
    Plan,
    PlanVersion,
    Price,
    PriceTier,
    Product,
    ProgressiveBilling,
    code_validator,
    dimension_label,
    grant_value_normalize,
    group_key_of,
)


@dataclass(frozen=True)
class TierInput:
    up_to: Decimal | None
    unit_amount: Decimal = Decimal(0)
    flat_amount: Decimal = Decimal(0)
    percentage: Decimal = Decimal(0)  # graduated percentage tiers


@dataclass(frozen=True)
class PriceInput:
    currency: str
    amount: Decimal = Decimal(0)
    tiers: Sequence[TierInput] = ()
    package_size: int = 1
    package_rounding: str = PackageRounding.UP
    included_units: Decimal = Decimal(0)
    percentage: Decimal = Decimal(0)
    fixed_fee: Decimal = Decimal(0)
    min_per_transaction: Decimal | None = None
    max_per_transaction: Decimal | None = None
    minimum_amount: Decimal | None = None
    # Usage charges on a grouped metric: the group this price is for ({"region": "eu"}); empty: the default.
    dimension_values: Mapping[str, str] = field(default_factory=dict)
    # Usage charges with peak hours: "peak" for the price of the peak hours; empty for the default price.
    time_window: str = PriceTimeWindow.ALL_HOURS


@dataclass(frozen=True)
class ChargeInput:
    name: str
    prices: Sequence[PriceInput]
    kind: str = ChargeKind.RECURRING
    price_model: str = PriceModelChoice.PER_UNIT
    metric_code: str = ""
    billing_timing: str = BillingTiming.IN_ADVANCE
    # Usage charges: units each subscription adds to the pool of the customer's subscriptions on the plan.
    pooled_allowance: Decimal | None = None
    # Pooled charges: a pool shared across plans (docs/pricing.md, "Pools across plans"); empty: the plan's.
    pool_code: str = ""
    # Usage charges: peak hours [start, end) in the customer's time zone, whole hours 0–23 (past midnight
    # when end < start), priced by the charge's peak price on a line of their own.
    peak_start_hour: int | None = None
    peak_end_hour: int | None = None


def price_input_spec(charge: ChargeInput, price: PriceInput) -> pricing.PriceSpec:
    return pricing.PriceSpec(
        model=pricing.PriceModel(charge.price_model),
        currency=price.currency,
        amount=price.amount,
        tiers=tuple(pricing.Tier(t.up_to, t.unit_amount, t.flat_amount, t.percentage) for t in price.tiers),
        package_size=Decimal(price.package_size),
        package_rounding=pricing.PackageRounding(price.package_rounding),
        included_units=price.included_units,
        percentage=price.percentage,
        fixed_fee=price.fixed_fee,
        min_per_transaction=price.min_per_transaction,
        max_per_transaction=price.max_per_transaction,
        minimum_amount=price.minimum_amount,
    )


@transaction.atomic
def product_create(*, code: str, name: str, description: str = "") -> Product:
    product = Product(code=code, name=name, description=description)
    validate_instance(product)
    product.save()
    return product


@transaction.atomic
def billable_metric_create(
    *,
    code: str,
    name: str,
    aggregation: str = MetricAggregation.COUNT,
    field_name: str = "",
    filters: dict[str, list[str]] | None = None,
    group_by: str = "",
    description: str = "",
    lateness_window_days: int = DEFAULT_LATENESS_WINDOW_DAYS,
    time_unit: str = "",
    percentile: Decimal | None = None,
    interval_minutes: int | None = None,
) -> BillableMetric:
    """Create a billable metric (see docs/usage.md); every refusal names the field it concerns.

    `time_unit` is for weighted sums (hour, day, month); `percentile` (above 0, at most 100) and
    `interval_minutes` (a divisor of 60) for percentile metrics."""
    metric = BillableMetric(
        code=code,
        name=name,
        description=description,
        aggregation=aggregation,
        field_name=field_name,
        filters=filters if filters is not None else {},
        group_by=group_by,
        lateness_window_days=lateness_window_days,
        time_unit=time_unit,
        percentile=percentile,
        interval_minutes=interval_minutes,
    )
    validate_instance(metric)
    metric.save()
    return metric


@transaction.atomic
def plan_create(
    *,
    product: Product,
    code: str,
    name: str,
    prices: Sequence[Money] = (),
    charges: Sequence[ChargeInput] = (),
    minimum_commitments: Sequence[Money] = (),
    interval: str = "month",
    interval_count: int = 1,
    trial_days: int = 0,
    trial_usage: str = TrialUsage.FREE,
    description: str = "",
) -> Plan:
    """Create a plan and its first version.

    Either `charges` (any price models) or, for the common case of one fee per period, `prices`: a
    per-unit recurring "Subscription fee" in one or more currencies (the fee × the subscription's
    quantity). `minimum_commitments`: at most one amount per currency the plan prices in, the least
    a subscriber's period comes to (a true-up line makes up the difference)."""
    if product.is_archived:
        raise ValidationFailed(
            gettext("This product is archived."), fields={"product": [gettext("This product is archived.")]}
        )
    if prices and charges:
        raise ValidationFailed(
            gettext("Give either prices or charges, not both."),
            fields={"prices": [gettext("Give either prices or charges, not both.")]},
        )
    if not prices and not charges:
        raise ValidationFailed(
            gettext("A plan needs a price in at least one currency."),
            fields={"prices": [gettext("Give at least one price.")]},
        )
    if prices:
        _validate_simple_prices(prices)
        charges = [
            ChargeInput(
                name=SIMPLE_CHARGE_NAME,
                prices=[PriceInput(currency=str(money.currency), amount=money.amount) for money in prices],
            )
        ]
    plan = Plan(
        product=product,
        code=code,
        name=name,
        description=description,
        interval=interval,
        interval_count=interval_count,
        trial_days=trial_days,
        trial_usage=trial_usage,
    )
    validate_instance(plan)
    plan.save()
    _version_create(
        plan=plan, number=1, charges=charges, minimum_commitments=minimum_commitments, notes="First version."
    )
    return plan


@transaction.atomic
def plan_version_create(
    *, plan: Plan, charges: Sequence[ChargeInput], minimum_commitments: Sequence[Money] = (), notes: str = ""
) -> PlanVersion:
    """Add a new version to a plan; new subscribers take it, existing ones keep theirs."""
    plan = Plan.objects.select_for_update().get(pk=plan.pk)  # serialize version numbering per plan
    if plan.is_archived:
        raise ValidationFailed(gettext("This plan is archived."), fields={"plan": [gettext("This plan is archived.")]})
    number = (plan.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    return _version_create(
        plan=plan, number=number, charges=charges, minimum_commitments=minimum_commitments, notes=notes
    )


@transaction.atomic
def plan_version_copy(*, version: PlanVersion, notes: str = "") -> PlanVersion:
    """A new version of the plan with the same charges, prices, minimum commitments, grants and progressive
    billing thresholds as `version`, to be edited."""
    new_version = plan_version_create(
        plan=version.plan,
        charges=plan_version_charge_inputs(version),
        minimum_commitments=plan_version_minimum_commitments(version),
        notes=notes or gettext("Copied from v%(number)s.") % {"number": version.number},
    )
    FeatureGrant.objects.bulk_create(
        [
            FeatureGrant(plan_version=new_version, feature_id=grant.feature_id, value=grant.value)
            for grant in version.feature_grants.all()
        ]
    )
    ProgressiveBilling.objects.bulk_create(
        [
            ProgressiveBilling(
                plan_version=new_version, currency=row.currency, amounts=row.amounts, every=row.every, scope=row.scope
            )
            for row in version.progressive_billing.all()
        ]
    )
    return new_version


@transaction.atomic
def plan_version_replace_charges(
    *,
    version: PlanVersion,
    charges: Sequence[ChargeInput],
    minimum_commitments: Sequence[Money] | None = None,
    notes: str | None = None,
) -> PlanVersion:
    """Rewrite the charges (and, when given, the minimum commitments; otherwise the version keeps
    its own) of a version that nobody is subscribed to yet."""
    version = PlanVersion.objects.select_for_update().get(pk=version.pk)
    plan_version_ensure_editable(version)
    if minimum_commitments is None:
        minimum_commitments = plan_version_minimum_commitments(version)
    _raise_problems(
        {
            **charges_validate(charges, plan=version.plan, version=version),
            **minimum_commitments_validate(minimum_commitments, charges),
        }
    )
    version.charges.all().delete()
    version.minimum_commitments.all().delete()
    _charges_create(version, charges)
    _minimum_commitments_create(version, minimum_commitments)
    if notes is not None:
        version.notes = notes
        version.save(update_fields=["notes", "updated_at"])
    return version


def plan_version_is_locked(version: PlanVersion) -> bool:
    """A version is locked (immutable) once anything depends on its prices: a subscription on it (now
    or in the past), a migration or a change scheduled to it, or an invoice line or item it priced."""
    return (
        version.subscriptions.exists()
        or version.pending_subscriptions.exists()
        or version.scheduled_changes.exists()
        or version.charges.filter(invoice_lines__isnull=False).exists()
    )


def plan_version_ensure_editable(version: PlanVersion) -> None:
    if plan_version_is_locked(version):
        raise NotEditable(
            gettext(
                "%(version)s has subscribers, so its prices cannot change. Create a new version instead; "
                "subscribers keep theirs until you migrate them."
            )
            % {"version": version},
            fields={"charges": [gettext("This version has subscribers and cannot be edited; create a new version.")]},
        )


def plan_version_charge_inputs(version: PlanVersion) -> list[ChargeInput]:
    return [
        ChargeInput(
            name=charge.name,
            kind=charge.kind,
            price_model=charge.price_model,
            metric_code=charge.metric_code,
            billing_timing=charge.billing_timing,
            pooled_allowance=charge.pooled_allowance,
            pool_code=charge.pool_code,
            peak_start_hour=charge.peak_start_hour,
            peak_end_hour=charge.peak_end_hour,
            prices=[
                PriceInput(
                    currency=price.currency,
                    amount=price.amount,
                    tiers=[
                        TierInput(
                            up_to=tier.up_to,
                            unit_amount=tier.unit_amount,
                            flat_amount=tier.flat_amount,
                            percentage=tier.percentage,
                        )
                        for tier in price.tiers.all()
                    ],
                    dimension_values=dict(price.dimension_values),
                    **_price_values(price),
                )
                for price in charge.prices.all()
            ],
        )
        for charge in version.charges.prefetch_related("prices__tiers")
    ]


# The fields a price has besides its currency, amount and tiers (same names on `PriceInput` and `Price`).
PRICE_VALUE_FIELDS = (
    "package_size", "package_rounding", "included_units", "percentage", "fixed_fee", "min_per_transaction",
    "max_per_transaction", "minimum_amount", "time_window",
)  # fmt: skip


def plan_version_minimum_commitments(version: PlanVersion) -> list[Money]:
    """A version's minimum commitments, one amount per currency."""
    return [row.amount_money for row in version.minimum_commitments.all()]


def _price_values(price: "PriceInput | Price") -> dict:
    return {name: getattr(price, name) for name in PRICE_VALUE_FIELDS}


def _version_create(
    *, plan: Plan, number: int, charges: Sequence[ChargeInput], minimum_commitments: Sequence[Money], notes: str
) -> PlanVersion:
    _raise_problems(
        {**charges_validate(charges, plan=plan), **minimum_commitments_validate(minimum_commitments, charges)}
    )
    version = PlanVersion(plan=plan, number=number, notes=notes)
    validate_instance(version)
    version.save()
    _charges_create(version, charges)
    _minimum_commitments_create(version, minimum_commitments)
    return version


def minimum_commitments_validate(commitments: Sequence[Money], charges: Sequence[ChargeInput]) -> dict[str, list[str]]:
    """Every problem with a version's minimum commitments, keyed `minimum_commitments.<i>.<field>`:
    at most one per currency, only in a currency the version's charges are priced in, more than 0,
    with at most the currency's decimals."""
    problems: dict[str, list[str]] = {}
    priced_in = {price.currency for charge in charges for price in charge.prices}
    seen: set[str] = set()
    for index, money in enumerate(commitments):
        currency, key = str(money.currency), f"minimum_commitments.{index}"
        if not is_supported_currency(currency):
            problems.setdefault(f"{key}.currency", []).append(
                gettext("%(currency)r is not one of the currencies this seller bills in.") % {"currency": currency}
            )
            continue
        if currency in seen:
            problems.setdefault(f"{key}.currency", []).append(
                gettext("The version already has a minimum commitment in %(currency)s.") % {"currency": currency}
            )
        elif currency not in priced_in:
            listed = ", ".join(sorted(priced_in)) or "no currency yet"
            problems.setdefault(f"{key}.currency", []).append(
                gettext(
                    "The plan is not priced in %(currency)s (its charges are priced in %(listed)s): a minimum "
                    "commitment must be in a currency its subscribers are billed in."
                )
                % {"currency": currency, "listed": listed}
            )
        seen.add(currency)
        if not money.amount.is_finite() or money.amount <= 0:
            problems.setdefault(f"{key}.amount", []).append(
                gettext("A minimum commitment is more than 0; leave it out for none.")
            )
        elif has_more_decimals_than_currency(money.amount, currency):
            problems.setdefault(f"{key}.amount", []).append(
                gettext("A minimum commitment in %(currency)s has at most the currency's decimals.")
                % {"currency": currency}
            )
        elif money.amount >= Decimal(10) ** 13:
            problems.setdefault(f"{key}.amount", []).append(gettext("This amount is too large."))
    return problems


def _minimum_commitments_create(version: PlanVersion, commitments: Sequence[Money]) -> None:
    MinimumCommitment.objects.bulk_create(
        MinimumCommitment(plan_version=version, currency=str(money.currency), amount=money.amount)
        for money in commitments
    )


def price_problems(*, price_model: str, price: PriceInput) -> dict[str, list[str]]:
    """Every problem with one price of a charge of `price_model`, keyed by field name (`amount`,
    `tiers.1.up_to`, …); empty when it can be saved. The rules of every price: a catalog price, and a
    subscription's custom price (`apps.subscriptions.services.subscription_price_override_set`)."""
    if not is_supported_currency(price.currency):
        return {
            "currency": [
                gettext("%(currency)r is not one of the currencies this seller bills in.")
                % {"currency": price.currency}
            ]
        }
    if not isinstance(price.package_size, int) or price.package_size < 1:
        return {"package_size": [gettext("A package holds at least one unit.")]}
    if price.package_rounding not in PackageRounding.values:
        return {
            "package_rounding": [
                gettext("A package price rounds %(values)s.") % {"values": " or ".join(PackageRounding.values)}
            ]
        }
    spec = price_input_spec(ChargeInput(name="", prices=(), price_model=price_model), price)
    return pricing.price_validate(spec)


def charges_validate(
    charges: Sequence[ChargeInput], *, plan: Plan | None = None, version: PlanVersion | None = None
) -> dict[str, list[str]]:
    """Every problem with a version's charges, keyed `charges.<i>.<field>` or
    `charges.<i>.prices.<j>.<field>`; empty when they can be saved.

    With `plan` (and `version`, when the charges replace that version's), the pools the charges name are
    also checked against the other plans' charges that name them (`_pool_code_plan_problems`)."""
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(key, []).append(message)

    if not charges:
        add("charges", gettext("A plan version needs at least one charge."))
        return problems
    currency_sets: list[set[str]] = []
    for index, charge in enumerate(charges):
        key = f"charges.{index}"
        if not charge.name.strip():
            add(f"{key}.name", gettext("Give the charge a name; it is printed on the invoice."))
        if charge.kind not in ChargeKind.values:
            add(
                f"{key}.kind",
                gettext("%(kind)r is not a charge kind (%(values)s).")
                % {"kind": charge.kind, "values": ", ".join(ChargeKind.values)},
            )
        if charge.price_model not in PriceModelChoice.values:
            add(
                f"{key}.price_model",
                gettext("%(price_model)r is not a price model (%(values)s).")
                % {"price_model": charge.price_model, "values": ", ".join(PriceModelChoice.values)},
            )
            continue
        if charge.billing_timing not in BillingTiming.values:
            add(
                f"{key}.billing_timing",
                gettext("%(billing_timing)r is not a billing timing (%(values)s).")
                % {"billing_timing": charge.billing_timing, "values": ", ".join(BillingTiming.values)},
            )
        if charge.kind == ChargeKind.USAGE and not charge.metric_code:
            add(f"{key}.metric_code", gettext("A usage charge needs the code of the metric it bills."))
        elif charge.kind == ChargeKind.USAGE and not BillableMetric.objects.filter(code=charge.metric_code).exists():
            add(
                f"{key}.metric_code",
                gettext("No billable metric has the code %(metric_code)r; create the metric first.")
                % {"metric_code": charge.metric_code},
            )
        if charge.kind == ChargeKind.RECURRING and charge.metric_code:
            add(
                f"{key}.metric_code", gettext("Only usage charges bill a metric; leave it empty on a recurring charge.")
            )
        if charge.kind == ChargeKind.RECURRING and charge.price_model in USAGE_ONLY_MODELS:
            label = PriceModelChoice(charge.price_model).label.lower()
            add(
                f"{key}.price_model",
                gettext("A %(label)s price takes a share of usage amounts: use it on a usage charge.")
                % {"label": label},
            )
        if not charge.prices:
            add(f"{key}.prices", gettext("Give the charge a price in at least one currency."))
        metric = _charge_metric(charge)
        if charge.pooled_allowance is not None:
            _pool_problems(charge, metric, f"{key}.pooled_allowance", add)
        if charge.pool_code:
            _pool_code_problems(charges, index, f"{key}.pool_code", add)
            if plan is not None:
                _pool_code_plan_problems(charge, plan, version, f"{key}.pool_code", add)
        if charge.peak_start_hour is not None or charge.peak_end_hour is not None:
            _peak_problems(charge, metric, key, add)
        seen: set[str] = set()  # currencies of the default prices
        seen_peak: set[str] = set()  # currencies of the peak prices
        seen_groups: set[tuple[str, str]] = set()
        for price_index, price in enumerate(charge.prices):
            price_key = f"{key}.prices.{price_index}"
            if price.time_window:
                if _peak_price_problems(charge, price, f"{price_key}.time_window", add):
                    if price.currency in seen_peak:
                        add(
                            f"{price_key}.time_window",
                            gettext("The charge already has a peak price in %(currency)s.")
                            % {"currency": price.currency},
                        )
                    seen_peak.add(price.currency)
            elif price.dimension_values:
                group = _dimension_problems(charge, metric, price, f"{price_key}.dimension_values", add)
                if group is not None and (price.currency, group) in seen_groups:
                    add(
                        f"{price_key}.dimension_values",
                        gettext("The charge already has a price in %(currency)s for %(dimension_values)s.")
                        % {
                            "currency": price.currency,
                            "dimension_values": dimension_label(dict(price.dimension_values)),
                        },
                    )
                if group is not None:
                    seen_groups.add((price.currency, group))
            else:
                if price.currency in seen:
                    add(
                        f"{price_key}.currency",
                        gettext("The charge already has a price in %(currency)s.") % {"currency": price.currency},
                    )
                seen.add(price.currency)
            for field_name, messages in price_problems(price_model=charge.price_model, price=price).items():
                for message in messages:
                    add(f"{price_key}.{field_name}", message)
        for price_index, price in enumerate(charge.prices):
            if price.time_window and price.currency not in seen and is_supported_currency(price.currency):
                add(
                    f"{key}.prices.{price_index}.currency",
                    gettext(
                        "A peak price in %(currency)s needs the charge's default price in %(currency)s (for the "
                        "off-peak hours)."
                    )
                    % {"currency": price.currency},
                )
            if price.dimension_values and price.currency not in seen and is_supported_currency(price.currency):
                add(
                    f"{key}.prices.{price_index}.currency",
                    gettext(
                        "A price for %(dimension_values)s in %(currency)s needs the charge's default price in "
                        "%(currency)s (for every other group)."
                    )
                    % {"dimension_values": dimension_label(dict(price.dimension_values)), "currency": price.currency},
                )
        currency_sets.append(seen)
    every = set.union(*currency_sets) if currency_sets else set()
    for index, currencies in enumerate(currency_sets):
        missing = sorted(every - currencies)
        if missing:
            add(
                f"charges.{index}.prices",
                gettext(
                    "This charge has no price in %(missing)s, which other charges of the version are priced "
                    "in: every charge needs a price in each currency the version bills in."
                )
                % {"missing": ", ".join(missing)},
            )
    return problems


# Pools are consumed event by event: the metric must add up per event (a count, or a sum of a field).
POOLABLE_AGGREGATIONS = frozenset({MetricAggregation.COUNT, MetricAggregation.SUM})


def _pool_problems(
    charge: ChargeInput, metric: BillableMetric | None, key: str, add: Callable[[str, str], None]
) -> None:
    """What stops a charge's pooled allowance (docs/pricing.md, "Pooled allowances")."""
    allowance = charge.pooled_allowance
    assert allowance is not None
    if charge.kind != ChargeKind.USAGE:
        add(key, gettext("Only usage charges have a pooled allowance; leave it empty on a recurring charge."))
        return
    if not allowance.is_finite() or allowance <= 0:
        add(key, gettext("A pooled allowance is more than 0 (the units each subscription adds to the pool)."))
        return
    if -min(0, int(allowance.normalize().as_tuple().exponent)) > 6:  # the field's precision
        add(key, gettext("A pooled allowance has at most 6 decimal places."))
    if charge.price_model in USAGE_ONLY_MODELS:
        label = PriceModelChoice(charge.price_model).label.lower()
        add(
            key,
            gettext("A %(label)s price prices amounts, not units beyond a pool: use another price model with a pool.")
            % {"label": label},
        )
    if metric is None:
        return
    if metric.aggregation not in POOLABLE_AGGREGATIONS:
        add(
            key,
            gettext(
                "The metric %(metric_code)r aggregates by %(aggregation)s; a pool is consumed event by "
                "event, so it needs a count or sum metric."
            )
            % {"metric_code": metric.code, "aggregation": metric.get_aggregation_display().lower()},
        )
    if metric.group_by:
        add(
            key,
            gettext("The metric %(metric_code)r is grouped by %(group_by)r; a pooled charge needs an ungrouped metric.")
            % {"metric_code": metric.code, "group_by": metric.group_by},
        )
    for price_index, price in enumerate(charge.prices):
        if price.included_units:
            add(
                key.replace("pooled_allowance", f"prices.{price_index}.included_units"),
                gettext("A pooled charge's allowance replaces included units: leave them at 0."),
            )


def _pool_code_problems(charges: Sequence[ChargeInput], index: int, key: str, add: Callable[[str, str], None]) -> None:
    """What stops a charge's pool code within its version (docs/pricing.md, "Pools across plans")."""
    charge = charges[index]
    if charge.pooled_allowance is None:
        add(
            key,
            gettext(
                "Only a charge with a pooled allowance names a pool: give the charge the allowance each "
                "subscription adds to the pool, or leave the pool code empty."
            ),
        )
        return
    try:
        code_validator(charge.pool_code)
    except DjangoValidationError:
        add(key, gettext("A pool code uses lower-case letters, digits, '.', '_' and '-' only."))
        return
    if len(charge.pool_code) > POOL_CODE_MAX_LENGTH:
        add(key, gettext("A pool code has at most 64 characters."))
    earlier = next((other for other in charges[:index] if other.pool_code == charge.pool_code), None)
    if earlier is not None:
        add(
            key,
            gettext(
                "The charge %(name)r of this version already names the pool %(pool_code)r: a plan adds to a "
                "pool with one charge."
            )
            % {"name": earlier.name, "pool_code": charge.pool_code},
        )


POOL_CODE_MAX_LENGTH = 64


def _pool_code_plan_problems(
    charge: ChargeInput, plan: Plan, version: PlanVersion | None, key: str, add: Callable[[str, str], None]
) -> None:
    """What stops a pool code against the other plans whose charges name the same pool: a pool adds up
    one metric, and is settled per billing period, so its plans bill on the same interval."""
    others = (
        Charge.objects.filter(pool_code=charge.pool_code)
        .exclude(plan_version=version)
        .select_related("plan_version__plan")
        .order_by("id")
    )
    for other in others:
        other_plan = other.plan_version.plan
        if other.metric_code != charge.metric_code:
            add(
                key,
                gettext(
                    "The pool %(pool_code)r adds up the metric %(other_metric)r (plan %(plan)s); this charge bills "
                    "%(metric)r. A pool is one metric's: use another pool code, or the metric %(other_metric)r."
                )
                % {
                    "pool_code": charge.pool_code,
                    "other_metric": other.metric_code,
                    "plan": other_plan.name,
                    "metric": charge.metric_code,
                },
            )
            return
        if (other_plan.interval, other_plan.interval_count) != (plan.interval, plan.interval_count):
            add(
                key,
                gettext(
                    "The pool %(pool_code)r is shared by the plan %(plan)s, billed %(other_interval)s; this plan is "
                    "billed %(interval)s. A pool is settled once per billing period, so the plans of one pool bill "
                    "on the same interval: use a pool per interval."
                )
                % {
                    "pool_code": charge.pool_code,
                    "plan": other_plan.name,
                    "other_interval": other_plan.interval_label,
                    "interval": plan.interval_label,
                },
            )
            return


def plan_interval_pool_problem(*, plan: Plan, interval: str, interval_count: int) -> str | None:
    """Why `plan` cannot be billed every `interval_count` `interval`s: one of its charges names a pool
    that a plan billed on another interval names too (docs/pricing.md, "Pools across plans")."""
    codes = set(
        Charge.objects.filter(plan_version__plan=plan).exclude(pool_code="").values_list("pool_code", flat=True)
    )
    other = (
        Charge.objects.filter(pool_code__in=codes)
        .exclude(plan_version__plan=plan)
        .exclude(plan_version__plan__interval=interval, plan_version__plan__interval_count=interval_count)
        .select_related("plan_version__plan")
        .order_by("id")
        .first()
    )
    if other is None:
        return None
    other_plan = other.plan_version.plan
    return gettext(
        "The pool %(pool_code)r is shared with the plan %(plan)s, billed %(other_interval)s: the plans of one pool "
        "bill on the same interval."
    ) % {"pool_code": other.pool_code, "plan": other_plan.name, "other_interval": other_plan.interval_label}


# Peak hours split a period's usage by the hour of the day: aggregations that add up (or take the highest)
# hour by hour, read from the hourly rollups.
PEAK_AGGREGATIONS = frozenset({MetricAggregation.COUNT, MetricAggregation.SUM, MetricAggregation.MAX})


def _peak_problems(
    charge: ChargeInput, metric: BillableMetric | None, key: str, add: Callable[[str, str], None]
) -> None:
    """What stops a charge's peak hours (docs/pricing.md, "Peak and off-peak prices")."""
    start, end = charge.peak_start_hour, charge.peak_end_hour
    if charge.kind != ChargeKind.USAGE:
        add(
            f"{key}.peak_start_hour",
            gettext("Only usage charges have peak hours; leave them empty on a recurring charge."),
        )
        return
    if start is None or end is None:
        missing = "peak_end_hour" if end is None else "peak_start_hour"
        add(f"{key}.{missing}", gettext("Give both the hour peak hours start and the hour they end (0–23)."))
        return
    for name, hour in (("peak_start_hour", start), ("peak_end_hour", end)):
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            add(f"{key}.{name}", gettext("An hour of the day is a whole number from 0 to 23."))
            return
    if start == end:
        add(
            f"{key}.peak_end_hour",
            gettext("Peak hours end at another hour than they start (a whole day has no off-peak)."),
        )
    if charge.price_model in USAGE_ONLY_MODELS:
        label = PriceModelChoice(charge.price_model).label.lower()
        add(
            f"{key}.peak_start_hour",
            gettext("A %(label)s price prices each transaction; peak hours need another price model.")
            % {"label": label},
        )
    if charge.pooled_allowance is not None:
        add(f"{key}.peak_start_hour", gettext("A pooled charge has no peak hours: give it one price for every hour."))
    if metric is None:
        return
    if metric.aggregation not in PEAK_AGGREGATIONS:
        add(
            f"{key}.peak_start_hour",
            gettext(
                "The metric %(metric_code)r aggregates by %(aggregation)s, which cannot be split by the "
                "hour of the day; peak hours need a count, sum or max metric."
            )
            % {"metric_code": metric.code, "aggregation": metric.get_aggregation_display().lower()},
        )
    if metric.group_by:
        add(
            f"{key}.peak_start_hour",
            gettext("The metric %(metric_code)r is grouped by %(group_by)r; peak hours need an ungrouped metric.")
            % {"metric_code": metric.code, "group_by": metric.group_by},
        )


def _peak_price_problems(charge: ChargeInput, price: PriceInput, key: str, add: Callable[[str, str], None]) -> bool:
    """Whether a price for a time window can be saved (else the problems are added)."""
    if price.time_window not in PriceTimeWindow.values:
        add(
            key,
            gettext("%(time_window)r is not a time window (peak, or empty for the default price).")
            % {"time_window": price.time_window},
        )
        return False
    if charge.peak_start_hour is None or charge.peak_end_hour is None:
        add(key, gettext("The charge has no peak hours: set its peak start and end hours first, or leave this empty."))
        return False
    if price.dimension_values:
        add(key, gettext("A peak price is for every group of usage: leave its dimension values empty."))
        return False
    return True


def _charge_metric(charge: ChargeInput) -> BillableMetric | None:
    if charge.kind != ChargeKind.USAGE or not charge.metric_code:
        return None
    return BillableMetric.objects.filter(code=charge.metric_code).first()


def _dimension_problems(
    charge: ChargeInput, metric: BillableMetric | None, price: PriceInput, key: str, add
) -> str | None:
    """Check a dimension price's values against the metric's group properties; its group key, or
    None when they are wrong."""
    values = price.dimension_values
    if charge.kind != ChargeKind.USAGE:
        add(key, gettext("Only usage charges have prices per dimension; leave the dimension values empty."))
        return None
    if metric is None:
        return None  # the unknown metric is reported on its own field
    names = metric.group_properties
    if not names:
        add(
            key,
            gettext(
                "The metric %(metric_code)r is not grouped by any property, so its usage has no dimensions "
                "to price apart; group it by one or two properties (e.g. region,tier) first."
            )
            % {"metric_code": metric.code},
        )
        return None
    if not isinstance(values, Mapping) or not all(isinstance(name, str) for name in values):
        add(key, gettext('Give the dimension values as {"property": "value"}.'))
        return None
    unknown = [name for name in values if name not in names]
    for name in unknown:
        add(
            key,
            gettext(
                "%(name)r is not a property the metric %(metric_code)r groups by (%(names)s): a dimension "
                "price names a value for each of those."
            )
            % {"name": name, "metric_code": metric.code, "names": ", ".join(names)},
        )
    missing = [name for name in names if name not in values]
    if missing:
        add(
            key,
            gettext("Give a value for %(missing)s too: the metric groups by %(names)s.")
            % {"missing": ", ".join(map(repr, missing)), "names": ", ".join(names)},
        )
    if unknown or missing:
        return None
    texts = [values[name] for name in names]
    if not all(isinstance(text, str) and text.strip() == text and text for text in texts):
        add(key, gettext("Each dimension value is a non-empty text without leading or trailing spaces."))
        return None
    if len(names) > 1 and any(GROUP_KEY_SEPARATOR in text for text in texts):
        add(
            key,
            gettext("A dimension value cannot contain %(group_key_separator)r.")
            % {"group_key_separator": GROUP_KEY_SEPARATOR},
        )
        return None
    group = group_key_of(texts)
    if len(group) > 255:
        add(key, gettext("The dimension values are longer than 255 characters together."))
        return None
    return group


def _dimension_values(charge: ChargeInput, price: PriceInput) -> dict[str, str]:
    """A valid dimension price's values, one per group property of the metric (their order never
    matters: a group's price is found by comparing the values as a mapping)."""
    metric = _charge_metric(charge)
    if not price.dimension_values or metric is None:
        return {}
    return {name: price.dimension_values[name] for name in metric.group_properties}


def _charges_create(version: PlanVersion, charges: Sequence[ChargeInput]) -> None:
    """Write charges that `charges_validate` accepted."""
    for position, charge in enumerate(charges, start=1):
        charge_row = Charge(
            plan_version=version,
            position=position,
            kind=charge.kind,
            name=charge.name.strip(),
            price_model=charge.price_model,
            metric_code=charge.metric_code,
            billing_timing=charge.billing_timing,
            pooled_allowance=charge.pooled_allowance,
            pool_code=charge.pool_code,
            peak_start_hour=charge.peak_start_hour,
            peak_end_hour=charge.peak_end_hour,
        )
        validate_instance(charge_row, exclude=["plan_version"])
        charge_row.save()
        for price in charge.prices:
            price_row = Price(
                charge=charge_row,
                currency=price.currency,
                amount=price.amount,
                dimension_values=_dimension_values(charge, price),
                **_price_values(price),
            )
            price_row.save()
            PriceTier.objects.bulk_create(
                PriceTier(
                    price=price_row,
                    position=tier_position,
                    up_to=tier.up_to,
                    unit_amount=tier.unit_amount,
                    flat_amount=tier.flat_amount,
                    percentage=tier.percentage,
                )
                for tier_position, tier in enumerate(price.tiers, start=1)
            )


def _validate_simple_prices(prices: Sequence[Money]) -> None:
    seen: set[str] = set()
    for index, amount in enumerate(prices):
        currency = str(amount.currency)
        key = f"prices.{index}"
        if not is_supported_currency(currency):
            raise ValidationFailed(
                gettext("Unknown or unsupported currency %(currency)r.") % {"currency": currency},
                fields={
                    key: [
                        gettext("%(currency)r is not one of the currencies this seller bills in.")
                        % {"currency": currency}
                    ]
                },
            )
        if amount.amount < 0:
            raise ValidationFailed(
                gettext("Prices cannot be negative."), fields={key: [gettext("Prices cannot be negative.")]}
            )
        if currency in seen:
            raise ValidationFailed(
                gettext("Two prices in %(currency)s.") % {"currency": currency},
                fields={key: [gettext("The plan already has a price in %(currency)s.") % {"currency": currency}]},
            )
        seen.add(currency)


def price_quote(*, price: Price, quantity: Decimal, transactions: Sequence[Decimal] = ()) -> pricing.Quote:
    """Price a quantity with a stored price (the admin calculator and the quote API)."""
    if quantity < 0:
        raise ValidationFailed(
            gettext("The quantity cannot be negative."), fields={"quantity": [gettext("Must be 0 or more.")]}
        )
    return pricing.price_quote(price.to_spec(), quantity=quantity, transactions=transactions)


# --- coupons and discounts ------------------------------------------------------------------------


def _raise_problems(problems: dict[str, list[str]]) -> None:
    if problems:
        first = next(iter(problems.values()))[0]
        raise ValidationFailed(
            first if len(problems) == 1 else gettext("%(first)s (and more)") % {"first": first}, fields=problems
        )


def coupon_validate(
    *,
    discount_type: str,
    percent_off: Decimal | None,
    amounts: Sequence[Money],
    duration: str,
    duration_in_periods: int | None,
    max_redemptions: int | None,
    redeem_by: datetime | None,
    product_ids: Sequence[int],
    now: datetime,
) -> dict[str, list[str]]:
    """Every problem with a new coupon, keyed by field (`amounts.<i>.currency`, …); empty when valid."""
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(key, []).append(message)

    if discount_type not in DiscountType.values:
        add(
            "discount_type",
            gettext("%(discount_type)r is not a discount type (%(values)s).")
            % {"discount_type": discount_type, "values": ", ".join(DiscountType.values)},
        )
    elif discount_type == DiscountType.PERCENTAGE:
        if percent_off is None:
            add("percent_off", gettext("Give the percentage off: more than 0, at most 100."))
        elif not Decimal(0) < percent_off <= Decimal(100):
            add("percent_off", gettext("A percentage off is more than 0 and at most 100."))
        if amounts:
            add(
                "amounts",
                gettext("A percentage coupon has no amounts off; remove them or make it a fixed-amount coupon."),
            )
    else:
        if percent_off is not None:
            add("percent_off", gettext("Only percentage coupons have a percentage off; leave it empty."))
        if not amounts:
            add("amounts", gettext("Give the amount off in at least one currency."))
        seen: set[str] = set()
        for index, money in enumerate(amounts):
            currency = str(money.currency)
            key = f"amounts.{index}"
            if not is_supported_currency(currency):
                add(
                    f"{key}.currency",
                    gettext("%(currency)r is not one of the currencies this seller bills in.") % {"currency": currency},
                )
                continue
            if currency in seen:
                add(
                    f"{key}.currency",
                    gettext("The coupon already has an amount off in %(currency)s.") % {"currency": currency},
                )
            seen.add(currency)
            if money.amount < 0:
                add(f"{key}.amount", gettext("The amount off cannot be negative."))
            elif has_more_decimals_than_currency(money.amount, currency):
                add(
                    f"{key}.amount",
                    gettext("An amount off in %(currency)s has at most the currency's decimals.")
                    % {"currency": currency},
                )
            else:
                try:
                    CouponAmount(currency=currency, amount_off=money.amount).full_clean(
                        exclude=["coupon"], validate_unique=False, validate_constraints=False
                    )
                except DjangoValidationError as exc:
                    for message in exc.message_dict.get("amount_off", []):
                        add(f"{key}.amount", message)

    if duration not in CouponDuration.values:
        add(
            "duration",
            gettext("%(duration)r is not a duration (%(values)s).")
            % {"duration": duration, "values": ", ".join(CouponDuration.values)},
        )
    elif duration == CouponDuration.REPEATING:
        if duration_in_periods is None or duration_in_periods < 1:
            add(
                "duration_in_periods",
                gettext("A repeating coupon needs the number of periods it discounts (at least 1)."),
            )
    elif duration_in_periods is not None:
        add("duration_in_periods", gettext("Only repeating coupons last a number of periods; leave it empty."))
    if max_redemptions is not None and max_redemptions < 1:
        add("max_redemptions", gettext("The redemption limit is at least 1; leave it empty for no limit."))
    if redeem_by is not None and redeem_by <= now:
        add("redeem_by", gettext("The expiry must be in the future."))
    known = set(Product.objects.filter(pk__in=product_ids).values_list("pk", flat=True))
    unknown = [product_id for product_id in dict.fromkeys(product_ids) if product_id not in known]
    if unknown:
        add(
            "product_ids",
            gettext("No product with id %(value)s.") % {"value": ", ".join(str(product_id) for product_id in unknown)},
        )
    return problems


@transaction.atomic
def coupon_create(
    *,
    code: str,
    name: str,
    discount_type: str,
    percent_off: Decimal | None = None,
    amounts: Sequence[Money] = (),
    duration: str = CouponDuration.ONCE,
    duration_in_periods: int | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
    product_ids: Sequence[int] = (),
) -> Coupon:
    """Create a coupon: a percentage off (`percent_off`) or fixed amounts off, one per currency
    (`amounts`); for one invoice, `duration_in_periods` invoices (repeating) or forever; for every
    product, or only the products in `product_ids`."""
    problems = coupon_validate(
        discount_type=discount_type,
        percent_off=percent_off,
        amounts=amounts,
        duration=duration,
        duration_in_periods=duration_in_periods,
        max_redemptions=max_redemptions,
        redeem_by=redeem_by,
        product_ids=product_ids,
        now=clock.now(),
    )
    coupon = Coupon(
        code=code,
        name=name,
        discount_type=discount_type,
        percent_off=percent_off,
        duration=duration,
        duration_in_periods=duration_in_periods,
        max_redemptions=max_redemptions,
        redeem_by=redeem_by,
    )
    try:
        coupon.full_clean(exclude=list(problems))
    except DjangoValidationError as exc:
        for field, messages in ValidationFailed.from_django(exc).fields.items():
            problems.setdefault(field, messages)
        if not problems:
            raise ValidationFailed.from_django(exc) from exc
    _raise_problems(problems)
    coupon.save()
    CouponAmount.objects.bulk_create(
        CouponAmount(coupon=coupon, currency=str(money.currency), amount_off=money.amount) for money in amounts
    )
    coupon.products.set(list(dict.fromkeys(product_ids)))
    return coupon


@transaction.atomic
def coupon_archive(*, coupon: Coupon) -> Coupon:
    """Stop a coupon from being redeemed (again). Discounts already given keep applying."""
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    if not coupon.is_archived:
        coupon.is_archived = True
        coupon.save(update_fields=["is_archived", "updated_at"])
    return coupon


# --- features and grants (docs/entitlements.md) -----------------------------------------------------

# The generation of every cached customer's entitlements (`apps.subscriptions.entitlements`): a new
# token after any change of a feature or a grant makes every cached answer stale at once.
ENTITLEMENTS_GENERATION_CACHE_KEY = "entitlements:generation"
FEATURE_FIELDS = ("name", "description", "kind")


def entitlements_generation_bump() -> None:
    """Make every customer's cached entitlements stale (after the transaction commits)."""
    transaction.on_commit(  # robust: a cache that is down does not undo the committed change (logged)
        lambda: cache.set(ENTITLEMENTS_GENERATION_CACHE_KEY, uuid.uuid4().hex, timeout=None), robust=True
    )


@transaction.atomic
def feature_create(*, code: str, name: str, kind: str = FeatureKind.BOOLEAN, description: str = "") -> Feature:
    feature = Feature(code=code, name=name, kind=kind, description=description)
    validate_instance(feature)
    feature.save()
    return feature


@transaction.atomic
def feature_update(*, feature_id: int, **changes: Any) -> Feature:
    """Rename a feature, describe it, or change its kind (only while no plan version grants it)."""
    feature = Feature.objects.select_for_update().filter(pk=feature_id).first()
    if feature is None:
        raise NotFound(gettext("Feature %(feature_id)s does not exist.") % {"feature_id": feature_id})
    unknown = sorted(set(changes) - set(FEATURE_FIELDS))
    if unknown:
        raise ValidationFailed(
            gettext("Unknown fields."),
            fields={name: [gettext("This field cannot be changed.")] for name in unknown},
        )
    for name, value in changes.items():
        setattr(feature, name, value)
    validate_instance(feature)
    feature.save(update_fields=[*changes, "updated_at"])
    entitlements_generation_bump()
    return feature


@dataclass(frozen=True)
class GrantInput:
    feature: str  # the feature's code
    value: object  # true/false, a whole number or "unlimited", or text, as the feature's kind takes


def feature_grants_validate(grants: Sequence[GrantInput]) -> tuple[list[FeatureGrant], dict[str, list[str]]]:
    """Unsaved grants for `grants` and the problems found, keyed `features.<n>.feature` / `.value`."""
    features = Feature.objects.in_bulk([grant.feature for grant in grants], field_name="code")
    rows, problems, seen = [], {}, set()
    for index, grant in enumerate(grants):
        feature = features.get(grant.feature)
        if feature is None:
            problems[f"features.{index}.feature"] = [
                gettext("There is no feature %(feature)r.") % {"feature": grant.feature}
            ]
            continue
        if grant.feature in seen:
            problems[f"features.{index}.feature"] = [gettext("This feature is granted twice.")]
            continue
        seen.add(grant.feature)
        try:
            value = grant_value_normalize(feature.kind, grant.value)
        except DjangoValidationError as exc:
            problems[f"features.{index}.value"] = list(exc.messages)
            continue
        rows.append(FeatureGrant(feature=feature, value=value))
    return rows, problems


@transaction.atomic
def plan_version_features_set(*, version: PlanVersion, grants: Sequence[GrantInput]) -> PlanVersion:
    """Replace what a version grants. Like its prices, a version's grants are fixed once it has
    subscribers: give them more through a new version and a migration (each subscriber's entitlements
    change then, and its webhook goes out)."""
    version = PlanVersion.objects.select_for_update().get(pk=version.pk)
    if plan_version_is_locked(version):
        raise NotEditable(
            gettext(
                "%(version)s has subscribers, so what it grants cannot change. Create a new version "
                "instead; subscribers keep theirs until you migrate them."
            )
            % {"version": version},
            fields={"features": [gettext("This version has subscribers and cannot be edited; create a new version.")]},
        )
    rows, problems = feature_grants_validate(grants)
    _raise_problems(problems)
    version.feature_grants.all().delete()
    for row in rows:
        row.plan_version = version
    FeatureGrant.objects.bulk_create(rows)
    entitlements_generation_bump()
    return version


# --- Progressive billing thresholds --------------------------------------------------------------------


@transaction.atomic
def plan_version_progressive_billing_set(
    *, version: PlanVersion, currency: str, amounts: Any, every: Any = None, scope: Any = None
) -> ProgressiveBilling | None:
    """Set the version's progressive billing thresholds in `currency` (fixed `amounts` and/or a recurring
    `every`; neither: none), measured on the period's usage or, with `scope` "lifetime", on the usage since
    the subscription started. Part of the version's terms: refused once the version is in use (a
    subscription can have its own). Field errors on `currency`, `thresholds`, `every`, `scope`; nothing
    saved."""
    from .progressive import schedule_amounts_json, schedule_clean

    plan_version_ensure_editable(version)
    if currency not in version.currencies:
        message = gettext("The version has no prices in %(currency)s: thresholds are in a currency it bills in.") % {
            "currency": currency
        }
        raise ValidationFailed(message, fields={"currency": [message]})
    schedule = schedule_clean(amounts=amounts, every=every, currency=currency, scope=scope)
    ProgressiveBilling.objects.filter(plan_version=version, currency=currency).delete()
    if not schedule:
        return None
    return ProgressiveBilling.objects.create(
        plan_version=version, currency=currency, amounts=schedule_amounts_json(schedule), every=schedule.every,
        scope=schedule.scope,
    )  # fmt: skip
