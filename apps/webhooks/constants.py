from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, will retry"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed (gave up)"


SIGNATURE_HEADER = "Billing-Portal-Signature"
EVENT_ID_HEADER = "Billing-Portal-Event-Id"
EVENT_TYPE_HEADER = "Billing-Portal-Event-Type"
SECRET_PREFIX = "whsec_"
RESPONSE_EXCERPT_CHARS = 2000
