from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import CreditNoteViewSet, InvoiceItemViewSet, InvoiceViewSet, TaxRateViewSet

router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("invoice-items", InvoiceItemViewSet, basename="invoice-item")
router.register("credit-notes", CreditNoteViewSet, basename="credit-note")
router.register("tax-rates", TaxRateViewSet, basename="tax-rate")

urlpatterns = [path("", include(router.urls))]
