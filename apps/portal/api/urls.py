from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=False)
router.register("invoices", views.PortalInvoiceViewSet, basename="portal-invoice")
router.register("credit-notes", views.PortalCreditNoteViewSet, basename="portal-credit-note")
router.register("subscriptions", views.PortalSubscriptionViewSet, basename="portal-subscription")

urlpatterns = [
    path("me", views.PortalMeView.as_view(), name="portal-me"),
    path("me/language", views.PortalLanguageView.as_view(), name="portal-language"),
    path("billing-details", views.PortalBillingDetailsView.as_view(), name="portal-billing-details"),
    *router.urls,
]
