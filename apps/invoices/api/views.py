from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.core.api.renderers import PDFRenderer
from apps.core.api.schema import error_responses
from apps.core.api.serializers import ErrorOutputSerializer
from apps.core.errors import NotFound
from apps.core.idempotency import idempotent
from apps.invoices import services
from apps.invoices.constants import BillingRunTrigger
from apps.invoices.selectors import billing_run_list, invoice_list, invoice_list_with_lines

from .filters import InvoiceFilter
from .serializers import (
    BillingRunOutputSerializer,
    InvoiceDetailOutputSerializer,
    InvoiceListOutputSerializer,
    InvoiceMarkPaidInputSerializer,
    InvoiceMarkUncollectibleInputSerializer,
    InvoiceSendOutputSerializer,
    InvoiceVoidInputSerializer,
)

CHANGE_INVOICE = ["invoices.change_invoice"]

_TRANSITION_RESPONSES = {200: InvoiceDetailOutputSerializer, **error_responses(400, 404, 409)}


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invoices are made by billing and changed only through their lifecycle actions."""

    filterset_class = InvoiceFilter
    search_fields = ["number"]
    ordering_fields = ["created_at", "issued_at", "due_on", "number", "id"]
    ordering = ["-created_at", "-id"]
    action_permissions = {
        "finalize": CHANGE_INVOICE,
        "void": CHANGE_INVOICE,
        "mark_paid": CHANGE_INVOICE,
        "mark_uncollectible": CHANGE_INVOICE,
        "send": CHANGE_INVOICE,
    }

    def get_queryset(self):
        if self.action == "list":
            return invoice_list()
        return invoice_list_with_lines()

    def get_serializer_class(self):
        if self.action == "list":
            return InvoiceListOutputSerializer
        return InvoiceDetailOutputSerializer

    def handle_exception(self, exc):
        # Errors are JSON even when the client asked for the PDF.
        if isinstance(getattr(self.request, "accepted_renderer", None), PDFRenderer):
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def _detail_response(self, invoice_id: int) -> Response:
        invoice = invoice_list_with_lines().get(pk=invoice_id)
        return Response(InvoiceDetailOutputSerializer(invoice).data)

    def _transition(self, request, service, input_serializer_class=None) -> Response:
        """Parse the optional input, call one lifecycle service, answer with the invoice."""
        invoice = self.get_object()
        arguments = {}
        if input_serializer_class is not None:
            serializer = input_serializer_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            arguments = serializer.validated_data
        service(invoice_id=invoice.pk, actor=request.user, **arguments)
        return self._detail_response(invoice.pk)

    @extend_schema(request=None, responses=_TRANSITION_RESPONSES, summary="Finalize a draft")
    @action(detail=True, methods=["post"])
    @idempotent
    def finalize(self, request, pk=None):
        """Issue a draft: freeze its amounts, number it and schedule its PDF."""
        return self._transition(request, services.invoice_finalize)

    @extend_schema(request=InvoiceVoidInputSerializer, responses=_TRANSITION_RESPONSES, summary="Void")
    @action(detail=True, methods=["post"])
    @idempotent
    def void(self, request, pk=None):
        """Cancel the invoice for good; a number it has stays used."""
        return self._transition(request, services.invoice_void, InvoiceVoidInputSerializer)

    @extend_schema(request=InvoiceMarkPaidInputSerializer, responses=_TRANSITION_RESPONSES, summary="Mark paid")
    @action(detail=True, methods=["post"], url_path="mark-paid")
    @idempotent
    def mark_paid(self, request, pk=None):
        """Record a payment received outside the product (e.g. a bank transfer)."""
        return self._transition(request, services.invoice_mark_paid, InvoiceMarkPaidInputSerializer)

    @extend_schema(
        request=InvoiceMarkUncollectibleInputSerializer, responses=_TRANSITION_RESPONSES, summary="Mark uncollectible"
    )
    @action(detail=True, methods=["post"], url_path="mark-uncollectible")
    @idempotent
    def mark_uncollectible(self, request, pk=None):
        """Give up collecting an open invoice (it can still be paid or voided later)."""
        return self._transition(request, services.invoice_mark_uncollectible, InvoiceMarkUncollectibleInputSerializer)

    @extend_schema(
        request=None,
        responses={200: InvoiceSendOutputSerializer, **error_responses(404, 409)},
        summary="Email the bill",
        description=(
            "Email the PDF bill to the customer's email and its billing contacts that receive invoices, even "
            "if it was sent before (each send is recorded in the invoice's history). Refused with 409 for a "
            "draft, a void invoice, or a bill whose PDF is not rendered yet (`pdf_not_rendered`)."
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def send(self, request, pk=None):
        invoice = self.get_object()
        result = services.invoice_email_send(invoice_id=invoice.pk, actor=request.user, resend=True)
        return Response(InvoiceSendOutputSerializer(result.event).data)

    @extend_schema(
        summary="Download the PDF bill",
        responses={
            (200, PDFRenderer.media_type): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF bill."),
            (404, JSONRenderer.media_type): OpenApiResponse(
                ErrorOutputSerializer, description="No such invoice, or its PDF is not rendered yet."
            ),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        """The PDF bill as rendered at finalization (never re-computed from live data)."""
        invoice = self.get_object()
        if not invoice.pdf:
            raise NotFound("The PDF bill of this invoice has not been rendered yet.", code="pdf_not_rendered")
        try:
            handle = invoice.pdf.open("rb")
        except FileNotFoundError as exc:
            raise NotFound("The PDF bill of this invoice is missing from storage.", code="pdf_not_rendered") from exc
        return FileResponse(handle, content_type=PDFRenderer.media_type, filename=f"{invoice.number}.pdf")


class BillingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Passes of the billing engine: what each saw, did and what went wrong."""

    serializer_class = BillingRunOutputSerializer
    ordering_fields = ["started_at", "id"]
    ordering = ["-started_at", "-id"]

    def get_queryset(self):
        return billing_run_list()

    @extend_schema(
        request=None,
        responses={201: BillingRunOutputSerializer, **error_responses(409)},
        summary="Run billing now",
        description=(
            "Invoice every subscription period that has begun and finalize drafts whose review time is over. "
            "Runs synchronously; safe to repeat (nothing is billed twice)."
        ),
    )
    @idempotent(atomic=False)
    def create(self, request):
        run = services.bill_due_subscriptions(trigger=BillingRunTrigger.API, triggered_by=request.user)
        return Response(BillingRunOutputSerializer(run).data, status=status.HTTP_201_CREATED)
