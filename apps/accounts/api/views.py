from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.selectors import customer_list
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent

from .filters import CustomerFilter
from .serializers import CustomerCreateInputSerializer, CustomerOutputSerializer, CustomerUpdateInputSerializer


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
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CustomerUpdateInputSerializer,
        responses={200: CustomerOutputSerializer, **error_responses(400, 404)},
    )
    def partial_update(self, request, pk=None):
        customer = self.get_object()
        serializer = CustomerUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer_id=customer.pk, **serializer.validated_data)
        return Response(CustomerOutputSerializer(customer).data)
