from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.core.outbox import event_types

from .. import services
from ..selectors import webhook_delivery_list, webhook_endpoint_list
from .serializers import (
    WebhookAttemptOutputSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookEndpointCreatedOutputSerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointSecretOutputSerializer,
    WebhookEndpointUpdateInputSerializer,
    WebhookEventTypeOutputSerializer,
)


class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Where events are sent. The signing secret is returned once, when the endpoint is made (or its
    secret rolled). Endpoints are turned off (`is_active: false`), never deleted."""

    serializer_class = WebhookEndpointOutputSerializer
    filterset_fields = ["is_active"]
    ordering_fields = ["created_at", "id"]
    ordering = ["id"]
    action_permissions = {
        "roll_secret": ["webhooks.change_webhookendpoint"],
        "event_types": ["webhooks.view_webhookendpoint"],
    }

    def get_queryset(self):
        return webhook_endpoint_list()

    @extend_schema(
        request=WebhookEndpointCreateInputSerializer,
        responses={201: WebhookEndpointCreatedOutputSerializer, **error_responses(400)},
    )
    @idempotent
    def create(self, request):
        serializer = WebhookEndpointCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(**serializer.validated_data, actor=request.user)
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=WebhookEndpointUpdateInputSerializer,
        responses={200: WebhookEndpointOutputSerializer, **error_responses(400, 404)},
    )
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        serializer = WebhookEndpointUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(endpoint_id=endpoint.pk, **serializer.validated_data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(request=None, responses={200: WebhookEndpointSecretOutputSerializer, **error_responses(404)})
    @action(detail=True, methods=["post"], url_path="roll-secret")
    @idempotent
    def roll_secret(self, request, pk=None):
        """A new signing secret (returned only here); the old one stops signing at once."""
        endpoint, secret = services.webhook_endpoint_secret_roll(endpoint_id=self.get_object().pk)
        return Response(WebhookEndpointSecretOutputSerializer({"id": endpoint.pk, "secret": secret}).data)

    @extend_schema(responses={200: WebhookEventTypeOutputSerializer(many=True)})
    @action(detail=False, methods=["get"], url_path="event-types", pagination_class=None, filter_backends=[])
    def event_types(self, request):
        """The event types an endpoint can subscribe to."""
        rows = [{"type": name, "description": text} for name, text in event_types().items()]
        return Response(WebhookEventTypeOutputSerializer(rows, many=True).data)


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log: each event sent to each endpoint, with every attempt's response."""

    serializer_class = WebhookDeliveryOutputSerializer
    filterset_fields = ["status", "endpoint"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-id"]
    action_permissions = {"redeliver": ["webhooks.change_webhookdelivery"]}

    def get_queryset(self):
        return webhook_delivery_list()

    @extend_schema(request=None, responses={200: WebhookAttemptOutputSerializer, **error_responses(404)})
    @action(detail=True, methods=["post"])
    @idempotent
    def redeliver(self, request, pk=None):
        """Send the event to the endpoint again now; a success marks the delivery delivered."""
        attempt = services.webhook_delivery_redeliver(delivery_id=self.get_object().pk)
        return Response(WebhookAttemptOutputSerializer(attempt).data)
