"""Card collection starts when invoices are finalized; refunds of card payments go to Stripe
(connected in the payments app's `ready()`)."""

from typing import Any

from django.dispatch import receiver

from apps.core.queue import enqueue
from apps.invoices.signals import invoices_finalized
from apps.payments.signals import refund_created

from .collection import invoices_collection_start
from .refunds import refund_is_for_stripe
from .tasks import stripe_refund_task


@receiver(invoices_finalized, dispatch_uid="stripe_collect_finalized_invoices")
def collect_finalized_invoices(sender: Any, invoice_ids: list[int], **kwargs: Any) -> None:
    invoices_collection_start(invoice_ids=invoice_ids)


@receiver(refund_created, dispatch_uid="stripe_refund_created")
def refund_stripe_payment(sender: Any, refund_id: int, **kwargs: Any) -> None:
    if refund_is_for_stripe(refund_id):
        enqueue(stripe_refund_task, refund_id)
