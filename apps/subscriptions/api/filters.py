import django_filters

from apps.subscriptions.models import Subscription


class SubscriptionFilter(django_filters.FilterSet):
    class Meta:
        model = Subscription
        fields = ["customer", "status", "plan", "plan_version"]
