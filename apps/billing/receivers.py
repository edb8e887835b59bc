"""Ingestion's hook for progressive billing: usage recorded (after commit) asks for an evaluation of its
customers' thresholds, debounced like spend alerts' (docs/billing-rules.md, "Progressive billing")."""

from typing import Any

from django.dispatch import receiver

from apps.usage.signals import usage_recorded

from .services.progressive import progressive_evaluation_request


@receiver(usage_recorded, dispatch_uid="billing_progressive_after_usage")
def evaluate_after_usage(sender: Any, customer_ids: list[int], **kwargs: Any) -> None:
    progressive_evaluation_request(customer_ids=customer_ids)
