from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import SubscriptionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("subscriptions", SubscriptionViewSet, basename="subscription")

urlpatterns = [path("", include(router.urls))]
