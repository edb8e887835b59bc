from django.urls import path

from . import budget_views, views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("login/link/", views.login_link_request, name="login-link"),
    path("login/magic/", views.magic_login, name="magic-login"),
    path("logout/", views.portal_logout, name="logout"),
    path("password/", views.password, name="password"),
    path("password/reset/", views.PortalPasswordResetView.as_view(), name="password-reset"),
    path("password/reset/sent/", views.PortalPasswordResetDoneView.as_view(), name="password-reset-done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PortalPasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password/reset/done/", views.PortalPasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("switch/", views.switch_customer, name="switch"),
    path("choose/", views.choose_customer, name="choose"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("language/", views.set_language, name="language"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<str:invoice_id>/", views.invoice_detail, name="invoice"),
    path("invoices/<str:invoice_id>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("invoices/<str:invoice_id>/pay/", views.invoice_pay, name="invoice-pay"),
    path("payments/", views.payment_list, name="payments"),
    path("payments/<str:payment_id>/receipt/", views.payment_receipt, name="payment-receipt"),
    path("credit-notes/<str:credit_note_id>/pdf/", views.credit_note_pdf, name="credit-note-pdf"),
    path("subscriptions/<str:subscription_id>/", views.subscription_detail, name="subscription"),
    path("subscriptions/<str:subscription_id>/change/", views.subscription_change_view, name="subscription-change"),
    path("subscriptions/<str:subscription_id>/cancel/", views.subscription_cancel_view, name="subscription-cancel"),
    path("subscriptions/<str:subscription_id>/resume/", views.subscription_resume_view, name="subscription-resume"),
    path("subscriptions/<str:subscription_id>/pause/", views.subscription_pause_view, name="subscription-pause"),
    path("billing/", views.billing_details, name="billing"),
    path("credits/", views.credits, name="credits"),
    path("budgets/", budget_views.budgets, name="budgets"),
    path("budgets/<int:budget_id>/delete/", budget_views.budget_delete, name="budget-delete"),
    path("payment-methods/", views.payment_methods, name="payment-methods"),
    path("payment-methods/add/", views.payment_method_add, name="payment-method-add"),
    path(
        "payment-methods/<str:payment_method_id>/default/", views.payment_method_default, name="payment-method-default"
    ),
    path("payment-methods/<str:payment_method_id>/remove/", views.payment_method_remove, name="payment-method-remove"),
    path("api-tokens/", views.api_tokens, name="api-tokens"),
    path("api-tokens/<str:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("team/", views.team, name="team"),
    path("team/<int:membership_id>/remove/", views.team_remove, name="team-remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        views.team_invitation_revoke,
        name="team-invitation-revoke",
    ),
]
