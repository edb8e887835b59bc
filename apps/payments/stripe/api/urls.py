from django.urls import path

from .views import CustomerPaymentMethodViewSet, InvoiceCardChargeViewSet

PAYMENT_METHODS = "customers/<int:customer_pk>/payment-methods"

urlpatterns = [
    path(
        PAYMENT_METHODS,
        CustomerPaymentMethodViewSet.as_view({"get": "list", "post": "create"}),
        name="customer-payment-method-list",
    ),
    path(
        f"{PAYMENT_METHODS}/setup-intent",
        CustomerPaymentMethodViewSet.as_view({"post": "setup_intent"}),
        name="customer-payment-method-setup-intent",
    ),
    path(
        f"{PAYMENT_METHODS}/<str:pk>",
        CustomerPaymentMethodViewSet.as_view({"delete": "destroy"}),
        name="customer-payment-method-detail",
    ),
    path(
        f"{PAYMENT_METHODS}/<str:pk>/default",
        CustomerPaymentMethodViewSet.as_view({"post": "make_default"}),
        name="customer-payment-method-default",
    ),
    path(
        "invoices/<int:invoice_pk>/charge",
        InvoiceCardChargeViewSet.as_view({"post": "charge"}),
        name="invoice-card-charge",
    ),
]
