from django.db.models import Count
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.selectors import customer_list, simulated_clock_list
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.invoices.selectors import customer_balance
from apps.subscriptions.api.serializers import EntitlementsOutputSerializer
from apps.subscriptions.entitlements import customer_entitlements

from .filters import CustomerFilter
from .serializers import (
    CustomerBalanceOutputSerializer,
    CustomerCreateInputSerializer,
    CustomerOutputSerializer,
    CustomerUpdateInputSerializer,
    SimulatedClockAdvanceInputSerializer,
    SimulatedClockCreateInputSerializer,
    SimulatedClockOutputSerializer,
)


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Billing accounts: who is billed, where, and in which currency."""

    serializer_class = CustomerOutputSerializer
    filterset_class = CustomerFilter
    search_fields = ["name", "email", "external_id"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return customer_list()

    @extend_schema(
        request=CustomerCreateInputSerializer,
        responses={201: CustomerOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = CustomerCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(**serializer.validated_data)
        customer = self.get_queryset().get(pk=customer.pk)
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CustomerUpdateInputSerializer,
        responses={200: CustomerOutputSerializer, **error_responses(400, 404)},
    )
    def partial_update(self, request, pk=None):
        customer = self.get_object()
        serializer = CustomerUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.customer_update(customer_id=customer.pk, actor=request.user, **serializer.validated_data)
        return Response(CustomerOutputSerializer(self.get_queryset().get(pk=customer.pk)).data)

    @extend_schema(responses={200: CustomerBalanceOutputSerializer, **error_responses(404)}, summary="Credit balance")
    @action(detail=True, methods=["get"])
    def balance(self, request, pk=None):
        """The customer's credit balance, in their billing currency."""
        customer = self.get_object()
        data = {"customer": customer.pk, "credit_balance": customer_balance(customer=customer)}
        return Response(CustomerBalanceOutputSerializer(data).data)

    @extend_schema(
        responses={200: EntitlementsOutputSerializer, **error_responses(404)},
        summary="Entitlements",
        description="What the customer's subscriptions entitle it to, feature by feature (docs/entitlements.md): "
        "the features granted by the plan versions of its trialing, active and past-due subscriptions (paused, "
        "canceled and incomplete ones grant nothing), combined, each with the subscriptions it comes from. "
        "Cached, and current: any change of a subscription, a feature or a grant is seen by the next call.",
    )
    @action(detail=True, methods=["get"])
    def entitlements(self, request, pk=None):
        # Only the customer's existence is read here; the answer comes from the cache when it can.
        customer_id = self._customer_id(pk)
        return Response(EntitlementsOutputSerializer(customer_entitlements(customer_id=customer_id)).data)

    def _customer_id(self, pk) -> int:
        customer_id = int(pk) if str(pk).isdigit() else None
        if customer_id is None or not self.get_queryset().filter(pk=customer_id).exists():
            raise NotFound(gettext("No customer matches the given query."))
        return customer_id


class SimulatedClockViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Clocks for test customers: advance one to see trials end, periods renew and invoices appear."""

    serializer_class = SimulatedClockOutputSerializer
    ordering = ["-created_at", "-id"]
    action_permissions = {"advance": ["accounts.change_simulatedclock"]}

    def get_queryset(self):
        return simulated_clock_list().annotate(customer_count=Count("customers"))

    @extend_schema(
        request=SimulatedClockCreateInputSerializer,
        responses={201: SimulatedClockOutputSerializer, **error_responses(400)},
    )
    @idempotent
    def create(self, request):
        serializer = SimulatedClockCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        test_clock = services.simulated_clock_create(**serializer.validated_data)
        return Response(
            SimulatedClockOutputSerializer(self.get_queryset().get(pk=test_clock.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=SimulatedClockAdvanceInputSerializer,
        responses={200: SimulatedClockOutputSerializer, **error_responses(400, 404)},
        summary="Advance",
        description="Move the clock forward: every renewal, trial end, scheduled change, period-end "
        "cancellation and draft finalization due on the way runs in order, at its own moment.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def advance(self, request, pk=None):
        test_clock = self.get_object()
        serializer = SimulatedClockAdvanceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        simulated_clock_advance(
            test_clock_id=test_clock.pk, to=serializer.validated_data["frozen_at"], actor=request.user
        )
        return Response(SimulatedClockOutputSerializer(self.get_queryset().get(pk=test_clock.pk)).data)
