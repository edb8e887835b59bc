from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from . import registration

        registration.register_audited_models()
        registration.connect_signals()
        registration.link_admin_history()
