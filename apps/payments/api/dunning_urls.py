from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .dunning_views import DunningCampaignViewSet

router = SimpleRouter(trailing_slash=False)
router.register("dunning-campaigns", DunningCampaignViewSet, basename="dunning-campaign")

urlpatterns = [path("", include(router.urls))]
