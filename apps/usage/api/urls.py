from django.urls import path

from .views import CustomerUsageView, EventBatchView, EventReplaceView, EventView, EventVoidView

urlpatterns = [
    path("events", EventView.as_view(), name="event-create"),
    path("events/batch", EventBatchView.as_view(), name="event-batch"),
    path("events/<str:transaction_id>/void", EventVoidView.as_view(), name="event-void"),
    path("events/<str:transaction_id>/replace", EventReplaceView.as_view(), name="event-replace"),
    path("customers/<int:pk>/usage", CustomerUsageView.as_view(), name="customer-usage"),
]
