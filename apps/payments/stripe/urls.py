"""Stripe's webhook endpoint, under the URL name dj-stripe's own code reverses
(`djstripe:djstripe_webhook_by_uuid`), served by our view (`views.stripe_webhook_receive`)."""

from django.urls import path

from .views import stripe_webhook_receive

app_name = "djstripe"

urlpatterns = [
    path("webhook/<uuid:uuid>/", stripe_webhook_receive, name="djstripe_webhook_by_uuid"),
]
