from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Every amount reads one way wherever it is shown (the admin's money fields, templates, emails):
        # django-money would otherwise print babel's locale format ("€75.00") next to ours ("75.00 EUR").
        from djmoney.money import Money

        from .money_format import money_text

        def __str__(self: Money) -> str:  # noqa: N807
            return money_text(self.amount, str(self.currency))

        Money.__str__ = __str__  # type: ignore[method-assign, assignment]
