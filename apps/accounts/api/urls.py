from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import CustomerViewSet, TestClockViewSet

router = SimpleRouter(trailing_slash=False)
router.register("customers", CustomerViewSet, basename="customer")
router.register("test-clocks", TestClockViewSet, basename="test-clock")

urlpatterns = [path("", include(router.urls))]
