from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.core.outbox import event_source_register

        from .roles import roles_apply_after_migrate
        from .webhooks import CUSTOMER_EVENT_SOURCE

        event_source_register(CUSTOMER_EVENT_SOURCE)

        # After every migrate, once the last app's permissions exist: new models join the staff roles.
        post_migrate.connect(roles_apply_after_migrate, dispatch_uid="accounts_staff_roles")
