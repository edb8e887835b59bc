from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.schema import error_responses
from apps.core.errors import ValidationFailed
from apps.core.idempotency import idempotent
from apps.payments import services
from apps.payments.selectors import payment_list, payment_list_with_details, refund_list

from .filters import PaymentFilter, RefundFilter
from .serializers import (
    PaymentDetailOutputSerializer,
    PaymentListOutputSerializer,
    PaymentManualCreateInputSerializer,
    PaymentReverseInputSerializer,
    RefundOutputSerializer,
)

# The service names the payment's currency `currency`; the API sends it inside `amount`.
_API_FIELDS = {"currency": "amount.currency"}


class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Payments received: by card (Stripe) or recorded by staff (bank transfer, cheque, cash)."""

    filterset_class = PaymentFilter
    search_fields = ["reference", "provider_payment_id", "customer__name", "customer__external_id"]
    ordering_fields = ["created_at", "received_at", "id"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"\d+"
    action_permissions = {"reverse": ["payments.change_payment"]}

    def get_queryset(self):
        if self.action == "list":
            return payment_list()
        return payment_list_with_details()

    def get_serializer_class(self):
        if self.action == "list":
            return PaymentListOutputSerializer
        return PaymentDetailOutputSerializer

    def _detail_response(self, payment_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        payment = payment_list_with_details().get(pk=payment_id)
        return Response(PaymentDetailOutputSerializer(payment).data, status=status_code)

    @extend_schema(
        request=PaymentManualCreateInputSerializer,
        responses={201: PaymentDetailOutputSerializer, **error_responses(400, 404, 409)},
        summary="Record a manual payment",
        description=(
            "Money that arrived outside the product (bank transfer, cheque, cash). It pays the invoices in "
            "`allocations` (each at most what is due on it) or, without them, the customer's unpaid invoices "
            "oldest due first; what is left goes to the customer's credit balance. Bad input (negative amount, "
            "another currency, more than an invoice owes, an invoice that is not the customer's or not payable) "
            "is refused with messages per field, and nothing is recorded. The `reference` is required and unique "
            "per customer: a payment sent twice (without an `Idempotency-Key`) is a 409 with a field error on "
            "`reference` the second time, and is recorded once."
        ),
    )
    @idempotent
    def create(self, request):
        serializer = PaymentManualCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        allocations = data["allocations"]
        try:
            payment = services.payment_record_manual(
                customer_id=data["customer"].pk,
                amount=data["amount"]["amount"],
                currency=data["amount"]["currency"],
                method=data["method"],
                reference=data["reference"],
                received_at=data["received_at"],
                allocations=None
                if allocations is None
                else [(allocation["invoice"], allocation["amount"]) for allocation in allocations],
                actor=request.user,
            )
        except ValidationFailed as exc:
            fields = {_API_FIELDS.get(name, name): messages for name, messages in exc.fields.items()}
            raise ValidationFailed(exc.message, fields=fields) from exc
        return self._detail_response(payment.pk, status.HTTP_201_CREATED)

    @extend_schema(
        request=PaymentReverseInputSerializer,
        responses={200: PaymentDetailOutputSerializer, **error_responses(400, 404, 409)},
        summary="Reverse a manual payment",
        description=(
            "Undo a manual payment recorded by mistake: its invoices owe again what it paid (paid ones become "
            "open again), and its credit on the customer's balance is taken back. Card payments are refunded "
            "instead (409)."
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reverse(self, request, pk=None):
        payment = self.get_object()
        serializer = PaymentReverseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.payment_reverse(payment_id=payment.pk, reason=serializer.validated_data["reason"], actor=request.user)
        return self._detail_response(payment.pk)


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Money paid back out of payments, usually by a credit note of a paid invoice."""

    serializer_class = RefundOutputSerializer
    filterset_class = RefundFilter
    search_fields = ["reference", "provider_refund_id", "credit_note__number"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return refund_list()
