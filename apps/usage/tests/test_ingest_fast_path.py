"""The fast path of batch ingestion (docs/performance.md, section 1): the body read by orjson with Python's
parser behind it for what orjson would read differently, full-size batches with duplicates inside them
and across them, and a batch that fails half-way leaving nothing written."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse

from apps.accounts.credentials import api_key_create
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.core import clock
from apps.subscriptions.periods import utc
from apps.usage import services
from apps.usage.api.parsers import EventBatchJSONParser
from apps.usage.models import UsageEvent, UsageEventKey, UsageRollup
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

NOW = utc(2026, 4, 10, 12)


@pytest.fixture
def raw_key():
    billable_metric_create(code="storage_gb", name="Storage", aggregation="sum", field_name="gb", group_by="region")
    for name in ("acme", "globex"):
        CustomerFactory(currency="USD", external_id=name)
    _, key = api_key_create(name="pipeline")
    return key


def _event(transaction_id: str, *, minutes: int = 60, gb: object = "1.25", customer: str = "acme", **properties):
    return {
        "transaction_id": transaction_id, "external_customer_id": customer, "metric_code": "storage_gb",
        "timestamp": (NOW - timedelta(minutes=minutes)).isoformat(),
        "properties": {"gb": gb, "region": "eu", **properties},
    }  # fmt: skip


def _post(api_client, raw_key: str, body: str | bytes):
    with clock.frozen_at(NOW):
        return api_client.post(
            reverse("api:event-batch"), data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )  # fmt: skip


def _parse(body: bytes, charset: str = "utf-8"):
    import io

    context = {"encoding": charset}
    return EventBatchJSONParser().parse(io.BytesIO(body), f"application/json; charset={charset}", context)


def test_integers_beyond_64_bits_are_read_exactly_not_as_floats():
    body = b'{"events": [{"properties": {"n": 123456789012345678901234567890, "m": -9223372036854775809}}]}'

    properties = _parse(body)["events"][0]["properties"]

    assert properties == {"n": 123456789012345678901234567890, "m": -9223372036854775809}
    assert all(type(value) is int for value in properties.values())


def test_the_fast_and_the_slow_reading_agree():
    events = [_event(f"t{i}", gb=number) for i, number in enumerate([1, 1.5, -0.0, 1e-7, 2**63 - 1, "x\u00e9\u4e2d"])]
    body = json.dumps({"events": events, "other": [None, True, {"a": []}]}, ensure_ascii=False).encode()

    assert _parse(body) == json.loads(body)
    # Another charset than UTF-8: Python's parser, as before.
    assert _parse(json.dumps({"events": events}).encode("utf-16"), charset="utf-16") == {"events": events}


def test_a_non_finite_number_orjson_refuses_is_refused_with_its_event_alone(api_client, raw_key):
    body = json.dumps({"events": [_event("good"), _event("bad", gb="__X__")]}).replace('"__X__"', "1e400")

    response = _post(api_client, raw_key, body)

    assert response.status_code == 200
    assert (response.json()["accepted"], [r["transaction_id"] for r in response.json()["rejected"]]) == (1, ["bad"])
    assert list(UsageEvent.objects.values_list("transaction_id", flat=True)) == ["good"]


def test_a_full_batch_with_duplicates_inside_and_across_batches_stores_each_event_once(api_client, raw_key):
    first = [_event(f"a{i}", minutes=i % 300, customer=("acme", "globex")[i % 2]) for i in range(1000)]
    first[10] = _event("a3", minutes=1)  # a3 again, in the same batch: a duplicate
    # The second batch: 400 of the first again (replays), 600 new, one of them twice.
    second = first[:400] + [_event(f"b{i}", minutes=i % 300) for i in range(599)] + [_event("b0", minutes=5)]

    one = _post(api_client, raw_key, json.dumps({"events": first}))
    two = _post(api_client, raw_key, json.dumps({"events": second}))

    assert one.json() == {"accepted": 999, "duplicates": 1, "rejected": []}
    assert two.json() == {"accepted": 599, "duplicates": 401, "rejected": []}
    assert UsageEvent.objects.count() == UsageEventKey.objects.count() == 1598
    totals = UsageRollup.objects.aggregate(count=Sum("event_count"), value=Sum("value_sum"))
    assert totals == {"count": 1598, "value": Decimal("1.25") * 1598}


def test_a_batch_that_fails_half_way_leaves_nothing_written(raw_key, monkeypatch):
    def rollups_fail(inserted):
        assert UsageEvent.objects.count() == len(inserted) == 3  # the events were written…
        raise RuntimeError("the rollup upsert failed")

    monkeypatch.setattr(services, "_rollups_add", rollups_fail)

    with pytest.raises(RuntimeError):
        usage_events_ingest(events=[_event("t1"), _event("t2"), _event("t3")], now=NOW)

    # …and went with the rest of the batch.
    assert (UsageEvent.objects.count(), UsageEventKey.objects.count(), UsageRollup.objects.count()) == (0, 0, 0)
    # Sent again, the batch is new: nothing of it was taken.
    monkeypatch.undo()
    assert usage_events_ingest(events=[_event("t1"), _event("t2"), _event("t3")], now=NOW).accepted == 3
