"""Thin Celery tasks around the wallet services."""

from celery import shared_task

from .services.expiry import wallet_credits_expire


@shared_task(name="apps.wallets.tasks.wallet_credits_expire_task", time_limit=600, soft_time_limit=540)
def wallet_credits_expire_task() -> int:
    """Daily: expire the credits whose day has come."""
    return len(wallet_credits_expire())


@shared_task(name="apps.wallets.tasks.wallet_top_up_task", time_limit=120, soft_time_limit=100)
def wallet_top_up_task(wallet_id: int) -> int | None:
    """A wallet fell under its threshold: buy its top-up credits (nothing when already under way)."""
    from .services.purchases import wallet_top_up

    purchase = wallet_top_up(wallet_id=wallet_id)
    return purchase.pk if purchase is not None else None
