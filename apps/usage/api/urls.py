from django.urls import path

from .views import CustomerUsageView, EventBatchView, EventView

urlpatterns = [
    path("events", EventView.as_view(), name="event-create"),
    path("events/batch", EventBatchView.as_view(), name="event-batch"),
    path("customers/<int:pk>/usage", CustomerUsageView.as_view(), name="customer-usage"),
]
