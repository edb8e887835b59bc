from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import PortalConfiguration


@admin.register(PortalConfiguration)
class PortalConfigurationAdmin(admin.ModelAdmin):
    """The customer portal's settings (one row), like Stripe's portal configuration."""

    filter_horizontal = ["allowed_plans"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (
            _("Features"),
            {
                "fields": [
                    "invoice_history_enabled",
                    "billing_details_enabled",
                    "payment_methods_enabled",
                    "team_enabled",
                ]
            },
        ),
        (
            _("Plan and quantity changes"),
            {
                "fields": [
                    "subscription_update_enabled",
                    "allowed_plans",
                    "quantity_update_enabled",
                    "proration_behavior",
                ]
            },
        ),
        (
            _("Cancellation and pause"),
            {
                "fields": [
                    "subscription_cancel_enabled",
                    "cancellation_mode",
                    "cancellation_prorate",
                    "cancellation_reasons",
                    "cancellation_reason_required",
                    "subscription_pause_enabled",
                ]
            },
        ),
        (_("Branding"), {"fields": ["business_name", "logo_url", "accent_colour", "terms_url", "privacy_url"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not PortalConfiguration.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        """Straight to the one configuration (created with the defaults if there is none yet)."""
        from django.shortcuts import redirect

        from .selectors import portal_configuration

        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        return redirect("admin:portal_portalconfiguration_change", portal_configuration().pk)
