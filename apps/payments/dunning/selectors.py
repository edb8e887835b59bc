"""Reads of dunning worth naming: the staff list of dunnings and the recovery figures."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncMonth
from djmoney.money import Money

from apps.core.money import quantize_amount

from .constants import DunningStatus
from .models import DunningCampaign, InvoiceDunning


def invoice_card_refusal(invoice) -> str | None:  # type: ignore[no-untyped-def]
    """Why the invoice's amount due cannot be charged to a card at all (a three-decimal amount Stripe
    refuses, the `amount_not_chargeable` failure), or None. Retrying the card cannot help then: dunning
    skips its card retries and its reminders ask for a payment by other means."""
    from apps.payments.stripe.client import stripe_card_amount_refusal

    amount_due = invoice.amount_due
    if amount_due.amount <= 0:
        return None
    return stripe_card_amount_refusal(amount_due.amount, str(amount_due.currency))


def dunning_campaign_list() -> QuerySet[DunningCampaign]:
    return DunningCampaign.objects.all()


@dataclass(frozen=True)
class RecoveryFigures:
    """Dunnings started in one month (the customer's time), in one currency."""

    month: str  # "2026-03"
    currency: str
    started: int
    recovered: int
    amount_in_dunning: Money  # what was due when they started
    amount_recovered: Money  # what was paid on them since

    @property
    def recovery_rate(self) -> Decimal | None:
        """Share of the amount in dunning that was recovered, in percent (two decimals)."""
        if self.amount_in_dunning.amount == 0:
            return None
        rate = self.amount_recovered.amount / self.amount_in_dunning.amount * 100
        return rate.quantize(Decimal("0.01"))  # a percentage, not money: plain Decimal rounding


def dunning_recovery_figures(dunnings: QuerySet[InvoiceDunning] | None = None) -> list[RecoveryFigures]:
    """Amounts that entered dunning and what was recovered of them, per currency and per month the
    dunnings started (newest month first). Dunnings closed because their invoice was voided are left
    out: nothing was owed any more; so are recovered dunnings reopened (their payment reversed or
    refunded): the same debt is counted once, by the invoice's new dunning."""
    dunnings = InvoiceDunning.objects.all() if dunnings is None else dunnings
    rows = (
        dunnings.exclude(status__in=(DunningStatus.CLOSED, DunningStatus.REOPENED))
        .annotate(month=TruncMonth("started_at"))
        .values("month", "amount_due_at_start_currency", "status")
        .annotate(count=Count("id"), due=Sum("amount_due_at_start"), recovered=Sum("amount_recovered"))
        .order_by()
    )
    totals: dict[tuple[str, str], dict[str, Decimal | int]] = defaultdict(
        lambda: {"started": 0, "recovered": 0, "due": Decimal(0), "paid": Decimal(0)}
    )
    for row in rows:
        key = (row["month"].strftime("%Y-%m"), row["amount_due_at_start_currency"])
        totals[key]["started"] += row["count"]
        if row["status"] == DunningStatus.RECOVERED:
            totals[key]["recovered"] += row["count"]
        totals[key]["due"] += row["due"] or Decimal(0)
        totals[key]["paid"] += row["recovered"] or Decimal(0)
    figures = [
        RecoveryFigures(
            month=month, currency=currency, started=int(values["started"]), recovered=int(values["recovered"]),
            amount_in_dunning=Money(quantize_amount(Decimal(values["due"]), currency), currency),
            amount_recovered=Money(quantize_amount(Decimal(values["paid"]), currency), currency),
        )
        for (month, currency), values in totals.items()
    ]  # fmt: skip
    figures.sort(key=lambda figure: figure.currency)
    return sorted(figures, key=lambda figure: figure.month, reverse=True)  # newest month first, currencies A–Z


def dunning_recovery_totals(figures: list[RecoveryFigures]) -> list[RecoveryFigures]:
    """The figures of every month added up, per currency."""
    by_currency: dict[str, list[RecoveryFigures]] = defaultdict(list)
    for figure in figures:
        by_currency[figure.currency].append(figure)
    return [
        RecoveryFigures(
            month="all", currency=currency, started=sum(f.started for f in rows),
            recovered=sum(f.recovered for f in rows),
            amount_in_dunning=Money(sum((f.amount_in_dunning.amount for f in rows), Decimal(0)), currency),
            amount_recovered=Money(sum((f.amount_recovered.amount for f in rows), Decimal(0)), currency),
        )
        for currency, rows in sorted(by_currency.items())
    ]  # fmt: skip
