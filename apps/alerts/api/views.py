from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Customer
from apps.core.api.permissions import StaffModelPermissions
from apps.core.api.schema import error_responses
from apps.core.errors import NotFound, ValidationFailed
from apps.core.idempotency import idempotent

from .. import services
from ..models import Alert
from ..selectors import alert_crossing_list, alert_list, customer_spend_status
from .filters import AlertCrossingFilter, AlertFilter
from .serializers import (
    AlertCreateInputSerializer,
    AlertCrossingOutputSerializer,
    AlertOutputSerializer,
    AlertUpdateInputSerializer,
    SpendStatusOutputSerializer,
)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Alerts on a customer's (or a subscription's) usage of a metric or spend in the current period, with
    staff thresholds and the customers' own budgets (`origin: customer`). Each threshold fires once per
    period: an email to the billing contacts and the `alert.triggered` webhook event."""

    serializer_class = AlertOutputSerializer
    filterset_class = AlertFilter
    search_fields = ["name", "customer__name", "customer__external_id"]
    ordering_fields = ["created_at", "id"]
    ordering = ["id"]

    def get_queryset(self):
        return alert_list()

    @extend_schema(request=AlertCreateInputSerializer, responses={201: AlertOutputSerializer, **error_responses(400)})
    @idempotent
    def create(self, request):
        serializer = AlertCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = services.alert_create(**serializer.validated_data, actor=request.user)
        return Response(
            AlertOutputSerializer(self.get_queryset().get(pk=alert.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=AlertUpdateInputSerializer, responses={200: AlertOutputSerializer, **error_responses(400, 404)}
    )
    def partial_update(self, request, pk=None):
        alert = self.get_object()
        serializer = AlertUpdateInputSerializer(data=request.data, partial=True)
        unknown = sorted(set(request.data) - set(serializer.fields))
        if unknown:
            raise ValidationFailed(
                "What an alert watches cannot change: make a new alert.",
                fields={name: ["This field cannot be changed."] for name in unknown},
            )
        serializer.is_valid(raise_exception=True)
        services.alert_update(alert_id=alert.pk, **serializer.validated_data)
        return Response(AlertOutputSerializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(responses={204: None, **error_responses(404)})
    def destroy(self, request, pk=None):
        """Delete the alert and its crossing history (`is_active: false` keeps the history)."""
        services.alert_delete(alert_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertCrossingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every threshold crossed, newest first (recorded by evaluation; read-only)."""

    serializer_class = AlertCrossingOutputSerializer
    filterset_class = AlertCrossingFilter
    ordering_fields = ["crossed_at", "id"]
    ordering = ["-crossed_at", "-id"]

    def get_queryset(self):
        return alert_crossing_list()


class CustomerSpendStatusView(APIView):
    """Whether the customer reached a hard limit in its current period (`usage_blocked`). Enforcing it
    (refusing the customer's requests) is your application's job."""

    permission_classes = [StaffModelPermissions]
    queryset = Alert.objects.none()  # reading it needs alerts.view_alert

    @extend_schema(
        responses={200: SpendStatusOutputSerializer, **error_responses(401, 403, 404)}, summary="Spend status"
    )
    def get(self, request, pk: int):
        customer = Customer.objects.filter(pk=pk).first()
        if customer is None:
            raise NotFound(gettext("Customer %(id)s does not exist.") % {"id": pk})
        return Response(SpendStatusOutputSerializer(customer_spend_status(customer=customer)).data)
