"""Reads of alerts, their crossings and a customer's spend status."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.catalog.models import BillableMetric, Charge
from apps.wallets.selectors import lots_usable, wallet_list_for_customer

from .constants import LIVE_STATUSES, AlertOrigin
from .models import Alert, AlertCrossing


def alert_list() -> QuerySet[Alert]:
    return Alert.objects.select_related("customer", "subscription__plan", "metric")


def alert_crossing_list() -> QuerySet[AlertCrossing]:
    return AlertCrossing.objects.select_related("alert", "customer")


def budget_list_for_customer(*, customer_id: int) -> QuerySet[Alert]:
    """The budgets a customer set in the portal (its own alerts only)."""
    return alert_list().filter(customer_id=customer_id, origin=AlertOrigin.CUSTOMER).order_by("id")


def alert_crossing_list_for_customer(*, customer_id: int) -> QuerySet[AlertCrossing]:
    return alert_crossing_list().filter(customer_id=customer_id)


@dataclass(frozen=True)
class SpendStatus:
    """Whether a hard limit of the customer's is reached in its current period (`usage_blocked`), and
    which. Reading this is how the seller's application learns it should stop serving the customer:
    we do not enforce it."""

    customer_id: int
    as_of: datetime
    usage_blocked: bool
    limits_reached: list[AlertCrossing] = field(default_factory=list)
    # A prepaid customer (one holding wallets) with no usable credit left: what it uses from now on is
    # billed to it like any usage, unless the seller's application stops it.
    prepaid_credits_exhausted: bool = False


def customer_spend_status(*, customer: Customer) -> SpendStatus:
    """Hard limits reached in the current period: a crossing of an active hard-limit alert's highest
    threshold whose period has not ended yet (a new period re-arms it; raising the limit lifts it)."""
    now = customer_now(customer)
    crossings = [
        crossing
        for crossing in alert_crossing_list().filter(
            customer=customer,
            is_limit=True,
            period_start_at__lte=now,
            period_end_at__gt=now,
            alert__is_active=True,
            alert__is_hard_limit=True,
        )
        if crossing.threshold >= (crossing.alert.limit or 0)
    ]
    wallets = list(wallet_list_for_customer(customer=customer))
    exhausted = bool(wallets) and not lots_usable(wallets=wallets, on=now.date())
    return SpendStatus(
        customer_id=customer.pk, as_of=now, usage_blocked=bool(crossings), limits_reached=crossings,
        prepaid_credits_exhausted=exhausted,
    )  # fmt: skip


def alert_metrics_for_customer(*, customer_id: int) -> list[BillableMetric]:
    """The metrics a customer's alerts may watch: those charged on its live subscriptions' plans."""
    codes = set(
        Charge.objects.filter(
            plan_version__subscriptions__customer_id=customer_id,
            plan_version__subscriptions__status__in=LIVE_STATUSES,
        )
        .exclude(metric_code="")
        .values_list("metric_code", flat=True)
    )
    return list(BillableMetric.objects.filter(code__in=codes).order_by("name", "code"))
