from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.billing.services import bill_due_subscriptions
from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.invoices.constants import BillingRunTrigger
from apps.invoices.selectors import billing_run_list

from .serializers import BillingRunOutputSerializer


class BillingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Passes of the billing engine: what each saw, did and what went wrong."""

    serializer_class = BillingRunOutputSerializer
    ordering_fields = ["started_at", "id"]
    ordering = ["-started_at", "-id"]

    def get_queryset(self):
        return billing_run_list()

    @extend_schema(
        request=None,
        responses={201: BillingRunOutputSerializer, 202: BillingRunOutputSerializer, **error_responses(409)},
        summary="Run billing now",
        description=(
            "Invoice every subscription period that has begun and finalize drafts whose review time is over. "
            "Where the run is handed to the billing workers (production), the answer is 202 with the running "
            "run: follow its progress with GET /billing-runs/{id}. Otherwise it runs to the end first (201). "
            "Safe to repeat: nothing is billed twice."
        ),
    )
    @idempotent(atomic=False)
    def create(self, request):
        run = bill_due_subscriptions(
            trigger=BillingRunTrigger.API, triggered_by=request.user, fan_out=settings.BILLING_RUN_FAN_OUT
        )
        finished = run.finished_at is not None
        return Response(
            BillingRunOutputSerializer(run).data,
            status=status.HTTP_201_CREATED if finished else status.HTTP_202_ACCEPTED,
        )
