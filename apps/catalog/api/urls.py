from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import PlanViewSet, ProductViewSet

router = SimpleRouter(trailing_slash=False)
router.register("products", ProductViewSet, basename="product")
router.register("plans", PlanViewSet, basename="plan")

urlpatterns = [path("", include(router.urls))]
