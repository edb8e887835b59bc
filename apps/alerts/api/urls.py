from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import AlertCrossingViewSet, AlertViewSet, CustomerSpendStatusView

router = SimpleRouter(trailing_slash=False)
router.register("alerts", AlertViewSet, basename="alert")
router.register("alert-crossings", AlertCrossingViewSet, basename="alert-crossing")

urlpatterns = [
    path("customers/<int:pk>/spend-status", CustomerSpendStatusView.as_view(), name="customer-spend-status"),
    path("", include(router.urls)),
]
