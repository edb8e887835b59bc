"""Progressive billing on lifetime usage (docs/billing-rules.md, "Progressive billing", "Lifetime
thresholds"): with the scope "lifetime", thresholds measure the usage since the subscription started —
what its earlier periods' invoices billed plus the current period's usage to date — and each fires once
in the subscription's life. The interim invoice still bills the current period's usage to date, less
the period's earlier interim invoices. Every amount is computed by hand below.

The example: 100.00 USD a month in advance plus API calls at 1.00 each; thresholds at 500.00 and
1,000.00 USD. "life" measures them on lifetime usage, "period" (the same plan terms, per period) on the
period's usage.

    | when   | calls | April/May/June usage | lifetime | "life"                              | "period"           |
    | 20 Apr | 300   | April 300.00         | 300.00   | —                                   | —                  |
    | 1 May  |       | (May's invoice bills April's 300.00 and May's fee 100.00: 400.00 for both)        |
    | 10 May | 250   | May 250.00           | 550.00   | 500 reached: interim bills 250.00   | —  (250 < 500)     |
    | 20 May | 500   | May 750.00           | 1,050.00 | 1,000 reached: 750 − 250 = 500.00   | 500: bills 750.00  |
    | 1 Jun  |       | final: 750 − 250 − 500 + fee 100 = 100.00                  | 750 − 750 + 100 = 100.00 |
    | 10 Jun | 2,000 | June 2,000.00        | 3,050.00 | — (500 and 1,000 fired already)     | 1,000: 2,000.00    |
"""

from decimal import Decimal

import pytest
from djmoney.money import Money

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.billing.tests.services.progressive_usage import send_calls
from apps.catalog.constants import ThresholdScope
from apps.catalog.services import (
    ChargeInput,
    PriceInput,
    billable_metric_create,
    plan_create,
    plan_version_progressive_billing_set,
)
from apps.catalog.tests.factories import ProductFactory
from apps.core.errors import ValidationFailed
from apps.invoices.constants import BillingReason
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc
from apps.subscriptions.services import subscription_progressive_billing_set

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def metrics():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")


FEE = ChargeInput(name="Platform", price_model="flat", prices=[PriceInput(currency="USD", amount=D("100.00"))])
CALLS = ChargeInput(
    name="API calls", kind="usage", metric_code="api_calls", price_model="per_unit",
    prices=[PriceInput(currency="USD", amount=D("1.00"))],
)  # fmt: skip


def _subscribe(code: str, scope: str):
    plan = plan_create(product=ProductFactory(name="Cloud"), code=code, name=code.title(), charges=[FEE, CALLS])
    plan_version_progressive_billing_set(
        version=plan.versions.get(), currency="USD", amounts=["500", "1000"], scope=scope
    )
    customer = CustomerFactory(currency="USD", external_id=code)
    return subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))


def _evaluate(subscription, *, month: int, day: int):
    return subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, month, day, 1))


def _totals(invoice) -> list[Decimal]:
    return [line.amount.amount for line in invoice.lines.order_by("position")]


def _invoice(subscription, month: int):
    return Invoice.objects.get(
        subscription=subscription, period_start_at=utc(2026, month, 1), billing_reason=BillingReason.SUBSCRIPTION_CYCLE
    )


def test_lifetime_thresholds_count_earlier_periods_usage_and_each_fires_once_in_the_subscriptions_life():
    life = _subscribe("life", ThresholdScope.LIFETIME)
    period = _subscribe("period", ThresholdScope.PERIOD)
    both = (life, period)

    for subscription in both:
        send_calls(subscription, 300, month=4, day=20)
    assert [_evaluate(subscription, month=4, day=20) for subscription in both] == [None, None]  # 300 < 500
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))
    assert [_invoice(subscription, 5).total for subscription in both] == [Money("400.00", "USD")] * 2

    for subscription in both:
        send_calls(subscription, 250, month=5, day=10)
    first = _evaluate(life, month=5, day=10)  # lifetime 300 + 250 = 550 ≥ 500
    assert _evaluate(period, month=5, day=10) is None  # May's 250 < 500
    assert first.billing_reason == BillingReason.SUBSCRIPTION_THRESHOLD
    assert _totals(first) == [D("250.00")]  # the period's usage to date, not the lifetime's
    assert "usage since the subscription started reached 500.00 USD (550.00 USD)" in " ".join(
        first.lines.get().explanation
    )

    for subscription in both:
        send_calls(subscription, 500, month=5, day=20)
    second = _evaluate(life, month=5, day=20)  # lifetime 1,050 ≥ 1,000: May 750 − 250 = 500
    per_period = _evaluate(period, month=5, day=20)  # May 750 ≥ 500
    assert _totals(second) == [D("750.00"), D("-250.00")] and second.total == Money("500.00", "USD")
    assert per_period.total == Money("750.00", "USD")

    bill_due_subscriptions(now=utc(2026, 6, 1, 0, 5))
    june = _invoice(life, 6)
    assert _totals(june) == [D("750.00"), D("-250.00"), D("-500.00"), D("100.00")]
    assert june.total == Money("100.00", "USD")
    assert _invoice(period, 6).total == Money("100.00", "USD")  # 750 − 750 + 100
    # Either way the periods add up to the usage and the fees: May 250 + 500 + 100 = 850 = 750 + 100.
    assert first.total + second.total + june.total == Money("850.00", "USD")

    for subscription in both:
        send_calls(subscription, 2000, month=6, day=10)
    assert _evaluate(life, month=6, day=10) is None  # lifetime 3,050, but 500 and 1,000 fired already
    assert _evaluate(period, month=6, day=10).total == Money("2000.00", "USD")  # June's own 1,000 reached


def test_a_subscriptions_own_lifetime_thresholds_recur_over_its_whole_life():
    """Own thresholds every 400.00 of lifetime usage. April: 300 → none. May (after April's 300 was
    billed): 150 → lifetime 450 ≥ 400: interim 150.00; 350 more → lifetime 800 ≥ 800: 500 − 150 = 350.00."""
    subscription = _subscribe("own", ThresholdScope.PERIOD)
    subscription_progressive_billing_set(
        subscription_id=subscription.pk, amounts=[], every="400", scope="lifetime", now=utc(2026, 4, 2)
    )
    send_calls(subscription, 300, month=4, day=20)
    assert _evaluate(subscription, month=4, day=20) is None
    bill_due_subscriptions(now=utc(2026, 5, 1, 0, 5))

    send_calls(subscription, 150, month=5, day=10)
    assert _evaluate(subscription, month=5, day=10).total == Money("150.00", "USD")
    send_calls(subscription, 350, month=5, day=20)
    assert _evaluate(subscription, month=5, day=20).total == Money("350.00", "USD")


def test_an_unknown_scope_is_refused_on_its_field():
    subscription = _subscribe("bad", ThresholdScope.PERIOD)
    with pytest.raises(ValidationFailed) as refused:
        subscription_progressive_billing_set(subscription_id=subscription.pk, amounts=["10"], scope="forever")
    assert list(refused.value.fields) == ["scope"]
