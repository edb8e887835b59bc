from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.accounts.models import Customer
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent

from ..constants import PurchaseTrigger
from ..selectors import wallet_entries, wallet_list_for_customer
from ..services.ledger import wallet_create, wallet_grant
from ..services.purchases import wallet_purchase
from .serializers import (
    CreditPurchaseOutputSerializer,
    WalletCreateInputSerializer,
    WalletEntryOutputSerializer,
    WalletGrantInputSerializer,
    WalletOutputSerializer,
    WalletPurchaseInputSerializer,
)


class CustomerWalletViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A customer's wallets of prepaid credits, their balance and ledger (docs/credits.md)."""

    serializer_class = WalletOutputSerializer
    ordering = ["priority", "id"]
    ordering_fields = ["priority", "id", "name"]
    action_permissions = {
        "ledger": ["wallets.view_wallet"],
        "grant": ["wallets.grant_credits"],
        "purchase": ["wallets.purchase_credits"],
    }

    def _customer(self) -> Customer:
        customer = Customer.objects.filter(pk=self.kwargs["customer_pk"]).first() if str(
            self.kwargs.get("customer_pk", "")
        ).isdigit() else None  # fmt: skip
        if customer is None:
            raise NotFound(gettext("No such customer."))
        return customer

    def get_queryset(self):
        # No lookup here: the permission check reads the queryset's model before anything is looked up.
        customer_pk = str(self.kwargs.get("customer_pk", ""))
        customer_id = int(customer_pk) if customer_pk.isdigit() else None
        return wallet_list_for_customer(customer_id=customer_id).select_related("customer")

    def list(self, request, *args, **kwargs):
        self._customer()  # 404 for a customer that does not exist
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=WalletCreateInputSerializer, responses={201: WalletOutputSerializer, **error_responses(400, 404)}
    )
    @idempotent
    def create(self, request, customer_pk=None):
        customer = self._customer()
        serializer = WalletCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wallet = wallet_create(customer=customer, **serializer.validated_data)
        return Response(
            WalletOutputSerializer(self.get_queryset().get(pk=wallet.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses={200: WalletEntryOutputSerializer(many=True), **error_responses(404)}, summary="Ledger")
    @action(detail=True, methods=["get"])
    def ledger(self, request, customer_pk=None, pk=None):
        """Every entry of the wallet's ledger, newest first (paginated)."""
        wallet = self.get_object()
        page = self.paginate_queryset(wallet_entries(wallet=wallet))
        return self.get_paginated_response(WalletEntryOutputSerializer(page, many=True).data)

    @extend_schema(
        request=WalletGrantInputSerializer,
        responses={201: WalletEntryOutputSerializer, **error_responses(400, 404)},
        summary="Grant free credits",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def grant(self, request, customer_pk=None, pk=None):
        """Free credits (a promotion, goodwill), with a reason and an optional expiry day."""
        wallet = self.get_object()
        serializer = WalletGrantInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = wallet_grant(wallet_id=wallet.pk, actor=request.user, **serializer.validated_data)
        return Response(WalletEntryOutputSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=WalletPurchaseInputSerializer,
        responses={201: CreditPurchaseOutputSerializer, **error_responses(400, 404)},
        summary="Buy credits",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def purchase(self, request, customer_pk=None, pk=None):
        """Issue an invoice for credits at the wallet's rate; they are granted once it is paid."""
        wallet = self.get_object()
        serializer = WalletPurchaseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        purchase = wallet_purchase(
            wallet_id=wallet.pk, trigger=PurchaseTrigger.API, actor=request.user, **serializer.validated_data
        )
        return Response(CreditPurchaseOutputSerializer(purchase).data, status=status.HTTP_201_CREATED)
