"""What a customer is entitled to: the features their subscriptions' plan versions grant, combined
(docs/entitlements.md).

- `entitlements_combine` (pure): grants from several subscriptions → one value per feature. Limits add
  up (any "unlimited" makes the sum unlimited), on/off features are on when any grant is on, and a
  value feature takes the value of the subscription that started last.
- `customer_entitlements` (read, cached): the combined features of the customer's trialing, active and
  past-due subscriptions, each with the subscriptions it comes from. A cached answer carries two tokens:
  the catalog's generation (`apps.catalog.services.entitlements_generation_bump`, after any feature or
  grant change) and the customer's own (renewed by `customer_entitlements_refresh`); it is served only
  while both are current, so an answer computed before a change (even one stored after the change, by
  a request that began before it) is never served after it.
- `customer_entitlements_touch` (write): every subscription event calls it (`events.py`); once the
  transaction commits, `customer_entitlements_refresh` runs once per customer touched: it renews the
  customer's cache token and, when a value changed, records an `EntitlementsChange` (the
  `customer.entitlements_changed` webhook).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from apps.catalog.constants import UNLIMITED, FeatureKind
from apps.catalog.models import FeatureGrant, GrantValue, grant_value_typed
from apps.catalog.services import ENTITLEMENTS_GENERATION_CACHE_KEY
from apps.core import clock

from .constants import ENTITLED_STATUSES
from .models import CustomerEntitlements, EntitlementsChange, Subscription


class SourceGrant(NamedTuple):
    """One subscription's grant of one feature (a tuple: hundreds are made per computation)."""

    feature_code: str
    feature_name: str
    kind: str
    value: GrantValue
    subscription_id: int
    plan_code: str
    plan_version: int
    status: str
    started_at: datetime


def _combined(kind: str, values: list[GrantValue]) -> GrantValue:
    """Values in the order their subscriptions started."""
    if kind == FeatureKind.BOOLEAN:
        return any(values)
    if kind == FeatureKind.LIMIT:
        if UNLIMITED in values:
            return UNLIMITED
        return sum(value for value in values if isinstance(value, int))
    return values[-1]


def entitlements_combine(grants: Sequence[SourceGrant]) -> list[dict[str, Any]]:
    """The features granted, by code, each with its combined value and its sources (oldest first)."""
    by_feature: dict[str, list[SourceGrant]] = {}
    for grant in sorted(grants, key=lambda grant: (grant.started_at, grant.subscription_id)):
        by_feature.setdefault(grant.feature_code, []).append(grant)
    return [
        {
            "code": code,
            "name": rows[0].feature_name,
            "kind": rows[0].kind,
            "value": _combined(rows[0].kind, [row.value for row in rows]),
            "sources": [
                {
                    "subscription": row.subscription_id,
                    "plan": row.plan_code,
                    "plan_version": row.plan_version,
                    "status": row.status,
                    "value": row.value,
                }
                for row in rows
            ],
        }
        for code, rows in sorted(by_feature.items())
    ]


class VersionGrant(NamedTuple):
    """One grant of a plan version, its value converted once."""

    feature_code: str
    feature_name: str
    kind: str
    value: GrantValue


# The grants of plan versions, by the catalog's generation token: a version's grants change only with a
# catalog change, which renews the token (`entitlements_generation_bump`), so one process reads each
# version's grants once per generation. Only the current generation is kept.
_grants_by_generation: dict[str, dict[int, list[VersionGrant]]] = {}


def version_grants_forget() -> None:
    """Forget the plan versions' grants read so far (tests: a rolled-back database reuses ids)."""
    _grants_by_generation.clear()


def _version_grants(version_ids: set[int], generation: str | None) -> dict[int, list[VersionGrant]]:
    known: dict[int, list[VersionGrant]] | None = None
    if generation is not None:
        known = _grants_by_generation.get(generation)
        if known is None:
            _grants_by_generation.clear()
            known = _grants_by_generation.setdefault(generation, {})
    found = {version_id: known[version_id] for version_id in version_ids if known and version_id in known}
    missing = version_ids - found.keys()
    if missing:
        rows = (
            FeatureGrant.objects.filter(plan_version_id__in=missing)
            .values_list("plan_version_id", "value", "feature__code", "feature__name", "feature__kind")
            .order_by()
        )
        fresh: dict[int, list[VersionGrant]] = {version_id: [] for version_id in missing}
        typed: dict[tuple[str, str], GrantValue] = {}  # each stored value is converted once
        for version_id, value, code, name, kind in rows:
            key = (kind, value)
            if key not in typed:
                typed[key] = grant_value_typed(kind, value)
            fresh[version_id].append(VersionGrant(code, name, kind, typed[key]))
        if known is not None:
            known.update(fresh)
        found.update(fresh)
    return found


_SENTINEL_CUSTOMER_ID = -7_301_001  # no customer has it: marks where the customer's id goes in the SQL
_entitled_subscriptions_sql: dict[str, tuple[str, tuple[Any, ...]]] = {}


def _entitled_subscriptions(customer_id: int) -> list[tuple[Any, ...]]:
    """(id, started_at, status, plan code, plan version id, version number) of the customer's entitled
    subscriptions. The ORM writes the SQL once per process and database; each call only runs it —
    compiling the query each time cost more than running it (docs/performance.md, section 8)."""
    vendor = connection.vendor
    if vendor not in _entitled_subscriptions_sql:
        query = (
            Subscription.objects.filter(customer_id=_SENTINEL_CUSTOMER_ID, status__in=ENTITLED_STATUSES)
            .values_list("pk", "started_at", "status", "plan__code", "plan_version_id", "plan_version__number")
            .order_by()
        )
        _entitled_subscriptions_sql[vendor] = query.query.sql_with_params()
    sql, template = _entitled_subscriptions_sql[vendor]
    params = [customer_id if value == _SENTINEL_CUSTOMER_ID else value for value in template]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if rows and isinstance(rows[0][1], str):  # SQLite hands timestamps over as text
        rows = [(row[0], parse_datetime(row[1]), *row[2:]) for row in rows]
    return rows


def customer_entitlements_compute(*, customer_id: int, catalog_generation: str | None = None) -> list[dict[str, Any]]:
    """The customer's entitlements from the database, uncached: its entitled subscriptions (one query),
    and their plan versions' grants — read from the database too, unless `catalog_generation` (the
    catalog's current generation token) is given, when each version's grants are read once per
    generation in this process."""
    rows = _entitled_subscriptions(customer_id)
    if not rows:
        return []
    rows.sort(key=lambda row: (row[1], row[0]))  # the grants come out in the order the combination sorts them
    grants_by_version = _version_grants({row[4] for row in rows}, catalog_generation)
    grants = [
        SourceGrant(grant.feature_code, grant.feature_name, grant.kind, grant.value, pk, plan_code, number, status,
                    started_at)
        for pk, started_at, status, plan_code, version_id, number in rows
        for grant in grants_by_version[version_id]
    ]  # fmt: skip
    return entitlements_combine(grants)


def _customer_token_key(customer_id: int) -> str:
    return f"entitlements:customer:{customer_id}"


def _document_key(customer_id: int) -> str:
    return f"entitlements:{customer_id}"


def _token(key: str, found: dict[str, Any]) -> str:
    token = found.get(key)
    if token is None:
        cache.add(key, uuid.uuid4().hex, timeout=None)
        token = cache.get(key)
    return str(token)


def customer_entitlements(*, customer_id: int) -> dict[str, Any]:
    """`{"customer": id, "features": [...]}`: what the customer's subscriptions grant now (cached).

    One cache round trip when the answer is there: the catalog's generation token, the customer's token
    and the stored answer, which carries the two tokens it was computed under and is used only when
    they are still the current ones."""
    token_key, document_key = _customer_token_key(customer_id), _document_key(customer_id)
    found = cache.get_many([ENTITLEMENTS_GENERATION_CACHE_KEY, token_key, document_key])
    tokens = (_token(ENTITLEMENTS_GENERATION_CACHE_KEY, found), _token(token_key, found))
    stored = found.get(document_key)
    if stored is not None and tuple(stored[0]) == tokens:
        cached: dict[str, Any] = stored[1]
        return cached
    features = customer_entitlements_compute(customer_id=customer_id, catalog_generation=tokens[0])
    document = {"customer": customer_id, "features": features}
    cache.set(document_key, (tokens, document), timeout=settings.ENTITLEMENTS_CACHE_SECONDS)
    return document


def customer_entitlements_cache_invalidate(*, customer_id: int) -> None:
    cache.set(_customer_token_key(customer_id), uuid.uuid4().hex, timeout=None)


def entitlements_values(features: Sequence[dict[str, Any]]) -> dict[str, GrantValue]:
    return {feature["code"]: feature["value"] for feature in features}


@transaction.atomic
def customer_entitlements_refresh(*, customer_id: int) -> EntitlementsChange | None:
    """Compute the customer's entitlements again; record the change if a value differs from the last
    computation. The customer's snapshot row is locked, so two refreshes at once record one change."""
    CustomerEntitlements.objects.bulk_create([CustomerEntitlements(customer_id=customer_id)], ignore_conflicts=True)
    snapshot = CustomerEntitlements.objects.select_for_update().get(customer_id=customer_id)
    features = customer_entitlements_compute(customer_id=customer_id)
    # Robust: with the cache down, the change stands and the failure is logged; the cached answer then
    # lives out its timeout (ENTITLEMENTS_CACHE_SECONDS).
    transaction.on_commit(lambda: customer_entitlements_cache_invalidate(customer_id=customer_id), robust=True)
    values = entitlements_values(features)
    if values == snapshot.values:
        return None
    now = clock.now()
    previous = snapshot.values
    snapshot.values, snapshot.updated_at = values, now
    snapshot.save(update_fields=["values", "updated_at"])
    return EntitlementsChange.objects.create(
        customer_id=customer_id, occurred_at=now, features=features, previous_values=previous
    )


class _Refresh:
    """The on-commit callback of one transaction: refreshes each customer touched in it once."""

    def __init__(self) -> None:
        self.customer_ids: set[int] = set()
        self.done = False
        # Django names a robust on-commit callback that failed by its __qualname__ (an instance has none).
        self.__qualname__ = "customer_entitlements_refresh"

    def __call__(self) -> None:
        self.done = True
        for customer_id in sorted(self.customer_ids):
            customer_entitlements_refresh(customer_id=customer_id)


def customer_entitlements_touch(*, customer_id: int) -> None:
    """The customer's subscriptions changed: refresh their entitlements once the transaction commits
    (once per customer, however many changes the transaction made).

    A transaction has one pending `_Refresh`, registered by its first touch. Reusing it from a deeper
    savepoint is safe: whatever rollback would drop it rolls back the later change too; a customer
    added from a savepoint that is then rolled back is refreshed for nothing, which records nothing."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        for _savepoint_ids, callback, _robust in connection.run_on_commit:
            if isinstance(callback, _Refresh) and not callback.done:
                callback.customer_ids.add(customer_id)
                return
    refresh = _Refresh()
    refresh.customer_ids.add(customer_id)
    transaction.on_commit(refresh, robust=True)
