"""Reads the portal's views need that belong to no domain app: its configuration."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext

from apps.catalog.constants import ChargeKind, PriceModelChoice
from apps.catalog.models import GrantValue, Plan, PlanVersion
from apps.catalog.selectors import plan_list, plan_version_recurring_price
from apps.core.errors import ValidationFailed
from apps.subscriptions.models import Subscription

from .models import PortalConfiguration


def portal_configuration() -> PortalConfiguration:
    """The portal's configuration (created with the defaults the first time it is read)."""
    configuration = PortalConfiguration.objects.order_by("id").first()
    if configuration is None:
        configuration, _ = PortalConfiguration.objects.get_or_create(pk=1)
    return configuration


def portal_business_name(configuration: PortalConfiguration) -> str:
    return configuration.business_name or settings.SELLER.get("name", "")


def portal_allowed_plans(*, configuration: PortalConfiguration, subscription: Subscription) -> list[Plan]:
    """Plans the customer may move the subscription to: the configured ones (not archived) with a
    current version priced in the subscription's currency, and always its own plan first."""
    plans = plan_list().filter(pk__in=configuration.allowed_plans.values("pk"), is_archived=False)
    allowed = []
    for plan in plans:
        version = plan.current_version
        if plan.pk == subscription.plan_id or (version is not None and subscription.currency in version.currencies):
            allowed.append(plan)
    if subscription.plan_id not in {plan.pk for plan in allowed}:
        allowed.insert(0, subscription.plan)
    return allowed


@dataclass(frozen=True)
class PlanOption:
    """A plan the customer may pick, with what it costs them: `price` is one period for one unit in the
    subscription's currency (None if it has none), `per_unit` when every recurring charge is priced per
    unit, `plus_usage` when metered charges come on top."""

    plan: Plan
    price: Decimal | None
    currency: str
    per_unit: bool
    plus_usage: bool
    features: "dict[str, GrantedFeature]" = field(default_factory=dict)  # by feature code


@dataclass(frozen=True)
class GrantedFeature:
    """What a plan grants of a feature (docs/entitlements.md): `value` is true/false, a whole number or
    "unlimited", or text, by `kind`."""

    code: str
    name: str
    kind: str
    value: GrantValue


def _granted(version: PlanVersion | None) -> dict[str, GrantedFeature]:
    if version is None:
        return {}
    if "feature_grants" in getattr(version, "_prefetched_objects_cache", {}):
        grants = list(version.feature_grants.all())
    else:
        grants = list(version.feature_grants.select_related("feature"))
    return {
        grant.feature.code: GrantedFeature(
            code=grant.feature.code, name=grant.feature.name, kind=grant.feature.kind, value=grant.typed_value
        )
        for grant in grants
    }


@dataclass(frozen=True)
class PlanFeatureRow:
    """One feature on the plan picker: what each plan (in the order of the options) grants of it; None
    where a plan does not grant it."""

    name: str
    kind: str
    values: list[GrantValue | None]


def portal_plan_feature_rows(options: list["PlanOption"]) -> list[PlanFeatureRow]:
    """The features any of the plans grants, by name, with each plan's value: the plan picker's table."""
    features: dict[str, GrantedFeature] = {}
    for option in options:
        for code, granted in option.features.items():
            features.setdefault(code, granted)
    return [
        PlanFeatureRow(
            name=granted.name,
            kind=granted.kind,
            values=[option.features[code].value if code in option.features else None for option in options],
        )
        for code, granted in sorted(features.items(), key=lambda item: (item[1].name.lower(), item[0]))
    ]


def portal_plan_options(*, configuration: PortalConfiguration, subscription: Subscription) -> list[PlanOption]:
    """The allowed plans (`portal_allowed_plans`) priced as a change would bill them: the subscription's
    own plan at its version, any other at its current version."""
    options = []
    for plan in portal_allowed_plans(configuration=configuration, subscription=subscription):
        version = subscription.plan_version if plan.pk == subscription.plan_id else plan.current_version
        charges = list(version.charges.all()) if version is not None else []
        recurring = [charge for charge in charges if charge.kind == ChargeKind.RECURRING]
        options.append(
            PlanOption(
                plan=plan,
                price=None
                if version is None
                else plan_version_recurring_price(version=version, currency=subscription.currency),
                currency=subscription.currency,
                per_unit=bool(recurring)
                and all(charge.price_model == PriceModelChoice.PER_UNIT for charge in recurring),
                plus_usage=any(charge.kind == ChargeKind.USAGE for charge in charges),
                features=_granted(version),
            )
        )
    return options


def portal_change_arguments(
    *, configuration: PortalConfiguration, subscription: Subscription, plan_id: int | None, quantity: int | None
) -> dict[str, Any]:
    """The arguments of `subscription_change_preview` / `subscription_change` for a change a customer
    asks for, checked against the portal configuration (allowed plans, quantity changes, proration).
    Raises `ValidationFailed` with field errors; changes nothing."""
    plans = {plan.pk: plan for plan in portal_allowed_plans(configuration=configuration, subscription=subscription)}
    errors: dict[str, list[str]] = {}
    if plan_id is not None and plan_id not in plans:
        errors["plan"] = [gettext("This plan is not available.")]
    if quantity is not None and quantity != subscription.quantity and not configuration.quantity_update_enabled:
        errors["quantity"] = [gettext("The quantity cannot be changed here.")]
    if errors:
        raise ValidationFailed(gettext("This change is not available."), fields=errors)
    new_plan = plans[plan_id] if plan_id is not None and plan_id != subscription.plan_id else None
    new_quantity = quantity if quantity is not None and quantity != subscription.quantity else None
    if new_plan is None and new_quantity is None:
        raise ValidationFailed(
            gettext("Pick another plan or quantity."), fields={"plan": [gettext("Pick another plan or quantity.")]}
        )
    return {
        "subscription_id": subscription.pk,
        "plan": new_plan,
        "quantity": new_quantity,
        "proration": configuration.proration_behavior,
    }


PREVIEW_TOKEN_SALT = "portal.subscription-change-preview"
PREVIEW_TOKEN_MAX_AGE = 30 * 60


def _preview_key(arguments: dict[str, Any]) -> list[Any]:
    plan = arguments.get("plan")
    return [arguments["subscription_id"], plan.pk if plan is not None else None, arguments.get("quantity")]


def preview_token_make(*, arguments: dict[str, Any], effective_at: datetime) -> str:
    """A signed token of a previewed change: confirming with it makes exactly the change previewed,
    prorated from the same moment (so the amounts are the ones the customer read)."""
    return signing.dumps({"change": _preview_key(arguments), "at": effective_at.isoformat()}, salt=PREVIEW_TOKEN_SALT)


def preview_token_read(*, token: str, arguments: dict[str, Any]) -> datetime:
    """The moment a change was previewed at, from its token; `ValidationFailed` when the token is
    forged, older than 30 minutes, or was made for another change."""
    try:
        data = signing.loads(token, salt=PREVIEW_TOKEN_SALT, max_age=PREVIEW_TOKEN_MAX_AGE)
    except signing.BadSignature:
        data = None
    if not data or data.get("change") != _preview_key(arguments):
        raise ValidationFailed(
            gettext("The preview has expired or does not match this change. Preview it again."),
            fields={"preview_token": [gettext("Preview the change again.")]},
        )
    return datetime.fromisoformat(data["at"])
