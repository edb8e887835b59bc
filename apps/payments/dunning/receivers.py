"""Connections of dunning to the rest of the product (made in the payments app's `ready()`): the
payment signals and the test clock hook. Each receiver calls one service; a failure is logged and
left to the periodic run, which reconciles dunnings with their invoices."""

import logging
from typing import Any

from apps.core.clock_hooks import simulated_clock_hook_register

from .services import (
    dunning_on_payment_failed,
    dunning_on_payment_succeeded,
    simulated_clock_next_moment,
    simulated_clock_run,
)

logger = logging.getLogger(__name__)


def on_payment_failed(sender: Any, payment_id: int, **kwargs: Any) -> None:
    try:
        dunning_on_payment_failed(payment_id=payment_id)
    except Exception:  # noqa: BLE001 - the payment is committed; dunning catches up on its next run
        logger.exception("dunning could not start for failed payment %s", payment_id)


def on_payment_succeeded(sender: Any, payment_id: int, **kwargs: Any) -> None:
    try:
        dunning_on_payment_succeeded(payment_id=payment_id)
    except Exception:  # noqa: BLE001 - the payment is committed; dunning catches up on its next run
        logger.exception("dunning could not record the recovery of payment %s", payment_id)


def connect() -> None:
    from apps.payments import signals

    signals.payment_failed.connect(on_payment_failed, dispatch_uid="dunning_payment_failed")
    signals.payment_succeeded.connect(on_payment_succeeded, dispatch_uid="dunning_payment_succeeded")
    simulated_clock_hook_register(name="dunning", next_moment=simulated_clock_next_moment, run=simulated_clock_run)
