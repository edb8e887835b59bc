"""Usage ingestion for the seller's systems (API key), and usage reads for staff."""

from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.authentication import ApiKeyAuthentication, HasApiKey
from apps.accounts.api.throttling import ApiKeyRateThrottle
from apps.accounts.models import Customer
from apps.accounts.selectors import customer_now
from apps.catalog.models import BillableMetric
from apps.core import clock
from apps.core.api.permissions import StaffModelPermissions
from apps.core.api.schema import error_responses
from apps.core.api.serializers import format_decimal
from apps.core.errors import NotFound, ValidationFailed
from apps.subscriptions.models import Subscription
from apps.usage.corrections import usage_event_replace, usage_event_void
from apps.usage.models import UsageEvent, UsageEventChange
from apps.usage.selectors import usage_for_customer_period
from apps.usage.services import usage_events_ingest

from .parsers import EventBatchJSONParser, EventJSONParser
from .serializers import (
    CustomerUsageOutputSerializer,
    EventBatchInputSerializer,
    EventBatchOutputSerializer,
    EventChangeOutputSerializer,
    EventInputSerializer,
    EventOutputSerializer,
    EventReplaceInputSerializer,
    EventVoidInputSerializer,
)


class _IngestionView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]


class EventView(_IngestionView):
    parser_classes = [EventJSONParser]

    @extend_schema(
        request=EventInputSerializer,
        responses={202: EventOutputSerializer, **error_responses(400, 401, 403)},
        summary="Send one usage event",
        description="Idempotent on `transaction_id`: a replayed event is acknowledged (`duplicate: true`) and "
        "not counted again. A refused event gets 400 with the reason.",
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send one event as a JSON object.", fields={"event": ["Expected an object."]})
        result = usage_events_ingest(events=[request.data], now=clock.now())
        if result.rejected:
            rejection = result.rejected[0]
            raise ValidationFailed(rejection.reason, fields={"event": [rejection.reason]}, code=rejection.code)
        body = {"transaction_id": request.data.get("transaction_id"), "duplicate": bool(result.duplicates)}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EventBatchView(_IngestionView):
    parser_classes = [EventBatchJSONParser]

    @extend_schema(
        request=EventBatchInputSerializer,
        responses={200: EventBatchOutputSerializer, **error_responses(400, 401, 403)},
        summary="Send up to 1,000 usage events",
        description="Good events are stored even when others are refused; each refused event comes back with "
        "its index in the batch and the reason. Replayed `transaction_id`s are counted as duplicates, once.",
    )
    def post(self, request):
        events = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(events, list) or not events:
            raise ValidationFailed(
                gettext('Send {"events": [...]} with 1 to %(max_batch)s events.')
                % {"max_batch": f"{settings.USAGE_EVENTS_MAX_BATCH:,}"},
                fields={"events": [gettext("Give a list of events.")]},
            )
        max_batch = settings.USAGE_EVENTS_MAX_BATCH
        if len(events) > max_batch:
            raise ValidationFailed(
                gettext("A batch holds at most %(max_batch)s events; this one has %(count)s.")
                % {"max_batch": f"{max_batch:,}", "count": f"{len(events):,}"},
                fields={
                    "events": [
                        gettext("Send at most %(max_batch)s events per batch.") % {"max_batch": f"{max_batch:,}"}
                    ]
                },
            )
        result = usage_events_ingest(events=events, now=clock.now())
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [rejection.as_dict() for rejection in result.rejected],
            }
        )


def _actor(request) -> str:
    api_key = request.auth
    return f"API key {api_key.name} ({api_key.prefix}…)" if api_key is not None else ""


def _change_body(change: UsageEventChange) -> dict:
    return EventChangeOutputSerializer(
        {
            "id": change.pk,
            "kind": change.kind,
            "transaction_id": change.transaction_id,
            "before": change.before,
            "after": change.after,
            "billed_period_end_at": change.billed_period_end_at,
            "recorded_at": change.recorded_at,
        }  # fmt: skip
    ).data


class EventVoidView(_IngestionView):
    @extend_schema(
        request=EventVoidInputSerializer,
        responses={200: EventChangeOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
        summary="Void a usage event",
        description="The event no longer counts; its transaction_id stays taken. In an open period the usage "
        "billed changes; in a period already invoiced, within the metric's lateness window, the difference is "
        "credited on the next invoice; past the window: 400 `late_beyond_window`. Unknown transaction_id: 404.",
    )
    def post(self, request, transaction_id: str):
        serializer = EventVoidInputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        change = usage_event_void(
            transaction_id=transaction_id, now=clock.now(), actor=_actor(request),
            reason=serializer.validated_data["reason"],
        )  # fmt: skip
        return Response(_change_body(change))


class EventReplaceView(_IngestionView):
    @extend_schema(
        request=EventReplaceInputSerializer,
        responses={200: EventChangeOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
        summary="Replace a usage event",
        description="New timestamp and properties for the event (checked as at ingestion; customer and metric "
        "stay). A period already invoiced changes only within the metric's lateness window, the difference "
        "going on the next invoice. Unknown transaction_id: 404.",
    )
    def post(self, request, transaction_id: str):
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send the new event as a JSON object.", fields={"event": ["Expected an object."]})
        reason = request.data.get("reason", "")
        if not isinstance(reason, str):
            raise ValidationFailed("reason must be text.", fields={"reason": ["Give the reason as text."]})
        change = usage_event_replace(
            transaction_id=transaction_id, timestamp=request.data.get("timestamp"),
            properties=request.data.get("properties"), now=clock.now(), actor=_actor(request), reason=reason[:1000],
        )  # fmt: skip
        return Response(_change_body(change))


class CustomerUsageView(APIView):
    """Staff: a customer's usage so far in the current period of its subscriptions, per metric."""

    permission_classes = [StaffModelPermissions]
    # For the model permission: reading usage (usage.view_usageevent), not only the customer.
    queryset = UsageEvent.objects.none()

    @extend_schema(responses={200: CustomerUsageOutputSerializer, **error_responses(401, 403, 404)}, summary="Usage")
    def get(self, request, pk: int):
        customer = Customer.objects.filter(pk=pk).first()
        if customer is None:
            raise NotFound(gettext("Customer %(id)s does not exist.") % {"id": pk})
        now = customer_now(customer)
        subscription = (
            Subscription.objects.filter(customer=customer, current_period_start_at__lte=now)
            .exclude(status="canceled")
            .order_by("current_period_start_at")
            .first()
        )
        start = subscription.current_period_start_at if subscription else now
        end = subscription.current_period_end_at if subscription else now
        codes = sorted(
            {
                charge.metric_code
                for sub in Subscription.objects.filter(customer=customer).exclude(status="canceled")
                for charge in sub.plan_version.charges.all()
                if charge.metric_code
            }
        )
        usage = usage_for_customer_period(customer=customer, start=start, end=min(now, end), metric_codes=codes or None)
        metrics = {metric.code: metric for metric in BillableMetric.objects.filter(code__in=usage)}
        body = {
            "customer": customer.pk,
            "period_start_at": start,
            "period_end_at": end,
            "as_of": now,
            "metrics": [
                {
                    "metric_code": code,
                    "metric_name": metrics[code].name,
                    "aggregation": metrics[code].aggregation,
                    "total": format_decimal(sum(groups.values(), Decimal(0))),
                    "groups": {group or "": format_decimal(value) for group, value in groups.items()},
                }
                for code, groups in usage.items()
                if code in metrics
            ],
        }
        return Response(CustomerUsageOutputSerializer(body).data)
