"""Events the database would refuse — NUL, unpaired surrogates, 1e400, properties nested 100,000 deep —
are refused one by one: a batch of 99 good events and 1 such event stores the 99 and says why the one
was refused (it answered an HTML 500 and stored nothing before). Run on PostgreSQL, which refuses
them; on SQLite too."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.credentials import api_key_create
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.services import billable_metric_create
from apps.core import clock
from apps.subscriptions.periods import utc
from apps.usage.models import UsageEvent, UsageRollup
from apps.usage.services import MAX_PROPERTIES_BYTES, usage_events_ingest

pytestmark = pytest.mark.django_db

NOW = utc(2026, 4, 10, 12)
BAD_INDEX = 57
DEEP = 100_000

NUL = "contains the NUL character (\\u0000), which cannot be stored."
SURROGATE = "contains an unpaired surrogate (\\ud800 to \\udfff): it is not valid Unicode text."
NOT_FINITE = "is not a finite number (e.g. 1e400 is beyond any number stored)."
TOO_DEEP_TO_READ = "The event nests deeper than the JSON parser can read; properties nest at most 5 levels."


@pytest.fixture
def api_key():
    billable_metric_create(code="api_calls", name="API calls")
    billable_metric_create(code="storage_gb", name="Storage", aggregation="sum", field_name="gb")
    CustomerFactory(currency="USD", external_id="acme")
    _, raw_key = api_key_create(name="pipeline")
    return raw_key


def _event(transaction_id: str, **overrides) -> dict:
    event = {
        "transaction_id": transaction_id, "external_customer_id": "acme", "metric_code": "api_calls",
        "timestamp": (NOW - timedelta(hours=1)).isoformat(), "properties": {"region": "eu"},
    }  # fmt: skip
    return {**event, **overrides}


# Each attack: the bad event as JSON text (some cannot be written with json.dumps), the refused
# event's transaction id as echoed back, the reason, and the code when it is not "invalid".
ATTACKS = {
    "NUL in transaction_id": (json.dumps(_event("bad\u0000id")), "bad\ufffdid", f"transaction_id {NUL}"),
    "NUL in external_customer_id": (
        json.dumps(_event("bad", external_customer_id="acme\u0000")),
        "bad",
        f"external_customer_id {NUL}",
    ),
    "NUL in metric_code": (json.dumps(_event("bad", metric_code="api_calls\u0000")), "bad", f"metric_code {NUL}"),
    "NUL in a property value": (
        json.dumps(_event("bad", properties={"region": "eu\u0000"})),
        "bad",
        f"properties.region {NUL}",
    ),
    "NUL in a property key": (
        json.dumps(_event("bad", properties={"reg\u0000ion": "eu"})),
        "bad",
        f"properties has a key that {NUL}",
    ),
    "NUL in a nested property": (
        json.dumps(_event("bad", properties={"a": [{"b": "\u0000"}]})),
        "bad",
        f"properties.a.0.b {NUL}",
    ),
    "lone surrogate in transaction_id": (json.dumps(_event("bad\ud800")), "bad\ufffd", f"transaction_id {SURROGATE}"),
    "lone surrogate in external_customer_id": (
        json.dumps(_event("bad", external_customer_id="\udfffacme")),
        "bad",
        f"external_customer_id {SURROGATE}",
    ),
    "lone surrogate in a property value": (
        json.dumps(_event("bad", properties={"region": "\ud800"})),
        "bad",
        f"properties.region {SURROGATE}",
    ),
    "lone surrogate in a property key": (
        json.dumps(_event("bad", properties={"\ud800": "eu"})),
        "bad",
        f"properties has a key that {SURROGATE}",
    ),
    "1e400 in a property": (
        json.dumps(_event("bad", properties={"region": "eu", "gb": 0})).replace('"gb": 0', '"gb": 1e400'),
        "bad",
        f"properties.gb {NOT_FINITE}",
    ),
    "-1e400 nested in a property": (
        json.dumps(_event("bad", properties={"x": [0]})).replace('"x": [0]', '"x": [-1e400]'),
        "bad",
        f"properties.x.0 {NOT_FINITE}",
    ),
    "properties nested 100,000 deep": (
        json.dumps(_event("bad", properties={"deep": 0})).replace('"deep": 0', '"deep": ' + "[" * DEEP + "]" * DEEP),
        "",  # the event could not be read at all
        TOO_DEEP_TO_READ,
    ),
    "properties nested 6 deep": (
        json.dumps(_event("bad", properties={"a": {"b": {"c": {"d": {"e": {}}}}}})),
        "bad",
        "properties.a.b.c.d.e nests deeper than 5 levels.",
    ),
    "a timestamp past the last UTC date": (
        json.dumps(_event("bad", timestamp="9999-12-31T23:00:00-14:00")),
        "bad",
        "Timestamp '9999-12-31T23:00:00-14:00' is out of range.",
        "invalid_timestamp",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_one_bad_event_is_refused_alone_and_its_99_neighbours_are_stored(api_client, api_key, attack):
    bad_event, echoed_id, reason, *code = ATTACKS[attack]
    good = [json.dumps(_event(f"good-{number}")) for number in range(99)]
    body = '{"events": [' + ", ".join([*good[:BAD_INDEX], bad_event, *good[BAD_INDEX:]]) + "]}"

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-batch"), data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {api_key}"},
        )  # fmt: skip

    assert response.status_code == 200, response.content[:500]
    assert response.json() == {
        "accepted": 99,
        "duplicates": 0,
        "rejected": [
            {"index": BAD_INDEX, "transaction_id": echoed_id, "code": code[0] if code else "invalid", "reason": reason}
        ],
    }
    assert UsageEvent.objects.count() == 99
    assert set(UsageEvent.objects.values_list("transaction_id", flat=True)) == {f"good-{n}" for n in range(99)}
    assert UsageRollup.objects.get().event_count == 99


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_single_event_endpoint_answers_400_with_a_field_error(api_client, api_key, attack):
    bad_event, _, reason, *code = ATTACKS[attack]

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-create"), data=bad_event, content_type="application/json",
            headers={"Authorization": f"Bearer {api_key}"},
        )  # fmt: skip

    assert response.status_code == 400
    assert response.json() == {"code": code[0] if code else "invalid", "message": reason, "fields": {"event": [reason]}}
    assert not UsageEvent.objects.exists()


DEEP_LIST = "[" * DEEP + "]" * DEEP
TOO_DEEP_BODY = "JSON parse error - the body nests deeper than the parser can read."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param('{"events": [' + DEEP_LIST + "]", TOO_DEEP_BODY, id="unclosed"),
        pytest.param(DEEP_LIST, TOO_DEEP_BODY, id="deep body"),
        pytest.param(
            '{"events": [{"a": 1}, ' + DEEP_LIST + '], "x": ' + DEEP_LIST + "}", TOO_DEEP_BODY,
            id="deep outside the events",
        ),
        pytest.param(
            '{"events": [{"transaction_id": "t"}',
            "JSON parse error - Expecting ',' delimiter: line 1 column 36 (char 35)",
            id="not JSON",
        ),
        pytest.param(
            '{"events": [NaN]}', "JSON parse error - Out of range float values are not JSON compliant: 'NaN'", id="NaN"
        ),
        pytest.param('{"events": [' + DEEP_LIST + ", {]}", TOO_DEEP_BODY, id="deep and unbalanced"),
        pytest.param(
            '{"events": [' + DEEP_LIST + ", {1}]}",
            "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 3 (char 2)",
            id="deep and not JSON",
        ),
    ],
)  # fmt: skip
def test_a_body_that_cannot_be_read_is_a_400_json_error(api_client, api_key, body, message):
    response = api_client.post(
        reverse("api:event-batch"), data=body, content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}"},
    )  # fmt: skip

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "parse_error", "message": message, "fields": {}}
    assert not UsageEvent.objects.exists()


def test_properties_over_the_size_limit_are_refused_alone():
    CustomerFactory(currency="USD", external_id="acme")
    billable_metric_create(code="api_calls", name="API calls")
    # '{"note": "…"}' is 12 bytes and each "é" 2 in UTF-8: 8,186 of them make 16,384 bytes.
    fits = {"note": "é" * 8186}
    too_big = {"note": "é" * 8187}

    result = usage_events_ingest(events=[_event("fits", properties=fits), _event("big", properties=too_big)], now=NOW)

    assert (result.accepted, result.duplicates) == (1, 0)
    [rejection] = result.rejected
    assert (rejection.index, rejection.code) == (1, "invalid")
    assert MAX_PROPERTIES_BYTES == 16_384
    assert rejection.reason == "properties take 16,386 bytes as JSON; at most 16,384 are accepted."
    assert UsageEvent.objects.get().properties == fits


def test_values_that_are_not_json_are_refused_by_the_service():
    CustomerFactory(currency="USD", external_id="acme")
    billable_metric_create(code="api_calls", name="API calls")

    result = usage_events_ingest(
        events=[_event("decimal", properties={"gb": Decimal("1.5")}), _event("huge", properties={"n": 10**5000})],
        now=NOW,
    )

    assert result.accepted == 0
    assert [(r.index, r.reason) for r in result.rejected] == [
        (0, "properties.gb is not a JSON value."),
        (1, "properties.n is an integer too long to write as JSON."),
    ]


def test_a_literal_backslash_u0000_is_ordinary_text(api_client, api_key):
    # The text \u0000 (a backslash, then "u0000"), escaped in JSON as "\\u0000", is no NUL.
    body = json.dumps({"events": [_event("t-1", properties={"note": "\\u0000"})]})

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-batch"), data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {api_key}"},
        )  # fmt: skip

    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert UsageEvent.objects.get().properties == {"note": "\\u0000"}


def test_a_batch_with_an_unreadable_event_keeps_every_other_rule(api_client, api_key):
    """Read event by event (one event too deep to read): duplicates, the other refusals and the
    stored values are as for any batch."""
    events = [
        json.dumps(_event("a")),
        json.dumps(_event("a")),
        DEEP_LIST,
        json.dumps(_event("b", metric_code="storage_gb", properties={"gb": "2.5"})),
        json.dumps(_event("c", external_customer_id="nobody")),
        '{"transaction_id": "d, [not] {an} \\"event\\"", "external_customer_id": "acme", "metric_code": '
        '"api_calls", "timestamp": "' + (NOW - timedelta(hours=1)).isoformat() + '"}',
    ]
    body = ' { "other": [1, {"events": 2}], "events" : [ ' + " , ".join(events) + " ] } "

    with clock.frozen_at(NOW):
        response = api_client.post(
            reverse("api:event-batch"), data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {api_key}"},
        )  # fmt: skip

    assert response.json() == {
        "accepted": 3,
        "duplicates": 1,
        "rejected": [
            {"index": 2, "transaction_id": "", "code": "invalid", "reason": TOO_DEEP_TO_READ},
            {"index": 4, "transaction_id": "c", "code": "unknown_customer",
             "reason": "No customer has the external ID 'nobody'."},
        ],
    }  # fmt: skip
    assert sorted(UsageEvent.objects.values_list("transaction_id", "value")) == [
        ("a", None),
        ("b", Decimal("2.5")),
        ('d, [not] {an} "event"', None),
    ]
