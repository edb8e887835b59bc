from django.http import FileResponse
from django.utils.translation import gettext
from djmoney.money import Money
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.billing.services.one_off import (
    OneOffCharge,
    invoice_item_create,
    invoice_item_delete,
    invoice_item_update,
    invoice_one_off_create,
)
from apps.core.api.renderers import PDFRenderer
from apps.core.api.schema import error_responses
from apps.core.api.serializers import ErrorOutputSerializer
from apps.core.errors import NotFound
from apps.core.idempotency import idempotent
from apps.invoices import services
from apps.invoices.selectors import (
    credit_note_list,
    credit_note_list_with_lines,
    invoice_item_list,
    invoice_list,
    invoice_list_with_lines,
    invoices_with_amount_due,
    tax_rate_list,
)
from apps.invoices.services.credit_notes import CreditNoteDraft
from apps.payments.services import credit_note_issue_and_refund, invoice_mark_paid

from .filters import CreditNoteFilter, InvoiceFilter, InvoiceItemFilter, TaxRateFilter
from .serializers import (
    CreditNoteCreateInputSerializer,
    CreditNoteDetailOutputSerializer,
    CreditNoteListOutputSerializer,
    CreditNotePreviewOutputSerializer,
    CreditNoteVoidInputSerializer,
    InvoiceDetailOutputSerializer,
    InvoiceItemCreateInputSerializer,
    InvoiceItemOutputSerializer,
    InvoiceItemUpdateInputSerializer,
    InvoiceListOutputSerializer,
    InvoiceMarkPaidInputSerializer,
    InvoiceMarkUncollectibleInputSerializer,
    InvoiceSendOutputSerializer,
    InvoiceVoidInputSerializer,
    OneOffInvoiceCreateInputSerializer,
    TaxRateCreateInputSerializer,
    TaxRateOutputSerializer,
    TaxRateUpdateInputSerializer,
)

CHANGE_INVOICE = ["invoices.change_invoice"]
ADD_CREDIT_NOTE = ["invoices.add_creditnote"]

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
        "credit_notes": ADD_CREDIT_NOTE,
        "credit_notes_preview": ADD_CREDIT_NOTE,
        "send": CHANGE_INVOICE,
    }

    def get_queryset(self):
        if self.action == "list":
            return invoices_with_amount_due(invoice_list())
        return invoices_with_amount_due(invoice_list_with_lines())

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

    @extend_schema(
        request=OneOffInvoiceCreateInputSerializer,
        responses={201: InvoiceDetailOutputSerializer, **error_responses(400, 409)},
        summary="Issue a one-off invoice",
        description=(
            "An invoice of one-off charges (a setup fee, professional services, a hardware order), outside any "
            "subscription: the same numbering, taxes, PDF, email and payment collection as every invoice. A "
            "draft until the review time is over (`INVOICE_DRAFT_GRACE_HOURS`, at once when it is 0), or issued "
            "at once with `finalize`. It bills exactly these lines (the customer's pending items and credit "
            "balance wait for the next run invoice). Errors name the line (`lines.1.quantity`); nothing is "
            "written unless every line is valid."
        ),
    )
    @idempotent
    def create(self, request):
        serializer = OneOffInvoiceCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice = invoice_one_off_create(
            customer_id=data["customer"], currency=data.get("currency"),
            charges=[_charge(line) for line in data["lines"]], memo=data["memo"], due_on=data["due_on"],
            finalize=data["finalize"], actor=request.user,
        )  # fmt: skip
        response = self._detail_response(invoice.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    def _detail_response(self, invoice_id: int) -> Response:
        invoice = invoices_with_amount_due(invoice_list_with_lines()).get(pk=invoice_id)
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
        """Record a manual payment (a bank transfer) of what is still due on the invoice, which makes it
        paid. Other amounts and methods: `POST /api/v1/payments/`."""
        return self._transition(request, invoice_mark_paid, InvoiceMarkPaidInputSerializer)

    @extend_schema(
        request=InvoiceMarkUncollectibleInputSerializer, responses=_TRANSITION_RESPONSES, summary="Mark uncollectible"
    )
    @action(detail=True, methods=["post"], url_path="mark-uncollectible")
    @idempotent
    def mark_uncollectible(self, request, pk=None):
        """Give up collecting an open invoice (it can still be paid or voided later)."""
        return self._transition(request, services.invoice_mark_uncollectible, InvoiceMarkUncollectibleInputSerializer)

    def _credit_note_arguments(self, request, invoice) -> dict:
        serializer = CreditNoteCreateInputSerializer(data=request.data, context={"currency": invoice.currency})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["lines"] = [
            services.CreditNoteLineRequest(
                invoice_line_id=line["invoice_line"], quantity=line.get("quantity"), amount=line.get("amount")
            )
            for line in data.get("lines", [])
        ]
        return data

    @extend_schema(
        request=CreditNoteCreateInputSerializer,
        responses={201: CreditNoteDetailOutputSerializer, **error_responses(400, 404, 409)},
        summary="Issue a credit note",
        description=(
            "Credit the whole invoice (`full`), some of its lines (by quantity or amount), or a plain amount. "
            "On an unpaid invoice the credit reduces what is due; on a paid one it is refunded (recorded) and/or "
            "credited to the customer's balance. Never more than is left to credit on the invoice."
        ),
    )
    @action(detail=True, methods=["post"], url_path="credit-notes", url_name="credit-notes")
    @idempotent
    def credit_notes(self, request, pk=None):
        invoice = self.get_object()
        arguments = self._credit_note_arguments(request, invoice)
        credit_note = credit_note_issue_and_refund(invoice_id=invoice.pk, actor=request.user, **arguments)
        credit_note = credit_note_list_with_lines().get(pk=credit_note.pk)
        return Response(CreditNoteDetailOutputSerializer(credit_note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CreditNoteCreateInputSerializer,
        responses={200: CreditNotePreviewOutputSerializer, **error_responses(400, 404, 409)},
        summary="Preview a credit note",
        description="What issuing this credit note would do. Nothing is written.",
    )
    @action(detail=True, methods=["post"], url_path="credit-notes/preview", url_name="credit-notes-preview")
    def credit_notes_preview(self, request, pk=None):
        invoice = self.get_object()
        arguments = self._credit_note_arguments(request, invoice)
        arguments.pop("refund_reference", None)
        draft = services.credit_note_preview(invoice_id=invoice.pk, **arguments)
        return Response(CreditNotePreviewOutputSerializer(_preview_data(draft)).data)

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
            raise NotFound(gettext("The PDF bill of this invoice has not been rendered yet."), code="pdf_not_rendered")
        try:
            handle = invoice.pdf.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(
                gettext("The PDF bill of this invoice is missing from storage."), code="pdf_not_rendered"
            ) from exc
        return FileResponse(handle, content_type=PDFRenderer.media_type, filename=f"{invoice.number}.pdf")


def _charge(data: dict) -> OneOffCharge:
    return OneOffCharge(
        quantity=data["quantity"], unit_amount=data["unit_amount"], description=data.get("description", ""),
        product_id=data.get("product"), tax_rate_id=data.get("tax_rate"),
        period_start_at=data.get("period_start_at"), period_end_at=data.get("period_end_at"),
    )  # fmt: skip


_ITEM_FIELD_NAMES = {"product": "product_id", "tax_rate": "tax_rate_id"}


class InvoiceItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invoice items: one-off charges waiting for the customer's next invoice (and the prorations billing
    leaves for a subscription's next one). Staff add, change and delete one-off charges while they are
    pending; once an invoice has taken one it is read-only and names that invoice."""

    filterset_class = InvoiceItemFilter
    search_fields = ["description", "customer__name", "customer__external_id", "invoice__number"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return invoice_item_list()

    def get_serializer_class(self):
        return InvoiceItemOutputSerializer

    def _item_response(self, item_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(InvoiceItemOutputSerializer(invoice_item_list().get(pk=item_id)).data, status=status_code)

    @extend_schema(
        request=InvoiceItemCreateInputSerializer,
        responses={201: InvoiceItemOutputSerializer, **error_responses(400)},
        summary="Add a pending invoice item",
        description=(
            "A one-off charge billed on the customer's next invoice from the billing run (exactly once, whichever "
            "of the customer's subscriptions renews first). Amount = quantity × unit price, rounded once to the "
            "currency's minor unit; taxed at `tax_rate` when given, else at the customer's rate. Prices are in "
            "the customer's currency (another currency is a 400 on `currency`)."
        ),
    )
    @idempotent
    def create(self, request):
        serializer = InvoiceItemCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer_id, currency = data.pop("customer"), data.pop("currency", None)
        item = invoice_item_create(customer_id=customer_id, currency=currency, charge=_charge(data), actor=request.user)
        return self._item_response(item.pk, status.HTTP_201_CREATED)

    @extend_schema(
        request=InvoiceItemUpdateInputSerializer,
        responses={200: InvoiceItemOutputSerializer, **error_responses(400, 404, 409)},
        summary="Change a pending invoice item",
        description="Only one-off charges still pending; a billed one is a 409 `not_editable` naming its invoice.",
    )
    @idempotent
    def partial_update(self, request, pk=None):
        item = self.get_object()
        serializer = InvoiceItemUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        currency = data.pop("currency", None)
        changes = {_ITEM_FIELD_NAMES.get(name, name): value for name, value in data.items()}
        invoice_item_update(item_id=item.pk, changes=changes, currency=currency)
        return self._item_response(item.pk)

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(404, 409)},
        summary="Delete a pending invoice item",
        description="Only one-off charges still pending; a billed one is a 409 `not_editable` naming its invoice.",
    )
    def destroy(self, request, pk=None):
        item = self.get_object()
        invoice_item_delete(item_id=item.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _preview_data(draft: CreditNoteDraft) -> dict:
    currency = draft.currency

    def money(amount):
        return Money(amount, currency)

    return {
        "invoice": draft.invoice.pk,
        "currency": currency,
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "invoice_line_id": line.invoice_line_id,
                "quantity": line.quantity,
                "amount": money(line.amount),
                "explanation": list(line.explanation),
            }  # fmt: skip
            for line in draft.lines
        ],
        "taxes": [
            {
                "name": tax.name,
                "percentage": tax.percentage,
                "inclusive": tax.inclusive,
                "taxable_amount": money(tax.taxable_amount),
                "tax_amount": money(tax.tax_amount),
            }  # fmt: skip
            for tax in draft.taxes
        ],
        **{
            name: money(getattr(draft, name))
            for name in (
                "subtotal",
                "tax_total",
                "total",
                "amount_due_reduction",
                "credit_to_balance",
                "refund_amount",
                "creditable_before",
                "creditable_after",
                "amount_due_before",
                "amount_due_after",
                "creditable_before_credits",
                "balance_returned",
            )
        },  # fmt: skip
        "settles_invoice": draft.settles_invoice,
        "returns_prepaid_credits": draft.returns_prepaid_credits,
    }


class CreditNoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Credit notes, issued from their invoice (`POST /invoices/{id}/credit-notes`); never edited."""

    filterset_class = CreditNoteFilter
    search_fields = ["number", "invoice__number", "customer__name", "customer__external_id"]
    ordering_fields = ["issued_at", "number", "id"]
    ordering = ["-issued_at", "-id"]
    action_permissions = {"void": ["invoices.change_creditnote"]}

    def get_queryset(self):
        if self.action == "list":
            return credit_note_list()
        return credit_note_list_with_lines()

    def get_serializer_class(self):
        if self.action == "list":
            return CreditNoteListOutputSerializer
        return CreditNoteDetailOutputSerializer

    def handle_exception(self, exc):
        if isinstance(getattr(self.request, "accepted_renderer", None), PDFRenderer):
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @extend_schema(
        request=CreditNoteVoidInputSerializer,
        responses={200: CreditNoteDetailOutputSerializer, **error_responses(400, 404, 409)},
        summary="Void a credit note",
        description=(
            "Cancel a credit note issued by mistake, while nothing it did has been used (no refund, its balance "
            "credit still wholly waiting, the invoice it reduced still unpaid)."
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def void(self, request, pk=None):
        credit_note = self.get_object()
        serializer = CreditNoteVoidInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.credit_note_void(credit_note_id=credit_note.pk, actor=request.user, **serializer.validated_data)
        return Response(CreditNoteDetailOutputSerializer(credit_note_list_with_lines().get(pk=credit_note.pk)).data)

    @extend_schema(
        summary="Download the PDF",
        responses={
            (200, PDFRenderer.media_type): OpenApiResponse(OpenApiTypes.BINARY, description="The credit note PDF."),
            (404, JSONRenderer.media_type): OpenApiResponse(
                ErrorOutputSerializer, description="No such credit note, or its PDF is not rendered yet."
            ),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        """The PDF as rendered when the credit note was issued (rendered once, never replaced)."""
        credit_note = self.get_object()
        if not credit_note.pdf:
            raise NotFound(gettext("The PDF of this credit note has not been rendered yet."), code="pdf_not_rendered")
        try:
            handle = credit_note.pdf.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(
                gettext("The PDF of this credit note is missing from storage."), code="pdf_not_rendered"
            ) from exc
        return FileResponse(handle, content_type=PDFRenderer.media_type, filename=f"{credit_note.number}.pdf")


class TaxRateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Taxes charged by customer location: the newest active rate of the customer's region, else of
    their country (none on file: no tax). Exempt and EU reverse-charged customers pay none. A change
    applies to invoices made from then on; issued invoices keep their rate. Rates are deactivated,
    never deleted."""

    serializer_class = TaxRateOutputSerializer
    filterset_class = TaxRateFilter
    search_fields = ["name", "country", "region"]
    ordering_fields = ["country", "region", "name", "created_at", "id"]
    ordering = ["country", "region", "name", "id"]

    def get_queryset(self):
        return tax_rate_list()

    @extend_schema(
        request=TaxRateCreateInputSerializer,
        responses={201: TaxRateOutputSerializer, **error_responses(400, 409)},
    )
    @idempotent
    def create(self, request):
        serializer = TaxRateCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate = services.tax_rate_create(**serializer.validated_data)
        return Response(TaxRateOutputSerializer(rate).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TaxRateUpdateInputSerializer,
        responses={200: TaxRateOutputSerializer, **error_responses(400, 404)},
    )
    def partial_update(self, request, pk=None):
        rate = self.get_object()
        serializer = TaxRateUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rate = services.tax_rate_update(tax_rate_id=rate.pk, **serializer.validated_data)
        return Response(TaxRateOutputSerializer(rate).data)
