from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.invoices.services import subscription_start
from apps.subscriptions.selectors import subscription_list

from .filters import SubscriptionFilter
from .serializers import (
    SubscriptionCreateInputSerializer,
    SubscriptionCreateOutputSerializer,
    SubscriptionOutputSerializer,
)


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Customers' subscriptions to plans."""

    serializer_class = SubscriptionOutputSerializer
    filterset_class = SubscriptionFilter
    ordering_fields = ["started_at", "next_billing_at", "created_at", "id"]
    ordering = ["-started_at", "-id"]

    def get_queryset(self):
        return subscription_list()

    @extend_schema(
        request=SubscriptionCreateInputSerializer,
        responses={201: SubscriptionCreateOutputSerializer, **error_responses(400, 409)},
        description=(
            "Subscribe a customer to a plan in the customer's billing currency. Every period that has "
            "begun (the first one, unless `started_at` is in the future) is invoiced at once."
        ),
    )
    @idempotent
    def create(self, request):
        serializer = SubscriptionCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_start(**serializer.validated_data, actor=request.user)
        return Response(SubscriptionCreateOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)
