from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import CustomerViewSet, SimulatedClockViewSet

router = SimpleRouter(trailing_slash=False)
router.register("customers", CustomerViewSet, basename="customer")
router.register("test-clocks", SimulatedClockViewSet, basename="test-clock")

urlpatterns = [path("", include(router.urls))]
