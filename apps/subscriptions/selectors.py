from django.db.models import QuerySet

from .models import Subscription


def subscription_list() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("plan_version")
