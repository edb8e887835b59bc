from django.db.models import QuerySet

from apps.core.errors import NotFound

from .models import Payment


def payment_list_for_customer(*, customer_id: int) -> QuerySet[Payment]:
    """The customer's payments (the portal), newest first."""
    return Payment.objects.filter(customer_id=customer_id).order_by("-created_at", "-id")


def payment_get_for_customer(*, customer_id: int, payment_id: int | str) -> Payment:
    """One of the customer's payments; `NotFound` for anybody else's (or an id that is no number)."""
    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        raise NotFound("No such payment.") from None
    payment = payment_list_for_customer(customer_id=customer_id).filter(pk=pk).first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment
