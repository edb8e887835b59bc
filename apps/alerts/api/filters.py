import django_filters

from ..constants import AlertKind, AlertOrigin
from ..models import Alert, AlertCrossing


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    origin = django_filters.ChoiceFilter(
        choices=AlertOrigin.choices, help_text="`customer`: budgets set in the portal."
    )
    metric = django_filters.CharFilter(field_name="metric__code", help_text="A metric code.")

    class Meta:
        model = Alert
        fields = ["customer", "subscription", "kind", "origin", "metric", "is_active", "is_hard_limit"]


class AlertCrossingFilter(django_filters.FilterSet):
    class Meta:
        model = AlertCrossing
        fields = ["customer", "alert", "is_limit"]
