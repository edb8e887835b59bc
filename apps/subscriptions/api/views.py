from dataclasses import replace

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.billing.constants import ChangeTiming
from apps.billing.services import (
    subscription_cancel,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_start,
    subscription_upcoming_invoice,
)
from apps.catalog.api.serializers import ProgressiveBillingInputSerializer
from apps.core.api.schema import error_responses
from apps.core.errors import NotFound
from apps.core.idempotency import idempotent
from apps.subscriptions.selectors import subscription_list
from apps.subscriptions.services import (
    subscription_cancel_undo,
    subscription_migrate_version,
    subscription_price_override_remove,
    subscription_price_override_set,
    subscription_progressive_billing_remove,
    subscription_progressive_billing_set,
    subscription_scheduled_change_cancel,
)

from .filters import SubscriptionFilter
from .serializers import (
    ChangePreviewOutputSerializer,
    PriceOverrideInputSerializer,
    PriceOverrideOutputSerializer,
    SubscriptionCancelInputSerializer,
    SubscriptionChangeInputSerializer,
    SubscriptionChangeOutputSerializer,
    SubscriptionCreateInputSerializer,
    SubscriptionCreateOutputSerializer,
    SubscriptionMigrateVersionInputSerializer,
    SubscriptionOutputSerializer,
    SubscriptionPauseInputSerializer,
    SubscriptionProgressiveBillingOutputSerializer,
    UpcomingInvoiceOutputSerializer,
    progressive_billing_data,
)


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Customers' subscriptions to plans."""

    serializer_class = SubscriptionOutputSerializer
    filterset_class = SubscriptionFilter
    ordering_fields = ["started_at", "next_billing_at", "created_at", "id"]
    ordering = ["-started_at", "-id"]
    action_permissions = {
        "cancel": ["subscriptions.change_subscription"],
        "cancel_undo": ["subscriptions.change_subscription"],
        "migrate_version": ["subscriptions.change_subscription"],
        "change": ["subscriptions.change_subscription"],
        "preview_change": ["subscriptions.view_subscription"],
        "upcoming_invoice": ["subscriptions.view_subscription", "invoices.view_invoice"],
        "scheduled_change_cancel": ["subscriptions.change_subscription"],
        "pause": ["subscriptions.change_subscription"],
        "resume": ["subscriptions.change_subscription"],
        # Custom prices: set by finance admins (docs/roles.md); read by every role that reads subscriptions.
        "prices": ["subscriptions.view_subscriptionpriceoverride"],
        "price": ["subscriptions.view_subscriptionpriceoverride"],
        "price_set": ["subscriptions.add_subscriptionpriceoverride", "subscriptions.change_subscriptionpriceoverride"],
        "price_remove": ["subscriptions.delete_subscriptionpriceoverride"],
        # Progressive billing thresholds of its own: a commercial term like custom prices (docs/roles.md).
        "progressive_billing": ["subscriptions.view_subscriptionprogressivebilling"],
        "progressive_billing_set": [
            "subscriptions.add_subscriptionprogressivebilling",
            "subscriptions.change_subscriptionprogressivebilling",
        ],
        "progressive_billing_remove": ["subscriptions.delete_subscriptionprogressivebilling"],
    }

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

    def _detail_response(self, subscription_id: int) -> Response:
        return Response(SubscriptionOutputSerializer(subscription_list().get(pk=subscription_id)).data)

    @extend_schema(
        request=SubscriptionCancelInputSerializer,
        responses={200: SubscriptionOutputSerializer, **error_responses(400, 404, 409)},
        summary="Cancel",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        """Cancel now, or at the end of the current period (the default)."""
        subscription = self.get_object()
        serializer = SubscriptionCancelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        subscription_cancel(
            subscription_id=subscription.pk,
            when=ChangeTiming.PERIOD_END if data["at_period_end"] else ChangeTiming.NOW,
            prorate=data["prorate"],
            reason=data["reason"],
            actor=request.user,
        )
        return self._detail_response(subscription.pk)

    @extend_schema(
        request=None,
        responses={200: SubscriptionOutputSerializer, **error_responses(404, 409)},
        summary="Undo a scheduled cancellation",
    )
    @action(detail=True, methods=["post"], url_path="cancel-undo")
    @idempotent
    def cancel_undo(self, request, pk=None):
        """Keep a subscription whose cancellation at period end is scheduled."""
        subscription = self.get_object()
        subscription_cancel_undo(subscription_id=subscription.pk, actor=request.user)
        return self._detail_response(subscription.pk)

    @extend_schema(
        request=SubscriptionMigrateVersionInputSerializer,
        responses={200: SubscriptionOutputSerializer, **error_responses(400, 404, 409)},
        summary="Move to another version of its plan",
    )
    @action(detail=True, methods=["post"], url_path="migrate-version")
    @idempotent
    def migrate_version(self, request, pk=None):
        """End grandfathering: bill the subscription at another version of its plan, now or from the
        next period."""
        subscription = self.get_object()
        serializer = SubscriptionMigrateVersionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription_migrate_version(subscription_id=subscription.pk, actor=request.user, **serializer.validated_data)
        return self._detail_response(subscription.pk)

    @extend_schema(
        request=SubscriptionChangeInputSerializer,
        responses={200: SubscriptionChangeOutputSerializer, **error_responses(400, 404, 409)},
        summary="Change plan or quantity",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None):
        """Upgrade, downgrade or change the quantity, now (with the chosen proration) or at period end."""
        subscription = self.get_object()
        serializer = SubscriptionChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = subscription_change(subscription_id=subscription.pk, actor=request.user, **serializer.validated_data)
        result = replace(result, subscription=subscription_list().get(pk=subscription.pk))
        return Response(SubscriptionChangeOutputSerializer(result).data)

    @extend_schema(
        request=SubscriptionChangeInputSerializer,
        responses={200: ChangePreviewOutputSerializer, **error_responses(400, 404, 409)},
        summary="Preview a change",
    )
    @action(detail=True, methods=["post"], url_path="preview-change")
    def preview_change(self, request, pk=None):
        """The proration lines a change would produce. Changes nothing."""
        subscription = self.get_object()
        serializer = SubscriptionChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = subscription_change_preview(subscription_id=subscription.pk, **serializer.validated_data)
        return Response(ChangePreviewOutputSerializer(preview).data)

    @extend_schema(
        request=None,
        responses={200: UpcomingInvoiceOutputSerializer, **error_responses(400, 404)},
        summary="Upcoming invoice",
    )
    @action(detail=True, methods=["get"], url_path="upcoming-invoice")
    def upcoming_invoice(self, request, pk=None):
        """The invoice the next billing run would issue, every line explained. Changes nothing."""
        subscription = self.get_object()
        return Response(
            UpcomingInvoiceOutputSerializer(subscription_upcoming_invoice(subscription_id=subscription.pk)).data
        )

    @extend_schema(
        request=None,
        responses={200: SubscriptionOutputSerializer, **error_responses(404, 409)},
        summary="Withdraw a scheduled change",
    )
    @action(detail=True, methods=["post"], url_path="scheduled-change/cancel")
    @idempotent
    def scheduled_change_cancel(self, request, pk=None):
        subscription = self.get_object()
        subscription_scheduled_change_cancel(subscription_id=subscription.pk, actor=request.user)
        return self._detail_response(subscription.pk)

    @extend_schema(
        request=SubscriptionPauseInputSerializer,
        responses={200: SubscriptionChangeOutputSerializer, **error_responses(400, 404, 409)},
        summary="Pause",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def pause(self, request, pk=None):
        """Stop billing until resumed; optionally credit the unused time already invoiced."""
        subscription = self.get_object()
        serializer = SubscriptionPauseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = subscription_pause(subscription_id=subscription.pk, actor=request.user, **serializer.validated_data)
        result = replace(result, subscription=subscription_list().get(pk=subscription.pk))
        return Response(SubscriptionChangeOutputSerializer(result).data)

    @extend_schema(
        request=None,
        responses={200: SubscriptionChangeOutputSerializer, **error_responses(404, 409)},
        summary="Resume",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def resume(self, request, pk=None):
        """Start a new period now and invoice it at once (with any credit from the pause)."""
        subscription = self.get_object()
        result = subscription_resume(subscription_id=subscription.pk, actor=request.user)
        result = replace(result, subscription=subscription_list().get(pk=subscription.pk))
        return Response(SubscriptionChangeOutputSerializer(result).data)

    # --- custom prices (docs/credits.md, "Custom prices per subscription") ---------------------------

    def _override(self, subscription, charge_id):
        override = next((o for o in subscription.price_overrides.all() if o.charge_id == int(charge_id)), None)
        if override is None:
            raise NotFound(
                gettext("Subscription #%(subscription)s has no custom price for charge %(charge)s.")
                % {"subscription": subscription.pk, "charge": charge_id}
            )
        return override

    @extend_schema(
        request=None,
        responses={200: PriceOverrideOutputSerializer(many=True), **error_responses(404)},
        summary="Custom prices",
    )
    @action(detail=True, methods=["get"], url_path="prices")
    def prices(self, request, pk=None):
        """The subscription's custom prices: where it differs from its plan version."""
        subscription = self.get_object()
        return Response(PriceOverrideOutputSerializer(subscription.price_overrides.all(), many=True).data)

    @extend_schema(
        request=None,
        responses={200: PriceOverrideOutputSerializer, **error_responses(404)},
        summary="A custom price",
    )
    @action(detail=True, methods=["get"], url_path=r"prices/(?P<charge_id>[0-9]+)")
    def price(self, request, pk=None, charge_id=None):
        """The subscription's custom price for one charge of its plan version, beside the plan's price."""
        subscription = self.get_object()
        return Response(PriceOverrideOutputSerializer(self._override(subscription, charge_id)).data)

    @extend_schema(
        request=PriceOverrideInputSerializer,
        responses={200: PriceOverrideOutputSerializer, **error_responses(400, 404, 409)},
        summary="Set a custom price",
    )
    @price.mapping.put
    def price_set(self, request, pk=None, charge_id=None):
        """Set (or replace) the price this subscription pays for one charge of its plan version, without a
        new plan version: the fields of a catalog price in the charge's price model, validated the same
        way. It applies to everything billed from now on (renewals, previews, prorations, late usage)."""
        subscription = self.get_object()
        serializer = PriceOverrideInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription_price_override_set(
            subscription_id=subscription.pk,
            charge_id=int(charge_id),
            price=serializer.to_price_input(currency=subscription.currency),
            note=serializer.validated_data["note"],
            actor=request.user,
        )
        subscription = subscription_list().get(pk=subscription.pk)
        return Response(PriceOverrideOutputSerializer(self._override(subscription, charge_id)).data)

    @extend_schema(
        request=None,
        responses={200: SubscriptionProgressiveBillingOutputSerializer, **error_responses(404)},
        summary="Progressive billing thresholds",
    )
    @action(detail=True, methods=["get"], url_path="progressive-billing")
    def progressive_billing(self, request, pk=None):
        """The progressive billing thresholds in force for the subscription: its own, or its plan version's
        in its currency (docs/billing-rules.md, "Progressive billing")."""
        return Response(progressive_billing_data(self.get_object()))

    @extend_schema(
        request=ProgressiveBillingInputSerializer,
        responses={200: SubscriptionProgressiveBillingOutputSerializer, **error_responses(400, 404, 409)},
        summary="Set the subscription's own progressive billing thresholds",
    )
    @progressive_billing.mapping.put
    @idempotent
    def progressive_billing_set(self, request, pk=None):
        """Give the subscription thresholds of its own, in its currency, instead of its plan version's:
        fixed `thresholds` and/or a recurring `every`; neither turns progressive billing off for it."""
        subscription = self.get_object()
        serializer = ProgressiveBillingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription_progressive_billing_set(
            subscription_id=subscription.pk,
            amounts=serializer.validated_data["thresholds"],
            every=serializer.validated_data["every"],
            scope=serializer.validated_data["scope"],
            actor=request.user,
        )
        return Response(progressive_billing_data(subscription_list().get(pk=subscription.pk)))

    @extend_schema(
        request=None, responses={204: None, **error_responses(404)}, summary="Remove its own progressive billing"
    )
    @progressive_billing.mapping.delete
    def progressive_billing_remove(self, request, pk=None):
        """Bill the subscription at its plan version's thresholds again."""
        subscription = self.get_object()
        subscription_progressive_billing_remove(subscription_id=subscription.pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None, **error_responses(404)}, summary="Remove a custom price")
    @price.mapping.delete
    def price_remove(self, request, pk=None, charge_id=None):
        """Bill the charge at the plan's price again from now on."""
        subscription = self.get_object()
        subscription_price_override_remove(
            subscription_id=subscription.pk, charge_id=int(charge_id), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
