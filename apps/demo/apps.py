from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo sellers, their customers and history, and the demo admin: what `make run` loads."""

    name = "apps.demo"
    label = "demo"
    verbose_name = "Demo data"
