"""Settling usage changes reads who each change concerns for all of them at once
(`late_usage._concerned_subscription_ids`): the same subscriptions as change by change (the reference
below: the two reads it made per change), and a number of statements that does not grow with the
number of changes (3 or 30 late events in one period).

The plan is the one of test_late_usage.py: 10.00 a month, data transfer in graduated tiers (first
100 GB at 0.10, 101–500 at 0.05, above at 0.02); events up to 3 days late."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import bill_due_subscriptions, subscription_start
from apps.billing.services.late_usage import _concerned_subscription_ids, _moments, late_usage_line_drafts
from apps.catalog.constants import ChargeKind
from apps.catalog.models import PlanVersion
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import PlanFactory, ProductFactory, add_charge
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import InvoiceLine
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc
from apps.usage.corrections import usage_event_replace, usage_event_void
from apps.usage.models import UsageEventChange
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db


def _plan(code: str, metric_code: str):
    plan = PlanFactory(product=ProductFactory(name="CDN"), name="Edge", code=code, prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    add_charge(version, name="Platform", price_model="flat", amount=D("10.00"))
    add_charge(
        version, name="Data transfer", kind="usage", metric_code=metric_code, price_model="graduated", amount=0,
        tiers=[("100", "0.10", "0"), ("500", "0.05", "0"), (None, "0.02", "0")],
    )  # fmt: skip
    return plan


def _send(external_id: str, now, *events, metric_code: str = "transfer_gb"):
    result = usage_events_ingest(
        events=[
            {"transaction_id": transaction_id, "external_customer_id": external_id, "metric_code": metric_code,
             "timestamp": moment.isoformat(), "properties": {"gb": gb}}
            for transaction_id, moment, gb in events
        ],
        now=now,
    )  # fmt: skip
    assert result.rejected == [], result.rejected


def _concerned_one_by_one(customer_id: int, change: UsageEventChange) -> set[int]:
    """The reads settlement made for each change before they were batched (two statements a change)."""
    still_billed = Subscription.objects.filter(customer_id=customer_id, next_billing_at__isnull=False)
    concerned = set(
        still_billed.filter(
            started_at__lt=change.billed_period_end_at,
            plan_version__charges__kind=ChargeKind.USAGE,
            plan_version__charges__metric_code=change.metric.code,
        ).values_list("pk", flat=True)
    )
    moments = Q()
    for moment in _moments(change):
        moments |= Q(period_start_at__lte=moment, period_end_at__gt=moment)
    billed = InvoiceLine.objects.filter(moments, kind=InvoiceLineKind.USAGE, charge__metric_code=change.metric.code)
    billed = billed.filter(
        Q(subscription__in=still_billed) | Q(subscription__isnull=True, invoice__subscription__in=still_billed)
    )
    for line_subscription_id, invoice_subscription_id in billed.values_list(
        "subscription_id", "invoice__subscription_id"
    ):
        concerned.add(line_subscription_id or invoice_subscription_id)
    return concerned


def test_the_subscriptions_each_change_concerns_are_those_read_change_by_change():
    billable_metric_create(code="transfer_gb", name="Data transfer", aggregation="sum", field_name="gb")
    billable_metric_create(code="egress_gb", name="Egress", aggregation="sum", field_name="gb")
    transfer, egress = _plan("edge", "transfer_gb"), _plan("egress", "egress_gb")
    acme = CustomerFactory(currency="USD", external_id="acme")
    CustomerFactory(currency="USD", external_id="beta")
    # acme: two subscriptions billing transfer from 1 Oct and 15 Oct (the second's periods run 15th to
    # 15th), one billing egress only, one that ends after the changes, one that starts on 2 Nov. beta bills
    # transfer too (another customer: never concerned).
    first = subscription_start(customer=acme, plan=transfer, now=utc(2026, 10, 1))
    mid = subscription_start(customer=acme, plan=transfer, now=utc(2026, 10, 15))
    other = subscription_start(customer=acme, plan=egress, now=utc(2026, 10, 1))
    ending = subscription_start(customer=acme, plan=transfer, now=utc(2026, 10, 1))
    beta = subscription_start(customer=CustomerFactory._meta.model.objects.get(external_id="beta"), plan=transfer,
                              now=utc(2026, 10, 1))  # fmt: skip
    _send("acme", utc(2026, 11, 1), ("a", utc(2026, 10, 5), "90"), ("b", utc(2026, 10, 20), "30"),
          ("c", utc(2026, 10, 31, 23, 59, 59), "1"))  # fmt: skip
    _send("acme", utc(2026, 11, 1), ("e", utc(2026, 10, 31), "5"), metric_code="egress_gb")
    _send("beta", utc(2026, 11, 1), ("b-1", utc(2026, 10, 12), "7"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    later = subscription_start(customer=acme, plan=transfer, now=utc(2026, 11, 2))

    # Late events in October, on its last moment and on its first; a void; a replace moving an event
    # from October into November; late egress; beta's own late event.
    _send("acme", utc(2026, 11, 3), ("late-1", utc(2026, 10, 31, 23), "40"), ("late-2", utc(2026, 10, 1), "2"),
          ("late-3", utc(2026, 10, 31, 23, 59, 59) + timedelta(microseconds=999_999), "3"))  # fmt: skip
    usage_event_void(transaction_id="b", now=utc(2026, 11, 2))
    usage_event_replace(transaction_id="a", timestamp="2026-11-01T10:00:00Z", properties={"gb": "9"},
                        now=utc(2026, 11, 2))  # fmt: skip
    _send("acme", utc(2026, 11, 2), ("e-late", utc(2026, 10, 30), "6"), metric_code="egress_gb")
    _send("beta", utc(2026, 11, 2), ("b-late", utc(2026, 10, 30), "6"))

    # Then one has ended (no invoice left to carry a change: never concerned) and the first has moved
    # to the egress plan (after the changes came in): October's transfer changes
    # concern it through its October line (a period starting on the very moment of one of them).
    Subscription.objects.filter(pk=ending.pk).update(status="canceled", ended_at=utc(2026, 11, 3), next_billing_at=None)
    Subscription.objects.filter(pk=first.pk).update(plan=egress, plan_version=PlanVersion.objects.get(plan=egress))
    changes = list(UsageEventChange.objects.filter(customer=acme).select_related("metric").order_by("id"))
    assert len(changes) == 6
    expected = {change.pk: _concerned_one_by_one(acme.pk, change) for change in changes}
    assert _concerned_subscription_ids(acme.pk, changes) == expected
    # By hand: transfer changes concern the subscription billing transfer that started before 1 Nov and
    # still bills (mid; not the ended one, nor the one from 2 Nov) and the first (its October line);
    # egress ones the two subscriptions billing egress now; beta's subscription none of them.
    assert {frozenset(ids) for ids in expected.values()} == {
        frozenset({first.pk, mid.pk}),
        frozenset({other.pk, first.pk}),
    }
    assert not {ending.pk, later.pk, beta.pk} & set().union(*expected.values())
    assert _concerned_subscription_ids(acme.pk, []) == {}


def test_settling_changes_takes_as_many_statements_for_3_changes_as_for_30():
    billable_metric_create(code="transfer_gb", name="Data transfer", aggregation="sum", field_name="gb")
    plan = _plan("edge", "transfer_gb")
    subscriptions = {}
    for size in (3, 30):
        customer = CustomerFactory(currency="USD", external_id=f"c{size}")
        subscriptions[size] = subscription_start(customer=customer, plan=plan, now=utc(2026, 10, 1))
        _send(f"c{size}", utc(2026, 10, 15), (f"c{size}-oct", utc(2026, 10, 15), "90"))
    bill_due_subscriptions(now=utc(2026, 11, 1, 0, 30))
    counts, lines = [], []
    for size, subscription in subscriptions.items():
        _send(f"c{size}", utc(2026, 11, 3),
              *[(f"c{size}-late-{n}", utc(2026, 10, 31, n % 24, n), "1") for n in range(size)])  # fmt: skip
        subscription.refresh_from_db()
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            drafts = late_usage_line_drafts(
                subscription=subscription, billed_from=utc(2026, 12, 1), now=utc(2026, 12, 1)
            )
        counts.append(len(queries))
        lines += [(draft.quantity, draft.amount) for draft in drafts]
    # One difference line for October each, every change settled. 93 GB: 9.30 − 9.00 billed = 0.30;
    # 120 GB: 100 × 0.10 + 20 × 0.05 = 11.00 − 9.00 = 2.00.
    assert lines == [(D(3), D("0.30")), (D(30), D("2.00"))]
    assert not UsageEventChange.objects.filter(settled_at__isnull=True).exists()
    assert UsageEventChange.objects.count() == 33
    # The lock, the waiting changes, the billed lines, the period's usage and lines, the settlements
    # written and read, who the changes concern, the update: as many for 30 changes as for 3.
    assert counts[0] == counts[1], counts
