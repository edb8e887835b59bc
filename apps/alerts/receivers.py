"""Ingestion's hook: usage recorded (after commit) asks for an evaluation of its customers' alerts."""

from typing import Any

from django.dispatch import receiver

from apps.usage.signals import usage_recorded

from .services import alerts_evaluation_request


@receiver(usage_recorded, dispatch_uid="alerts_evaluate_after_usage")
def evaluate_after_usage(sender: Any, customer_ids: list[int], **kwargs: Any) -> None:
    alerts_evaluation_request(customer_ids=customer_ids)
