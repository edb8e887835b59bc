from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import PaymentViewSet, RefundViewSet

router = SimpleRouter(trailing_slash=False)
router.register("payments", PaymentViewSet, basename="payment")
router.register("refunds", RefundViewSet, basename="refund")

urlpatterns = [path("", include(router.urls))]
