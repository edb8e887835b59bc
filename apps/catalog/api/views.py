from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.catalog import services
from apps.catalog.selectors import (
    billable_metric_list,
    coupon_list,
    feature_list,
    plan_list,
    plan_version_list,
    price_list,
    product_list,
)
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.subscriptions.selectors import discount_list
from apps.subscriptions.services import coupon_redeem

from .filters import (
    BillableMetricFilter,
    CouponFilter,
    DiscountFilter,
    FeatureFilter,
    PlanFilter,
    PlanVersionFilter,
    PriceFilter,
    ProductFilter,
)
from .serializers import (
    BillableMetricCreateInputSerializer,
    BillableMetricOutputSerializer,
    CouponCreateInputSerializer,
    CouponOutputSerializer,
    DiscountCreateInputSerializer,
    DiscountOutputSerializer,
    FeatureCreateInputSerializer,
    FeatureOutputSerializer,
    FeatureUpdateInputSerializer,
    PlanCreateInputSerializer,
    PlanOutputSerializer,
    PlanVersionCreateInputSerializer,
    PlanVersionFeaturesInputSerializer,
    PlanVersionOutputSerializer,
    PlanVersionProgressiveBillingInputSerializer,
    PlanVersionUpdateInputSerializer,
    PriceOutputSerializer,
    PriceQuoteInputSerializer,
    PriceQuoteOutputSerializer,
    ProductCreateInputSerializer,
    ProductOutputSerializer,
)


class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What the seller sells; plans price it."""

    serializer_class = ProductOutputSerializer
    filterset_class = ProductFilter
    search_fields = ["code", "name"]
    ordering_fields = ["name", "code", "created_at", "id"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return product_list()

    @extend_schema(
        request=ProductCreateInputSerializer,
        responses={201: ProductOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = ProductCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(**serializer.validated_data)
        return Response(ProductOutputSerializer(product).data, status=status.HTTP_201_CREATED)


class BillableMetricViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What usage charges count: an aggregation (count, sum, max, unique count, latest) of a period's
    usage events with the metric's code, optionally filtered and grouped by event properties."""

    serializer_class = BillableMetricOutputSerializer
    filterset_class = BillableMetricFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at", "id"]
    ordering = ["code", "id"]

    def get_queryset(self):
        return billable_metric_list()

    @extend_schema(
        request=BillableMetricCreateInputSerializer,
        responses={201: BillableMetricOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = BillableMetricCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        metric = services.billable_metric_create(**serializer.validated_data)
        return Response(BillableMetricOutputSerializer(metric).data, status=status.HTTP_201_CREATED)


class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """How a product is sold: a billing interval and versions of its charges and prices (new
    subscribers get the latest version)."""

    serializer_class = PlanOutputSerializer
    filterset_class = PlanFilter
    search_fields = ["code", "name"]
    ordering_fields = ["name", "code", "created_at", "id"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return plan_list()

    @extend_schema(
        request=PlanCreateInputSerializer,
        responses={201: PlanOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = PlanCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = services.plan_create(**serializer.validated_data)
        return Response(PlanOutputSerializer(plan_list().get(pk=plan.pk)).data, status=status.HTTP_201_CREATED)


class PlanVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Editions of a plan's charges and prices. A version with subscribers is immutable (409
    `not_editable`): create a new version instead; subscribers keep theirs until migrated."""

    serializer_class = PlanVersionOutputSerializer
    filterset_class = PlanVersionFilter
    ordering_fields = ["number", "created_at", "id"]
    ordering = ["plan", "-number"]
    action_permissions = {
        "copy": ["catalog.add_planversion"],
        "features": ["catalog.change_planversion"],
        "progressive_billing": ["catalog.change_planversion"],
    }

    def get_queryset(self):
        return plan_version_list()

    @extend_schema(
        request=PlanVersionCreateInputSerializer,
        responses={201: PlanVersionOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = PlanVersionCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.plan_version_create(**serializer.validated_data)
        return Response(
            PlanVersionOutputSerializer(plan_version_list().get(pk=version.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=PlanVersionUpdateInputSerializer,
        responses={200: PlanVersionOutputSerializer, **error_responses(400, 404, 409)},
        description="Replace the charges of a version nobody is subscribed to yet.",
    )
    @idempotent
    def update(self, request, pk=None):
        version = self.get_object()
        serializer = PlanVersionUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.plan_version_replace_charges(version=version, **serializer.validated_data)
        return Response(PlanVersionOutputSerializer(plan_version_list().get(pk=version.pk)).data)

    @extend_schema(
        request=None,
        responses={201: PlanVersionOutputSerializer, **error_responses(400, 404, 409)},
        description="Start a new version of the plan from this one (same charges and prices).",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def copy(self, request, pk=None):
        version = services.plan_version_copy(version=self.get_object())
        return Response(
            PlanVersionOutputSerializer(plan_version_list().get(pk=version.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=PlanVersionFeaturesInputSerializer,
        responses={200: PlanVersionOutputSerializer, **error_responses(400, 404, 409)},
        description="Replace what a version grants (docs/entitlements.md). Like its prices, a version's grants are "
        "fixed once it has subscribers (409 `not_editable`): copy it, grant more, and migrate subscribers.",
    )
    @action(detail=True, methods=["put"])
    @idempotent
    def features(self, request, pk=None):
        version = self.get_object()
        serializer = PlanVersionFeaturesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.plan_version_features_set(version=version, grants=serializer.validated_data["features"])
        return Response(PlanVersionOutputSerializer(plan_version_list().get(pk=version.pk)).data)

    @extend_schema(
        request=PlanVersionProgressiveBillingInputSerializer,
        responses={200: PlanVersionOutputSerializer, **error_responses(400, 404, 409)},
        summary="Set progressive billing thresholds",
        description="Set the version's progressive billing thresholds in one currency (docs/billing-rules.md, "
        '"Progressive billing"): fixed `thresholds` and/or a recurring `every`; neither removes them; `scope` '
        '"lifetime" measures them on the usage since the subscription started instead of the period\'s. Part of '
        "the version's terms: fixed once it has subscribers (409 `not_editable`); a subscription can have its own.",
    )
    @action(detail=True, methods=["put"], url_path="progressive-billing")
    @idempotent
    def progressive_billing(self, request, pk=None):
        version = self.get_object()
        serializer = PlanVersionProgressiveBillingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.plan_version_progressive_billing_set(
            version=version, currency=data["currency"].upper(), amounts=data["thresholds"], every=data["every"],
            scope=data["scope"],
        )  # fmt: skip
        return Response(PlanVersionOutputSerializer(plan_version_list().get(pk=version.pk)).data)


class FeatureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What plans can entitle customers to: on/off, a limit (a whole number or "unlimited") or a value
    (text). Plan versions grant them (`PUT plan-versions/{id}/features`); what a customer is entitled to
    is `GET customers/{id}/entitlements`."""

    serializer_class = FeatureOutputSerializer
    filterset_class = FeatureFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at", "id"]
    ordering = ["code", "id"]

    def get_queryset(self):
        return feature_list()

    @extend_schema(
        request=FeatureCreateInputSerializer,
        responses={201: FeatureOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = FeatureCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feature = services.feature_create(**serializer.validated_data)
        return Response(FeatureOutputSerializer(feature).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=FeatureUpdateInputSerializer,
        responses={200: FeatureOutputSerializer, **error_responses(400, 404)},
    )
    def partial_update(self, request, pk=None):
        feature = self.get_object()
        serializer = FeatureUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        feature = services.feature_update(feature_id=feature.pk, **serializer.validated_data)
        return Response(FeatureOutputSerializer(feature).data)


class PriceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A charge's price in one currency (created with its plan version)."""

    serializer_class = PriceOutputSerializer
    filterset_class = PriceFilter
    ordering_fields = ["id", "currency"]
    ordering = ["id"]
    action_permissions = {"quote": ["catalog.view_price"]}

    def get_queryset(self):
        return price_list()

    @extend_schema(
        request=PriceQuoteInputSerializer,
        responses={200: PriceQuoteOutputSerializer, **error_responses(400, 404)},
        description="Price a quantity (or, for percentage prices, a list of transaction amounts) and explain "
        "the amount line by line. Changes nothing.",
    )
    @action(detail=True, methods=["post"])
    def quote(self, request, pk=None):
        price = self.get_object()
        serializer = PriceQuoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quantity = data["quantity"]
        if price.charge.price_model == "percentage":
            quantity = type(quantity)(len(data["transactions"]))
        quote = services.price_quote(price=price, quantity=quantity, transactions=data["transactions"])
        return Response(PriceQuoteOutputSerializer(quote).data)


class CouponViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Discount offers: a percentage or a fixed amount per currency off, once, for a number of periods
    or forever, for every product or some. Archive a coupon to stop new redemptions."""

    serializer_class = CouponOutputSerializer
    filterset_class = CouponFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at", "id"]
    ordering = ["-created_at", "-id"]
    action_permissions = {"archive": ["catalog.change_coupon"]}

    def get_queryset(self):
        return coupon_list()

    @extend_schema(
        request=CouponCreateInputSerializer,
        responses={201: CouponOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = CouponCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = services.coupon_create(**serializer.validated_data)
        return Response(CouponOutputSerializer(coupon_list().get(pk=coupon.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: CouponOutputSerializer, **error_responses(404, 409)},
        description="Stop the coupon from being redeemed. Discounts already given keep applying.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def archive(self, request, pk=None):
        coupon = services.coupon_archive(coupon=self.get_object())
        return Response(CouponOutputSerializer(coupon_list().get(pk=coupon.pk)).data)


class DiscountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Redeemed coupons: each discounts the invoices of one customer or one subscription until its
    duration is used up."""

    serializer_class = DiscountOutputSerializer
    filterset_class = DiscountFilter
    ordering_fields = ["starts_at", "id"]
    ordering = ["-starts_at", "-id"]

    def get_queryset(self):
        return discount_list()

    @extend_schema(
        request=DiscountCreateInputSerializer,
        responses={201: DiscountOutputSerializer, **error_responses(400, 409)},
        description="Redeem a coupon for a customer or a subscription (give exactly one).",
    )
    @idempotent
    def create(self, request):
        serializer = DiscountCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        discount = coupon_redeem(**serializer.validated_data, actor=request.user)
        return Response(
            DiscountOutputSerializer(discount_list().get(pk=discount.pk)).data, status=status.HTTP_201_CREATED
        )
