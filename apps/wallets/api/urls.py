from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import CustomerWalletViewSet

router = SimpleRouter(trailing_slash=False)
router.register(r"customers/(?P<customer_pk>[^/.]+)/wallets", CustomerWalletViewSet, basename="customer-wallet")

urlpatterns = [path("", include(router.urls))]
