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
    path("entitlements", views.PortalEntitlementsView.as_view(), name="portal-entitlements"),
    path("billing-details", views.PortalBillingDetailsView.as_view(), name="portal-billing-details"),
    path("invoices/<str:invoice_id>/pay", views.PortalInvoicePayView.as_view(), name="portal-invoice-pay"),
    path(
        "payment-methods",
        views.PortalPaymentMethodViewSet.as_view({"get": "list", "post": "create"}),
        name="portal-payment-method-list",
    ),
    path(
        "payment-methods/setup-intent",
        views.PortalPaymentMethodViewSet.as_view({"post": "setup_intent"}),
        name="portal-payment-method-setup-intent",
    ),
    path(
        "payment-methods/<str:pk>",
        views.PortalPaymentMethodViewSet.as_view({"delete": "destroy"}),
        name="portal-payment-method-detail",
    ),
    path(
        "payment-methods/<str:pk>/default",
        views.PortalPaymentMethodViewSet.as_view({"post": "make_default"}),
        name="portal-payment-method-default",
    ),
    path("tokens", views.PortalTokenViewSet.as_view({"get": "list", "post": "create"}), name="portal-token-list"),
    path("tokens/<str:pk>", views.PortalTokenViewSet.as_view({"delete": "destroy"}), name="portal-token-detail"),
    *router.urls,
]
