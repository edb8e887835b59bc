"""Staff API for a customer's cards: `/api/v1/customers/{id}/payment-methods…`.

Adding a card takes two calls around Stripe.js: `POST …/payment-methods/setup-intent` gives the
browser a client secret, the browser confirms it with the card, then `POST …/payment-methods` with
the SetupIntent id records the card on the customer.
"""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from apps.accounts.permissions import CUSTOMER_BILLING_PERMISSION
from apps.accounts.selectors import customer_list
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.invoices.selectors import invoice_list

from ..collection import invoice_charge_now
from ..customers import (
    stripe_payment_method_attach,
    stripe_payment_method_detach,
    stripe_payment_method_set_default,
    stripe_payment_methods_list,
    stripe_setup_intent_create,
)
from .serializers import (
    CardChargeOutputSerializer,
    CardOutputSerializer,
    PaymentMethodAttachInputSerializer,
    SetupIntentOutputSerializer,
)


class CustomerPaymentMethodViewSet(viewsets.ViewSet):
    """A customer's cards (Stripe): list, add through a SetupIntent, make default, remove."""

    # A customer's cards are a money matter: changing them needs the billing permission, not only
    # the customer's (apps/accounts/permissions.py).
    action_permissions = {
        "list": ["accounts.view_customer"],
        "create": [CUSTOMER_BILLING_PERMISSION],
        "setup_intent": [CUSTOMER_BILLING_PERMISSION],
        "make_default": [CUSTOMER_BILLING_PERMISSION],
        "destroy": [CUSTOMER_BILLING_PERMISSION],
    }

    def _customer_id(self) -> int:
        return int(get_object_or_404(customer_list(), pk=self.kwargs["customer_pk"]).pk)

    @extend_schema(responses={200: CardOutputSerializer(many=True), **error_responses(404, 409)})
    def list(self, request, customer_pk=None):
        cards = stripe_payment_methods_list(customer_id=self._customer_id())
        return Response(CardOutputSerializer([card.as_dict() for card in cards], many=True).data)

    @extend_schema(request=None, responses={201: SetupIntentOutputSerializer, **error_responses(404, 409, 503)})
    @idempotent
    def setup_intent(self, request, customer_pk=None):
        intent = stripe_setup_intent_create(customer_id=self._customer_id())
        data = {**intent, "publishable_key": settings.STRIPE_PUBLISHABLE_KEY}
        return Response(SetupIntentOutputSerializer(data).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PaymentMethodAttachInputSerializer,
        responses={201: CardOutputSerializer, **error_responses(400, 402, 404, 409, 503)},
    )
    @idempotent
    def create(self, request, customer_pk=None):
        customer_id = self._customer_id()
        serializer = PaymentMethodAttachInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = stripe_payment_method_attach(
            customer_id=customer_id,
            setup_intent_id=serializer.validated_data["setup_intent"],
            make_default=serializer.validated_data["make_default"],
        )
        return Response(CardOutputSerializer(card.as_dict()).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: CardOutputSerializer, **error_responses(404, 409, 503)})
    @idempotent
    def make_default(self, request, customer_pk=None, pk=None):
        card = stripe_payment_method_set_default(customer_id=self._customer_id(), payment_method_id=pk)
        return Response(CardOutputSerializer(card.as_dict()).data)

    @extend_schema(responses={204: None, **error_responses(404, 409, 503)})
    def destroy(self, request, customer_pk=None, pk=None):
        stripe_payment_method_detach(customer_id=self._customer_id(), payment_method_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvoiceCardChargeViewSet(viewsets.ViewSet):
    """Charge an open invoice to the customer's default card now (a new collection attempt)."""

    action_permissions = {"charge": ["invoices.view_invoice", "invoices.change_invoice"]}

    @extend_schema(
        request=None,
        responses={201: CardChargeOutputSerializer, **error_responses(404, 409, 503)},
        summary="Charge the card now",
    )
    @idempotent(atomic=False)  # the attempt's payment is committed before Stripe is called
    def charge(self, request, invoice_pk=None):
        """The attempt's payment: `succeeded`, `failed` (with the decline), or `requires_action` (the
        customer was emailed the pay link); an earlier attempt left pending that Stripe did charge
        (found there, nothing more charged). 409 with a field error on `invoice` when the invoice is not
        open or nothing is due (checked before anything is sent), or while an earlier attempt is still
        in progress."""
        invoice = get_object_or_404(invoice_list(), pk=invoice_pk)
        payment = invoice_charge_now(invoice_id=invoice.pk)
        return Response(CardChargeOutputSerializer(payment).data, status=status.HTTP_201_CREATED)
