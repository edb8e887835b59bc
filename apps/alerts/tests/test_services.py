"""Alerts evaluated from usage and from the upcoming invoice: each crossing recorded once per period,
emailed once, published as webhook events; bad input refused with nothing saved."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.cache import cache

from apps.accounts.services import customer_update
from apps.alerts.models import Alert, AlertCrossing
from apps.alerts.selectors import customer_spend_status
from apps.alerts.services import (
    PENDING_KEY,
    alert_create,
    alert_crossing_notify,
    alert_update,
    alerts_evaluate_customer,
    alerts_evaluation_request,
)
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.services import billable_metric_create
from apps.core.errors import ValidationFailed
from apps.portal.tests.conftest import NOW
from apps.subscriptions.periods import utc
from apps.webhooks.models import WebhookEvent
from apps.webhooks.services import webhook_events_collect

from .conftest import api_calls

pytestmark = pytest.mark.django_db

MARCH = (utc(2026, 3, 1), utc(2026, 4, 1))


def _crossings(alert):
    return list(
        AlertCrossing.objects.filter(alert=alert)
        .order_by("period_start_at", "threshold")
        .values_list("threshold", "value", "period_start_at")
    )


def test_a_usage_threshold_crossed_fires_once(world):
    customer = world.a.customer
    alert = alert_create(customer=customer, kind="usage", metric="api_calls", thresholds=["10", "5"])

    first = alerts_evaluate_customer(customer_id=customer.pk)  # 6 calls: 5 is crossed, 10 not
    again = alerts_evaluate_customer(customer_id=customer.pk)

    assert alert.thresholds == ["5", "10"]
    assert [(c.threshold, c.value, c.period_start_at, c.period_end_at) for c in first] == [
        (Decimal(5), Decimal(6), *MARCH)
    ]
    assert again == []
    api_calls(customer, 4)  # 10 calls
    assert [c.threshold for c in alerts_evaluate_customer(customer_id=customer.pk)] == [Decimal(10)]
    assert alerts_evaluate_customer(customer_id=customer.pk) == []
    assert _crossings(alert) == [(Decimal(5), Decimal(6), MARCH[0]), (Decimal(10), Decimal(10), MARCH[0])]


def test_a_crossing_is_emailed_once_to_the_billing_contacts_in_the_customers_language(world):
    customer = world.a.customer
    customer_update(
        customer_id=customer.pk,
        preferred_language="zh-hans",
        billing_contacts=[{"email": "ap@alpha.example", "name": "AP"}],
    )
    alert_create(customer=customer, kind="usage", metric="api_calls", thresholds=["5"], name="API")
    [crossing] = alerts_evaluate_customer(customer_id=customer.pk)

    assert alert_crossing_notify(crossing_id=crossing.pk) is True
    assert alert_crossing_notify(crossing_id=crossing.pk) is False

    [message] = mail.outbox
    assert message.to == [customer.email, "ap@alpha.example"]
    assert message.subject == "Acme Cloud Ltd.：API calls 已达到 5"
    assert "本计费周期内API calls 已达到 5，目前为 6。" in message.body
    crossing.refresh_from_db()
    assert crossing.notified_at == NOW
    assert crossing.recipients == [customer.email, "ap@alpha.example"]


def test_a_new_period_rearms_every_threshold(world):
    customer = world.a.customer
    alert = alert_create(
        customer=customer, subscription=world.a.subscription, kind="usage", metric="api_calls", thresholds=["5"]
    )
    alerts_evaluate_customer(customer_id=customer.pk)

    simulated_clock_advance(test_clock_id=customer.test_clock_id, to=utc(2026, 4, 2))
    assert alerts_evaluate_customer(customer_id=customer.pk) == []  # April: no call yet
    api_calls(customer, 5, at=utc(2026, 4, 2), prefix="april")
    [april] = alerts_evaluate_customer(customer_id=customer.pk)

    assert (april.period_start_at, april.period_end_at, april.value) == (utc(2026, 4, 1), utc(2026, 5, 1), 5)
    assert _crossings(alert) == [(Decimal(5), Decimal(6), MARCH[0]), (Decimal(5), Decimal(5), utc(2026, 4, 1))]


def test_a_spend_alert_reads_the_upcoming_invoice(world):
    """The upcoming invoice of 1 April: April's fee 49.00 + March's 6 API calls × 0.01 = 49.06 USD."""
    customer = world.a.customer
    alert = alert_create(customer=customer, kind="spend", thresholds=["49.07", "49.06", "20"])

    crossings = alerts_evaluate_customer(customer_id=customer.pk)

    assert [(c.threshold, c.value, c.currency) for c in crossings] == [
        (Decimal("20"), Decimal("49.06"), "USD"),
        (Decimal("49.06"), Decimal("49.06"), "USD"),
    ]
    api_calls(customer, 1, at=NOW - timedelta(hours=1))  # 49.07 (the preview counts usage until now)
    assert [(c.threshold, c.value) for c in alerts_evaluate_customer(customer_id=customer.pk)] == [
        (Decimal("49.07"), Decimal("49.07"))
    ]
    assert alert.thresholds == ["20", "49.06", "49.07"]


def test_a_hard_limit_blocks_until_the_period_ends_and_is_published(world):
    customer = world.a.customer
    webhook_events_collect(now=NOW)  # the sources' cursors start here
    alert = alert_create(customer=customer, kind="spend", thresholds=["40", "49"], is_hard_limit=True)
    assert customer_spend_status(customer=customer).usage_blocked is False

    crossings = alerts_evaluate_customer(customer_id=customer.pk)
    webhook_events_collect(now=NOW)

    assert [(c.threshold, c.is_limit) for c in crossings] == [(Decimal(40), False), (Decimal(49), True)]
    status = customer_spend_status(customer=customer)
    assert (status.usage_blocked, [c.threshold for c in status.limits_reached]) == (True, [Decimal(49)])
    events = list(WebhookEvent.objects.order_by("id").values_list("type", "object_type", "object_id"))
    assert events == [
        ("alert.triggered", "alert_crossing", crossings[0].pk),
        ("alert.triggered", "alert_crossing", crossings[1].pk),
        ("customer.limit_reached", "customer", customer.pk),
    ]
    limit = WebhookEvent.objects.get(type="customer.limit_reached")
    assert limit.data["object"] == {"id": customer.pk, "object": "customer", "usage_blocked": True}
    assert limit.data["details"]["crossing"]["threshold"] == "49"
    assert limit.data["details"]["crossing"]["value"] == "49.06"
    first = WebhookEvent.objects.filter(type="alert.triggered").order_by("id").first()
    assert (first.data["object"]["threshold"], first.data["object"]["value"]) == ("40", "49.06")  # no exponent

    alert_update(alert_id=alert.pk, thresholds=["40", "60"])  # the limit raised: no longer blocked
    assert customer_spend_status(customer=customer).usage_blocked is False
    alert_update(alert_id=alert.pk, thresholds=["40", "49"])  # back: the March crossing still counts
    assert customer_spend_status(customer=customer).usage_blocked is True
    simulated_clock_advance(test_clock_id=customer.test_clock_id, to=utc(2026, 4, 1) + timedelta(hours=1))
    assert customer_spend_status(customer=customer).usage_blocked is False  # a new period


def test_a_customer_alert_and_other_customers_usage(world):
    """Customer B's usage never counts for A's alert."""
    alert_create(customer=world.a.customer, kind="usage", metric="api_calls", thresholds=["7"])
    api_calls(world.b.customer, 10)

    assert alerts_evaluate_customer(customer_id=world.a.customer.pk) == []
    assert alerts_evaluate_customer(customer_id=world.b.customer.pk) == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"thresholds": ["-5"]}, "thresholds", "Each threshold must be a number above zero (got -5)."),
        ({"thresholds": ["0"]}, "thresholds", "Each threshold must be a number above zero (got 0)."),
        ({"thresholds": ["ten"]}, "thresholds", "Each threshold must be a number above zero (got ten)."),
        ({"thresholds": []}, "thresholds", "Give at least one threshold."),
        (
            {"metric": "storage_gb"},
            "metric",
            "The metric storage_gb is not on the plan of the customer's subscriptions.",
        ),
        ({"metric": "nope"}, "metric", "No billable metric has the code nope."),
        ({"metric": None}, "metric", "Choose the metric to watch."),
        ({"kind": "spend", "thresholds": ["10.001"]}, "thresholds", "A threshold has at most 2 decimals (got 10.001)."),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(world, changes, field, message):
    billable_metric_create(code="storage_gb", name="Storage", aggregation="max", field_name="gb")
    arguments = {"customer": world.a.customer, "kind": "usage", "metric": "api_calls", "thresholds": ["5"]}
    arguments.update(changes)
    if arguments["kind"] == "spend":
        arguments.pop("metric")

    with pytest.raises(ValidationFailed) as raised:
        alert_create(**arguments)

    assert raised.value.fields == {field: [message]}
    assert Alert.objects.count() == 0


def test_a_subscription_of_another_customer_is_refused(world):
    with pytest.raises(ValidationFailed) as raised:
        alert_create(customer=world.a.customer, subscription=world.b.subscription, kind="spend", thresholds=["5"])
    assert raised.value.fields == {"subscription": ["This subscription is not the customer's."]}
    assert Alert.objects.count() == 0


def test_ingestion_asks_for_one_evaluation_per_customer_and_delay(world, django_capture_on_commit_callbacks):
    alert_create(customer=world.a.customer, kind="usage", metric="api_calls", thresholds=["100"])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        api_calls(world.a.customer, 1, prefix="x")
    assert len(callbacks) == 1
    assert cache.get(PENDING_KEY.format(customer_id=world.a.customer.pk)) == 1
    # Within the delay nothing more is queued; B has no alert, so nothing for B.
    assert alerts_evaluation_request(customer_ids=[world.a.customer.pk, world.b.customer.pk]) == []
    cache.clear()
    assert alerts_evaluation_request(customer_ids=[world.a.customer.pk, world.b.customer.pk]) == [world.a.customer.pk]


def test_an_inactive_alert_is_not_evaluated(world):
    alert_create(customer=world.a.customer, kind="usage", metric="api_calls", thresholds=["5"], is_active=False)
    assert alerts_evaluate_customer(customer_id=world.a.customer.pk) == []


def test_a_hard_limit_email_in_english(world):
    customer = world.a.customer
    alert_create(customer=customer, kind="spend", thresholds=["49"], is_hard_limit=True, name="March budget")
    [crossing] = alerts_evaluate_customer(customer_id=customer.pk)

    alert_crossing_notify(crossing_id=crossing.pk)

    [message] = mail.outbox
    assert message.subject == "Acme Cloud Ltd.: Spend this period reached 49 USD"
    assert message.body == (
        "Hello Alpha Labs,\n\n"
        "Spend this period has reached 49 USD in your current billing period: it is now 49.06 USD.\n\n"
        "Billing period: 2026-03-01 to 2026-04-01 (UTC).\n"
        "Alert: March budget\n\n"
        "This is a hard limit: the service may stop accepting your usage until the next billing period begins.\n\n"
        "You receive this email once per threshold and billing period.\n\n"
        "Acme Cloud Ltd.\n"
    )
    assert message.alternatives[0][1] == "text/html"


def test_the_sweep_and_the_batch_task_evaluate_every_watched_customer(world):
    from apps.alerts.tasks import alerts_evaluate_all_task, alerts_evaluate_customers_task

    alert_create(customer=world.a.customer, kind="usage", metric="api_calls", thresholds=["5"])
    alert_create(customer=world.b.customer, kind="usage", metric="api_calls", thresholds=["5", "7"])
    cache.set(PENDING_KEY.format(customer_id=world.a.customer.pk), 1)

    assert alerts_evaluate_customers_task([world.a.customer.pk]) == 1
    assert cache.get(PENDING_KEY.format(customer_id=world.a.customer.pk)) is None  # cleared before reading
    api_calls(world.b.customer, 1)  # B: 7 calls
    assert alerts_evaluate_all_task() == 2  # B's 5 and 7; A's 5 is recorded already
    assert alerts_evaluate_all_task() == 0


def test_a_prepaid_customer_without_usable_credits_is_flagged(world):
    from apps.wallets.services.ledger import wallet_grant
    from apps.wallets.tests.factories import make_wallet

    customer = world.a.customer
    assert customer_spend_status(customer=customer).prepaid_credits_exhausted is False  # no wallet: not prepaid
    wallet = make_wallet(customer)
    assert customer_spend_status(customer=customer).prepaid_credits_exhausted is True  # a wallet, no credits

    wallet_grant(wallet_id=wallet.pk, credits="10", category="promotion", reason="Welcome", now=NOW)

    status = customer_spend_status(customer=customer)
    assert (status.prepaid_credits_exhausted, status.usage_blocked) == (False, False)
