"""Benchmark: GET /api/v1/customers/{id}/entitlements for a customer with several subscriptions, each
of whose plan versions grants many features (docs/entitlements.md).

Makes `--features` features (a third each on/off, limits and values) and `--subscriptions` plans, each
granting every feature, and subscribes one new customer to all of them (through the services, so the
entitlements are recorded as a real change). Then times, in this process, against PostgreSQL with the
production settings and the cache `CACHE_URL` names (in-process memory unless set; `--cache-url`):

1. `customer_entitlements` answered from the cache (what every call but the first after a change does);
2. the same with the cache made stale before each call (each call computes: one SQL query and the
   combination), the worst case;
3. the whole API request in-process (URL routing, middleware, token authentication, the customer's
   existence, serialization), cached.

It checks the combined values against the ones worked out here (limits add up, on/off any-true, a value
from the latest subscription) and exits non-zero when they differ.

Target: p99 at most 20 ms at the service level (1 and 2).
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from common import django_setup, percentile, verdict

TARGET_P99_MS = 20


def _timed(call: Callable[[], object], *, iterations: int, warmup: int, before: Callable[[], None] | None = None):
    for _ in range(warmup):
        if before:
            before()
        call()
    timings = []
    for _ in range(iterations):
        if before:
            before()
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def _line(label: str, timings: list[float]) -> str:
    return (
        f"{label}: p50 {percentile(timings, 0.5):.2f} ms, p95 {percentile(timings, 0.95):.2f} ms, "
        f"p99 {percentile(timings, 0.99):.2f} ms, mean {statistics.fmean(timings):.2f} ms, max {max(timings):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bp_bench", help="(default: %(default)s)"
    )
    parser.add_argument("--cache-url", default="", help="e.g. redis://127.0.0.1:6379/15 (default: CACHE_URL or memory)")
    parser.add_argument(
        "--subscriptions", type=int, default=5, help="the customer's subscriptions (default: %(default)s)"
    )
    parser.add_argument("--features", type=int, default=60, help="features each plan grants (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=2000, help="timed calls per measure (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first (default: %(default)s)")
    options = parser.parse_args()
    if options.cache_url:
        os.environ["CACHE_URL"] = options.cache_url

    django_setup(options.database_url)
    from django.conf import settings
    from django.test import Client
    from djmoney.money import Money

    from apps.accounts.credentials import user_token_create
    from apps.accounts.models import Customer
    from apps.accounts.tests.factories import UserFactory
    from apps.billing.services import subscription_start
    from apps.catalog.constants import FeatureKind
    from apps.catalog.services import GrantInput, feature_create, plan_version_features_set
    from apps.catalog.tests.factories import PlanFactory, ProductFactory
    from apps.subscriptions.entitlements import customer_entitlements, customer_entitlements_cache_invalidate
    from apps.subscriptions.models import EntitlementsChange

    run = uuid.uuid4().hex[:10]
    kinds = [FeatureKind.BOOLEAN, FeatureKind.LIMIT, FeatureKind.VALUE]
    features = [
        feature_create(code=f"bench-{run}-{n:03d}", name=f"Bench feature {n}", kind=kinds[n % 3])
        for n in range(options.features)
    ]
    customer = Customer.objects.create(
        external_id=f"bench_entitlements_{run}", name="Bench entitlements customer",
        email="entitlements@customer.example", country="GB", currency="USD",
    )  # fmt: skip
    product = ProductFactory(code=f"bench-ent-{run}", name=f"Bench entitlements {run}")
    expected: dict[str, object] = {}
    for index in range(options.subscriptions):
        plan = PlanFactory(
            product=product, code=f"bench-ent-{run}-{index}", name=f"Bench plan {index}", prices=[Money("10", "USD")]
        )
        grants = []
        for n, feature in enumerate(features):
            value: object = {
                FeatureKind.BOOLEAN: index == 0 and n % 2 == 0,  # on in the first plan only, every other one
                FeatureKind.LIMIT: (index + 1) * 10,
                FeatureKind.VALUE: f"tier-{index}",
            }[feature.kind]
            grants.append(GrantInput(feature.code, value))
        plan_version_features_set(version=plan.current_version, grants=grants)
        subscription_start(customer=customer, plan=plan)
    for n, feature in enumerate(features):
        expected[feature.code] = {
            FeatureKind.BOOLEAN: n % 2 == 0,
            FeatureKind.LIMIT: sum((index + 1) * 10 for index in range(options.subscriptions)),
            FeatureKind.VALUE: f"tier-{options.subscriptions - 1}",
        }[feature.kind]

    document = customer_entitlements(customer_id=customer.pk)
    values = {feature["code"]: feature["value"] for feature in document["features"]}
    changes = EntitlementsChange.objects.filter(customer=customer).count()
    correct = values == expected and all(len(f["sources"]) == options.subscriptions for f in document["features"])

    def read() -> object:
        return customer_entitlements(customer_id=customer.pk)

    def make_stale() -> None:
        customer_entitlements_cache_invalidate(customer_id=customer.pk)

    cached = _timed(read, iterations=options.iterations, warmup=options.warmup)
    uncached = _timed(read, iterations=options.iterations, warmup=options.warmup, before=make_stale)

    user = UserFactory(username=f"bench-entitlements-{run}", is_staff=True, is_superuser=True)
    _, token = user_token_create(user_id=user.pk, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    url = f"/api/v1/customers/{customer.pk}/entitlements"
    response = client.get(url)
    correct = correct and response.status_code == 200 and response.json() == document
    api = _timed(lambda: client.get(url), iterations=max(1, options.iterations // 4), warmup=options.warmup)

    print(f"cache: {settings.CACHES['default']['BACKEND']}")
    print(f"customer with {options.subscriptions} subscriptions, each granting {options.features} features "
          f"({len(document['features'])} combined, {changes} entitlement change(s) recorded)")  # fmt: skip
    print(_line(f"service, cached ({len(cached)} calls)", cached))
    print(_line(f"service, computed each time ({len(uncached)} calls)", uncached))
    print(_line(f"API request in-process, cached ({len(api)} calls)", api))
    print(f"verification: {'OK' if correct else 'FAILED'}")
    for label, timings in (("cached", cached), ("computed", uncached)):
        p99 = percentile(timings, 0.99)
        print(f"TARGET entitlements service p99 <= {TARGET_P99_MS} ms ({label}): {p99:.2f} ms "
              f"{verdict(correct and p99 <= TARGET_P99_MS)}")  # fmt: skip
    if not correct:
        sys.exit(1)


if __name__ == "__main__":
    main()
