from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.catalog import services
from apps.catalog.selectors import plan_list, product_list
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent

from .filters import PlanFilter, ProductFilter
from .serializers import (
    PlanCreateInputSerializer,
    PlanOutputSerializer,
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


class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """How a product is sold: a recurring fee per billing interval, priced per currency."""

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
