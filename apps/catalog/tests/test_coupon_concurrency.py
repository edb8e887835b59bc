"""The redemption limit holds when redemptions race (PostgreSQL row lock on the coupon)."""

import threading

import pytest
from django.db import connection, connections

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.tests.factories import CouponFactory
from apps.core.errors import ValidationFailed
from apps.subscriptions import services as subscription_services

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


def test_concurrent_redemptions_never_exceed_the_limit():
    coupon = CouponFactory(max_redemptions=3)
    customers = [CustomerFactory() for _ in range(8)]
    barrier = threading.Barrier(len(customers))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def redeem(index: int) -> None:
        try:
            barrier.wait()
            subscription_services.coupon_redeem(coupon=coupon, customer=customers[index])
            outcomes.append("redeemed")
        except ValidationFailed:
            outcomes.append("refused")
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(customers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sorted(outcomes) == ["redeemed"] * 3 + ["refused"] * 5
    assert coupon.discounts.count() == 3
