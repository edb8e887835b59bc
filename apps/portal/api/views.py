"""The customer API (`/api/v1/portal/`): what the portal's pages do, for a customer user's own scripts.

Every queryset and object comes from a customer-scoped selector with the customer of the request's
membership (see `IsCustomerUser`): another customer's id is a 404, like an id that does not exist.
"""

from django.conf import settings
from django.http import FileResponse
from django.utils import translation
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.authentication import UserTokenAuthentication
from apps.accounts.credentials import portal_token_create, portal_token_revoke
from apps.accounts.selectors import customer_memberships_for_user, customer_now, portal_token_list_for_membership
from apps.accounts.services import customer_billing_details_update, customer_membership_language_set
from apps.billing.constants import ChangeTiming
from apps.billing.services import (
    subscription_cancel,
    subscription_change,
    subscription_change_preview,
    subscription_pause,
    subscription_resume,
    subscription_upcoming_invoice,
)
from apps.core.api.renderers import PDFRenderer
from apps.core.api.schema import error_responses
from apps.core.api.serializers import ErrorOutputSerializer
from apps.core.errors import NotFound, ValidationFailed
from apps.core.idempotency import idempotent
from apps.invoices.models import CreditNote, Invoice
from apps.invoices.selectors import (
    credit_note_get_for_customer,
    credit_note_list_for_customer,
    invoice_get_for_customer,
    invoice_list_for_customer,
)
from apps.invoices.services import credit_note_render_pdf, invoice_pdf_ensure
from apps.payments.stripe.api.serializers import (
    CardOutputSerializer,
    PaymentMethodAttachInputSerializer,
    SetupIntentOutputSerializer,
)
from apps.payments.stripe.client import stripe_enabled
from apps.payments.stripe.customers import (
    stripe_payment_method_attach,
    stripe_payment_method_detach,
    stripe_payment_method_set_default,
    stripe_payment_methods_list,
    stripe_setup_intent_create,
)
from apps.payments.stripe.pay_now import invoice_pay_now, payment_client_secret
from apps.portal.constants import CancellationMode
from apps.portal.selectors import (
    portal_allowed_plans,
    portal_change_arguments,
    portal_configuration,
    preview_token_make,
    preview_token_read,
)
from apps.subscriptions.api.serializers import (
    ChangePreviewOutputSerializer,
    EntitlementsOutputSerializer,
    UpcomingInvoiceOutputSerializer,
)
from apps.subscriptions.constants import SubscriptionStatus
from apps.subscriptions.entitlements import customer_entitlements
from apps.subscriptions.models import Subscription
from apps.subscriptions.selectors import subscription_get_for_customer, subscription_list_for_customer
from apps.subscriptions.services import subscription_cancel_undo
from apps.usage.selectors import usage_so_far_for_customer

from .authentication import PortalMisplacedCredentialAuthentication, PortalTokenAuthentication
from .permissions import CUSTOMER_HEADER, IsCustomerUser
from .serializers import (
    PortalBillingDetailsInputSerializer,
    PortalBillingDetailsOutputSerializer,
    PortalCreditNoteOutputSerializer,
    PortalInvoiceDetailOutputSerializer,
    PortalInvoiceOutputSerializer,
    PortalInvoicePayInputSerializer,
    PortalLanguageInputSerializer,
    PortalMeOutputSerializer,
    PortalMetricUsageOutputSerializer,
    PortalPaymentOutputSerializer,
    PortalPlanOutputSerializer,
    PortalSubscriptionCancelInputSerializer,
    PortalSubscriptionChangeInputSerializer,
    PortalSubscriptionOutputSerializer,
    PortalTokenCreatedOutputSerializer,
    PortalTokenInputSerializer,
    PortalTokenOutputSerializer,
)

CUSTOMER_PARAMETER = OpenApiParameter(
    name=CUSTOMER_HEADER,
    type=OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The customer to act for, for a user of several (default: the portal session's, else the first).",
)


class PortalAPIMixin:
    # An `X-Customer-Id` the user does not belong to is 404 (documented on every operation).
    answers_not_found = True
    # A personal token (Bearer bpc_…, made in the portal) acts for its customer only.
    # Last: an API key or a scheme the customer API does not take gets a 401 saying what it takes.
    authentication_classes = [
        PortalTokenAuthentication,
        UserTokenAuthentication,
        SessionAuthentication,
        PortalMisplacedCredentialAuthentication,
    ]
    permission_classes = [IsCustomerUser]
    filter_backends: list = []
    membership = None

    @property
    def customer_id(self) -> int:
        return self.membership.customer_id

    def initial(self, request, *args, **kwargs):
        """Authenticate, find the membership, then speak its language. `PortalMiddleware` picks the
        language before DRF reads a token (`Bearer bpc_…`, `Token …`), and from the session's customer
        rather than `X-Customer-Id`: the membership found here is the one the request acts for."""
        try:
            super().initial(request, *args, **kwargs)
        finally:
            if self.membership is not None:
                translation.activate(self.membership.portal_language)
                request._request.LANGUAGE_CODE = translation.get_language()
                request._request.portal_membership = self.membership  # answers with Content-Language


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalMeView(PortalAPIMixin, APIView):
    @extend_schema(responses={200: PortalMeOutputSerializer, **error_responses(401, 403)}, summary="Who am I")
    def get(self, request):
        """The signed-in customer user, the customer this request acts for and the user's customers."""
        membership = self.membership
        data = {
            "username": request.user.get_username(),
            "email": request.user.email,
            "customer_id": membership.customer_id,
            "role": membership.role,
            "language": membership.portal_language,
            "memberships": customer_memberships_for_user(user=request.user),
        }
        return Response(PortalMeOutputSerializer(data).data)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalEntitlementsView(PortalAPIMixin, APIView):
    @extend_schema(
        responses={200: EntitlementsOutputSerializer, **error_responses(401, 403)}, summary="What my plans include"
    )
    def get(self, request):
        """The features the customer's trialing, active and past-due subscriptions grant, combined
        (docs/entitlements.md)."""
        return Response(EntitlementsOutputSerializer(customer_entitlements(customer_id=self.customer_id)).data)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalLanguageView(PortalAPIMixin, APIView):
    @extend_schema(
        request=PortalLanguageInputSerializer,
        responses={200: PortalMeOutputSerializer, **error_responses(400, 401, 403)},
        summary="Pick the portal language",
    )
    def post(self, request):
        serializer = PortalLanguageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.membership = customer_membership_language_set(
            membership_id=self.membership.pk, language=serializer.validated_data["language"]
        )
        return PortalMeView.get(self, request)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalBillingDetailsView(PortalAPIMixin, APIView):
    action_roles = {"patch": "manage_billing"}

    def initial(self, request, *args, **kwargs):
        self.action = request.method.lower()
        super().initial(request, *args, **kwargs)

    def _customer(self):
        return self.membership.customer.__class__.objects.prefetch_related("billing_contacts").get(pk=self.customer_id)

    @extend_schema(
        responses={200: PortalBillingDetailsOutputSerializer, **error_responses(401, 403)}, summary="Billing details"
    )
    def get(self, request):
        return Response(PortalBillingDetailsOutputSerializer(self._customer()).data)

    @extend_schema(
        request=PortalBillingDetailsInputSerializer,
        responses={200: PortalBillingDetailsOutputSerializer, **error_responses(400, 401, 403)},
        summary="Change billing details",
        description="Address, billing emails (the list replaces them), tax ID (checked) and language.",
    )
    def patch(self, request):
        serializer = PortalBillingDetailsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer_billing_details_update(customer_id=self.customer_id, **data)
        return Response(PortalBillingDetailsOutputSerializer(self._customer()).data)


def _pdf_response(field_file, filename: str):
    try:
        handle = field_file.open("rb")
    except FileNotFoundError as exc:
        raise NotFound(gettext("The PDF is missing from storage."), code="pdf_not_rendered") from exc
    return FileResponse(handle, content_type=PDFRenderer.media_type, filename=filename)


PDF_RESPONSES = {
    (200, PDFRenderer.media_type): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
    (404, JSONRenderer.media_type): OpenApiResponse(ErrorOutputSerializer, description="No such document."),
}


class _PdfErrorsAsJson:
    def handle_exception(self, exc):
        if isinstance(getattr(self.request, "accepted_renderer", None), PDFRenderer):
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalInvoiceViewSet(
    _PdfErrorsAsJson, PortalAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The customer's issued invoices."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return Invoice.objects.none()
        return invoice_list_for_customer(
            customer_id=self.customer_id, status=self.request.query_params.get("status", "")
        )

    def get_serializer_class(self):
        return PortalInvoiceDetailOutputSerializer if self.action == "retrieve" else PortalInvoiceOutputSerializer

    def get_object(self):
        return invoice_get_for_customer(customer_id=self.customer_id, invoice_id=self.kwargs["pk"])

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, description="open, paid, void or uncollectible")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Download the PDF bill", responses=PDF_RESPONSES)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        if not invoice.pdf:
            invoice = invoice_pdf_ensure(invoice_id=invoice.pk)
        return _pdf_response(invoice.pdf, f"{invoice.number}.pdf")


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalCreditNoteViewSet(
    _PdfErrorsAsJson, PortalAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The customer's credit notes."""

    serializer_class = PortalCreditNoteOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CreditNote.objects.none()
        return credit_note_list_for_customer(customer_id=self.customer_id)

    def get_object(self):
        return credit_note_get_for_customer(customer_id=self.customer_id, credit_note_id=self.kwargs["pk"])

    @extend_schema(summary="Download the PDF", responses=PDF_RESPONSES)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        credit_note = self.get_object()
        if not credit_note.pdf:
            credit_note = credit_note_render_pdf(credit_note_id=credit_note.pk)
        return _pdf_response(credit_note.pdf, f"{credit_note.number}.pdf")


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalSubscriptionViewSet(
    PortalAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The customer's subscriptions: read, preview and make changes as the portal configuration allows."""

    serializer_class = PortalSubscriptionOutputSerializer
    action_roles = {
        "change": "manage_billing",
        "preview_change": "manage_billing",
        "cancel": "manage_billing",
        "resume": "manage_billing",
        "pause": "manage_billing",
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return subscription_list_for_customer(customer_id=self.customer_id)

    def get_object(self):
        return subscription_get_for_customer(customer_id=self.customer_id, subscription_id=self.kwargs["pk"])

    def _feature(self, name: str):
        configuration = portal_configuration()
        if not getattr(configuration, name):
            raise NotFound(gettext("This feature is turned off."), code="feature_disabled")
        return configuration

    def _detail(self, subscription_id: int) -> Response:
        subscription = subscription_get_for_customer(customer_id=self.customer_id, subscription_id=subscription_id)
        return Response(PortalSubscriptionOutputSerializer(subscription).data)

    @extend_schema(
        responses={200: UpcomingInvoiceOutputSerializer, **error_responses(400, 404)}, summary="Next invoice"
    )
    @action(detail=True, methods=["get"], url_path="upcoming-invoice")
    def upcoming_invoice(self, request, pk=None):
        subscription = self.get_object()
        upcoming = subscription_upcoming_invoice(subscription_id=subscription.pk)
        return Response(UpcomingInvoiceOutputSerializer(upcoming).data)

    @extend_schema(
        responses={200: PortalMetricUsageOutputSerializer(many=True), **error_responses(404)}, summary="Usage so far"
    )
    @action(detail=True, methods=["get"])
    def usage(self, request, pk=None):
        """Usage of the subscription's metrics in the current period so far, in total and per day."""
        subscription = self.get_object()
        now = customer_now(subscription.customer)
        codes = [charge.metric_code for charge in subscription.plan_version.charges.all() if charge.metric_code]
        usage = usage_so_far_for_customer(
            customer=subscription.customer,
            metric_codes=codes,
            start=subscription.current_period_start_at,
            end=min(now, subscription.current_period_end_at),
        )
        return Response(PortalMetricUsageOutputSerializer(usage, many=True).data)

    @extend_schema(
        responses={200: PortalPlanOutputSerializer(many=True), **error_responses(404)}, summary="Plans to move to"
    )
    @action(detail=True, methods=["get"])
    def plans(self, request, pk=None):
        configuration = self._feature("subscription_update_enabled")
        plans = portal_allowed_plans(configuration=configuration, subscription=self.get_object())
        return Response(PortalPlanOutputSerializer(plans, many=True).data)

    def _change_arguments(self, request):
        configuration = self._feature("subscription_update_enabled")
        subscription = self.get_object()
        serializer = PortalSubscriptionChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return portal_change_arguments(
            configuration=configuration,
            subscription=subscription,
            plan_id=serializer.validated_data["plan"],
            quantity=serializer.validated_data["quantity"],
        )

    @extend_schema(
        request=PortalSubscriptionChangeInputSerializer,
        responses={200: ChangePreviewOutputSerializer, **error_responses(400, 404, 409)},
        summary="Preview a change",
        description="The exact proration lines, and a `preview_token` that makes the change exactly as previewed.",
    )
    @action(detail=True, methods=["post"], url_path="preview-change")
    def preview_change(self, request, pk=None):
        arguments = self._change_arguments(request)
        preview = subscription_change_preview(**arguments)
        data = dict(ChangePreviewOutputSerializer(preview).data)
        data["preview_token"] = preview_token_make(arguments=arguments, effective_at=preview.effective_at)
        return Response(data)

    @extend_schema(
        request=PortalSubscriptionChangeInputSerializer,
        responses={200: PortalSubscriptionOutputSerializer, **error_responses(400, 404, 409)},
        summary="Change plan or quantity",
        description="Send the `preview_token` of a preview to be charged exactly what it showed.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None):
        arguments = self._change_arguments(request)
        effective_at = None
        if request.data.get("preview_token"):
            effective_at = preview_token_read(token=str(request.data["preview_token"]), arguments=arguments)
        subscription_change(**arguments, effective_at=effective_at, actor=request.user)
        return self._detail(arguments["subscription_id"])

    @extend_schema(
        request=PortalSubscriptionCancelInputSerializer,
        responses={200: PortalSubscriptionOutputSerializer, **error_responses(400, 404, 409)},
        summary="Cancel",
        description="At period end or at once, as the portal configuration says.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        configuration = self._feature("subscription_cancel_enabled")
        subscription = self.get_object()
        serializer = PortalSubscriptionCancelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["reason"].strip()
        if configuration.cancellation_reason_required and not reason:
            raise ValidationFailed(
                gettext("Say why you cancel."), fields={"reason": [gettext("This field is required.")]}
            )
        if configuration.cancellation_mode == CancellationMode.IMMEDIATELY:
            subscription_cancel(
                subscription_id=subscription.pk, when=ChangeTiming.NOW, prorate=configuration.cancellation_prorate,
                reason=reason, actor=request.user,
            )  # fmt: skip
        else:
            subscription_cancel(
                subscription_id=subscription.pk, when=ChangeTiming.PERIOD_END, reason=reason, actor=request.user
            )
        return self._detail(subscription.pk)

    @extend_schema(
        request=None,
        responses={200: PortalSubscriptionOutputSerializer, **error_responses(404, 409)},
        summary="Resume",
        description="Undo a scheduled cancellation, or resume a paused subscription.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def resume(self, request, pk=None):
        subscription = self.get_object()
        if subscription.status == SubscriptionStatus.PAUSED:
            subscription_resume(subscription_id=subscription.pk, actor=request.user)
        else:
            subscription_cancel_undo(subscription_id=subscription.pk, actor=request.user)
        return self._detail(subscription.pk)

    @extend_schema(
        request=None, responses={200: PortalSubscriptionOutputSerializer, **error_responses(404, 409)}, summary="Pause"
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def pause(self, request, pk=None):
        self._feature("subscription_pause_enabled")
        subscription = self.get_object()
        subscription_pause(subscription_id=subscription.pk, actor=request.user)
        return self._detail(subscription.pk)


def _cards_feature() -> None:
    if not (portal_configuration().payment_methods_enabled and stripe_enabled()):
        raise NotFound(gettext("Card payments are not available."), code="feature_disabled")


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalPaymentMethodViewSet(PortalAPIMixin, viewsets.ViewSet):
    """The customer's cards (Stripe): list, add through a SetupIntent confirmed by Stripe.js, make
    default, remove. Another customer's card is a 404."""

    action_roles = {
        "list": "manage_billing",
        "create": "manage_billing",
        "setup_intent": "manage_billing",
        "make_default": "manage_billing",
        "destroy": "manage_billing",
    }

    @extend_schema(responses={200: CardOutputSerializer(many=True), **error_responses(401, 403, 404)})
    def list(self, request):
        _cards_feature()
        cards = stripe_payment_methods_list(customer_id=self.customer_id)
        return Response(CardOutputSerializer([card.as_dict() for card in cards], many=True).data)

    @extend_schema(request=None, responses={201: SetupIntentOutputSerializer, **error_responses(401, 403, 404, 503)})
    @idempotent
    def setup_intent(self, request):
        _cards_feature()
        intent = stripe_setup_intent_create(customer_id=self.customer_id)
        data = {**intent, "publishable_key": settings.STRIPE_PUBLISHABLE_KEY}
        return Response(SetupIntentOutputSerializer(data).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PaymentMethodAttachInputSerializer,
        responses={201: CardOutputSerializer, **error_responses(400, 401, 403, 404, 503)},
    )
    @idempotent
    def create(self, request):
        _cards_feature()
        serializer = PaymentMethodAttachInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = stripe_payment_method_attach(
            customer_id=self.customer_id,
            setup_intent_id=serializer.validated_data["setup_intent"],
            make_default=serializer.validated_data["make_default"],
        )
        return Response(CardOutputSerializer(card.as_dict()).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: CardOutputSerializer, **error_responses(401, 403, 404, 503)})
    @idempotent
    def make_default(self, request, pk=None):
        _cards_feature()
        card = stripe_payment_method_set_default(customer_id=self.customer_id, payment_method_id=pk)
        return Response(CardOutputSerializer(card.as_dict()).data)

    @extend_schema(responses={204: None, **error_responses(401, 403, 404, 503)})
    def destroy(self, request, pk=None):
        _cards_feature()
        stripe_payment_method_detach(customer_id=self.customer_id, payment_method_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalInvoicePayView(PortalAPIMixin, APIView):
    action_roles = {"post": "manage_billing"}

    def initial(self, request, *args, **kwargs):
        self.action = request.method.lower()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=PortalInvoicePayInputSerializer,
        responses={200: PortalPaymentOutputSerializer, **error_responses(400, 401, 403, 404, 409, 503)},
        summary="Pay an invoice now",
        description=(
            "Charge what is due on an open invoice to one of the customer's cards (the default one unless "
            "`payment_method` says). The `Idempotency-Key` header (required) makes a retry charge once. A "
            "payment in `requires_action` carries the `client_secret` for Stripe.js `confirmCardPayment`."
        ),
    )
    def post(self, request, invoice_id):
        _cards_feature()
        invoice = invoice_get_for_customer(customer_id=self.customer_id, invoice_id=invoice_id)
        serializer = PortalInvoicePayInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ValidationFailed(
                gettext("Send an Idempotency-Key header."),
                fields={"Idempotency-Key": [gettext("Required to pay an invoice.")]},
            )
        payment = invoice_pay_now(
            customer_id=self.customer_id,
            invoice_id=invoice.pk,
            request_key=f"api-{request.user.pk}-{key}",
            payment_method_id=serializer.validated_data.get("payment_method") or None,
        )
        data = {
            "id": payment.pk,
            "status": payment.status,
            "amount": payment.amount,
            "failure_code": payment.failure_code,
            "failure_message": payment.failure_text,
            "client_secret": payment_client_secret(payment=payment) if payment.status == "requires_action" else "",
        }
        return Response(PortalPaymentOutputSerializer(data).data)


@extend_schema(tags=["portal"], parameters=[CUSTOMER_PARAMETER])
class PortalTokenViewSet(PortalAPIMixin, viewsets.ViewSet):
    """The signed-in user's personal tokens for the customer API, for the customer of the request:
    list, create (the secret is in the answer, once), revoke. A token acts for that customer only, with
    the user's role there. Another user's or customer's token is a 404.

    Creating and revoking need a signed-in session (the portal's): a token may list tokens but not make
    or revoke them, so that a leaked token cannot mint others that outlive its revocation."""

    def _require_session(self, request) -> None:
        if request.auth is not None:  # a token (Bearer bpc_…, Token …); a session carries none
            raise exceptions.PermissionDenied(
                gettext(
                    "Tokens are made and revoked by a signed-in user (the portal's API tokens page, or this API "
                    "with the portal's session), not with a token."
                ),
                code="session_required",
            )

    @extend_schema(responses={200: PortalTokenOutputSerializer(many=True), **error_responses(401, 403)})
    def list(self, request):
        tokens = portal_token_list_for_membership(membership_id=self.membership.pk)
        return Response(PortalTokenOutputSerializer(tokens, many=True).data)

    @extend_schema(
        request=PortalTokenInputSerializer,
        responses={201: PortalTokenCreatedOutputSerializer, **error_responses(400, 401, 403)},
        auth=[{"cookieAuth": []}],
        description=(
            "Needs the portal's signed-in session (its cookie and CSRF token): with a token (Bearer bpc_… or "
            "Token …) the answer is 403 `session_required`. The secret (`token`) is in this answer only, "
            "which is not to be cached (`Cache-Control: no-store`)."
        ),
    )
    def create(self, request):
        self._require_session(request)
        serializer = PortalTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw_token = portal_token_create(membership_id=self.membership.pk, name=serializer.validated_data["name"])
        token.token = raw_token
        return Response(
            PortalTokenCreatedOutputSerializer(token).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},  # the secret must not stay in a cache
        )

    @extend_schema(
        responses={204: None, **error_responses(401, 403, 404)},
        summary="Revoke a token",
        auth=[{"cookieAuth": []}],
        description=(
            "Needs the portal's signed-in session (its cookie and CSRF token): with a token (Bearer bpc_… or "
            "Token …) the answer is 403 `session_required`."
        ),
    )
    def destroy(self, request, pk=None):
        self._require_session(request)
        portal_token_revoke(membership_id=self.membership.pk, token_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
