from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from apps.backoffice.views import staff_language
from apps.core.views import api_not_found, healthz, not_found
from apps.reports.views import finance_dashboard, report_export

admin.site.site_header = _("Billing Portal")
admin.site.site_title = _("Billing Portal admin")
admin.site.index_title = _("Finance administration")
admin.site.enable_nav_sidebar = False  # the lists are wide; the breadcrumbs and index suffice

# dj-stripe registers ~40 models of its own. Payments are not collected through Stripe yet, so keep
# them out of the finance admin rather than drown our own pages in them.
for _model in [model for model in admin.site._registry if model._meta.app_label == "djstripe"]:
    admin.site.unregister(_model)


api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.catalog.api.urls")),
    path("", include("apps.subscriptions.api.urls")),
    path("", include("apps.invoices.api.urls")),
    path("", include("apps.wallets.api.urls")),
    path("", include("apps.billing.api.urls")),
    path("", include("apps.payments.api.urls")),
    path("", include("apps.usage.api.urls")),
    path("", include("apps.payments.stripe.api.urls")),
    path("", include("apps.payments.api.dunning_urls")),
    path("", include("apps.webhooks.api.urls")),
    path("", include("apps.alerts.api.urls")),
    path("portal/", include("apps.portal.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    # The finance dashboard is the admin's landing page (it shows the app list too); its CSV exports.
    path("admin/", admin.site.admin_view(finance_dashboard), name="finance-dashboard"),
    path("admin/reports/export/<slug:report>.csv", admin.site.admin_view(report_export), name="reports-export"),
    path("admin/language/", admin.site.admin_view(staff_language), name="staff-language"),
    path("admin/", admin.site.urls),
    path("portal/", include("apps.portal.urls")),
    path("nested_admin/", include("nested_admin.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The schema and the docs are public (they hold no data). The split view serves Swagger UI's
    # start-up script as a file, so the docs run under the Content Security Policy (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Stripe's webhooks: our view checks size and signature before dj-stripe stores anything.
    path("stripe/", include("apps.payments.stripe.urls", namespace="djstripe")),
    # Any other address under /api/ is the API's JSON 404, also while DEBUG shows Django's own pages.
    re_path(r"^api/", api_not_found),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# A URL that matches nothing answers in the API's error shape under /api/ (HTML elsewhere).
handler404 = not_found
