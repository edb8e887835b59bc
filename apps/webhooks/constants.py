from django.db import models
from django.utils.translation import gettext_lazy as _


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Failed, will retry")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Failed (gave up)")


SIGNATURE_HEADER = "Billing-Portal-Signature"
EVENT_ID_HEADER = "Billing-Portal-Event-Id"
EVENT_TYPE_HEADER = "Billing-Portal-Event-Type"
SECRET_PREFIX = "whsec_"
# An attempt keeps the answer's status and at most this many characters of its body: enough to tell
# one error page from another, too little to carry anything worth taking.
RESPONSE_EXCERPT_CHARS = 256

# What an attempt that got no usable answer records: a class of error, never the socket's or the TLS
# library's own text (which would tell whoever reads the delivery log how a network answers).
ERROR_SCHEME_NOT_ALLOWED = "Only https:// URLs are allowed."
ERROR_ADDRESS_NOT_ALLOWED = "Address not allowed."
ERROR_HOST_NOT_FOUND = "Host not found."
ERROR_CONNECTION_REFUSED = "Connection refused."
ERROR_TIMEOUT = "No response within {seconds} s."
ERROR_TLS = "TLS error."
ERROR_CONNECTION_FAILED = "Connection failed."
ERROR_NOT_HTTP = "Not a valid HTTP response."
ERROR_REDIRECT_NOT_FOLLOWED = "Redirect not followed."
