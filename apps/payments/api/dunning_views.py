from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.api.schema import error_responses
from apps.core.idempotency import idempotent
from apps.payments.dunning import services
from apps.payments.dunning.selectors import dunning_campaign_list

from .dunning_serializers import (
    DunningCampaignCreateInputSerializer,
    DunningCampaignOutputSerializer,
    DunningCampaignUpdateInputSerializer,
)


class DunningCampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dunning campaigns: reminders before and after the due date, card payment retries, a final
    notice and an end action. One is the default; customers may have their own. A change applies to
    dunnings that start afterwards; running ones keep the rules they started with."""

    serializer_class = DunningCampaignOutputSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return dunning_campaign_list()

    @extend_schema(
        request=DunningCampaignCreateInputSerializer,
        responses={201: DunningCampaignOutputSerializer, **error_responses(400)},
    )
    @idempotent
    def create(self, request):
        serializer = DunningCampaignCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.dunning_campaign_create(actor=request.user, **serializer.validated_data)
        return Response(DunningCampaignOutputSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=DunningCampaignUpdateInputSerializer,
        responses={200: DunningCampaignOutputSerializer, **error_responses(400, 404)},
    )
    @idempotent
    def partial_update(self, request, pk=None):
        campaign = self.get_object()
        serializer = DunningCampaignUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        campaign = services.dunning_campaign_update(
            campaign_id=campaign.pk, actor=request.user, **serializer.validated_data
        )
        return Response(DunningCampaignOutputSerializer(campaign).data)

    @extend_schema(responses={204: None, **error_responses(404, 409)})
    def destroy(self, request, pk=None):
        campaign = self.get_object()
        services.dunning_campaign_delete(campaign_id=campaign.pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
