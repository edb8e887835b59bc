from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """Demo sellers, their customers and history, and the demo admin: what `make run` loads."""

    name = "apps.demo"
    label = "demo"
    verbose_name = _("Demo data")
