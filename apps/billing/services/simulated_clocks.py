"""Advancing a test clock: run, in order and at the moment each was due, everything that would have
happened to the clock's customers between its time and the new one. Other apps' moments (dunning)
come in through the hooks of `apps.core.clock_hooks`."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min
from django.utils.translation import gettext

from apps.accounts.models import SimulatedClock
from apps.core import clock
from apps.core.audit import audited_as
from apps.core.clock_hooks import simulated_clock_hooks
from apps.core.errors import NotFound, ValidationFailed
from apps.invoices.constants import BillingRunTrigger, InvoiceStatus
from apps.invoices.models import Invoice
from apps.subscriptions.constants import BILLABLE_STATUSES
from apps.subscriptions.models import Subscription

from .billing import bill_due_subscriptions

MAX_ADVANCE = timedelta(days=366 * 5)
MAX_STEPS = 10_000


@audited_as("test clock")
def simulated_clock_advance(*, test_clock_id: int, to: datetime, actor=None) -> SimulatedClock:
    """Move a test clock forward to `to`. Each moment at which something falls due (a period begins,
    a trial or a period-end cancellation ends, a draft's review time is over, or a registered hook has
    something to do) is run in turn, as the billing run and the hooks' tasks would have at that moment;
    then the clock stops at `to`."""
    to = clock.ensure_aware(to)
    with transaction.atomic():
        test_clock = SimulatedClock.objects.select_for_update().filter(pk=test_clock_id).first()
        if test_clock is None:
            raise NotFound(gettext("Test clock %(test_clock_id)s does not exist.") % {"test_clock_id": test_clock_id})
        if to <= test_clock.frozen_at:
            raise ValidationFailed(
                gettext("A test clock only moves forward."),
                fields={
                    "frozen_at": [
                        gettext("Choose a time after %(frozen_at)s UTC.")
                        % {"frozen_at": format(test_clock.frozen_at, "%Y-%m-%d %H:%M")}
                    ]
                },
            )
        if to - test_clock.frozen_at > MAX_ADVANCE:
            raise ValidationFailed(
                gettext("Advance a test clock by at most five years at a time."),
                fields={"frozen_at": [gettext("Choose a time at most five years after the clock's time.")]},
            )
    last = test_clock.frozen_at
    if _first_due(test_clock, after=None, until=last) is not None:
        _run_at(test_clock, last, actor)  # already due at the clock's time
    for _ in range(MAX_STEPS):
        moment = _first_due(test_clock, after=last, until=to)
        if moment is None:
            break
        _run_at(test_clock, moment, actor)
        last = moment
    if last != to:
        _run_at(test_clock, to, actor)
    test_clock.refresh_from_db()
    return test_clock


def _first_due(test_clock: SimulatedClock, *, after: datetime | None, until: datetime) -> datetime | None:
    """The earliest moment in (after, until] at which a period begins (or a trial or a period-end
    cancellation ends) or a draft's review time is over, for the clock's customers."""
    subscriptions = Subscription.objects.filter(
        customer__test_clock=test_clock, status__in=BILLABLE_STATUSES, next_billing_at__lte=until
    )
    drafts = Invoice.objects.filter(
        customer__test_clock=test_clock, status=InvoiceStatus.DRAFT, auto_finalize_at__lte=until
    )
    if after is not None:
        subscriptions = subscriptions.filter(next_billing_at__gt=after)
        drafts = drafts.filter(auto_finalize_at__gt=after)
    moments = [
        subscriptions.aggregate(first=Min("next_billing_at"))["first"],
        drafts.aggregate(first=Min("auto_finalize_at"))["first"],
    ]
    moments += [hook.next_moment(test_clock.pk, after, until) for hook in simulated_clock_hooks()]
    return min((moment for moment in moments if moment is not None), default=None)


def _run_at(test_clock: SimulatedClock, moment: datetime, actor) -> None:
    with clock.frozen_at(moment):
        SimulatedClock.objects.filter(pk=test_clock.pk).update(frozen_at=moment, updated_at=moment)
        bill_due_subscriptions(
            now=moment, trigger=BillingRunTrigger.TEST_CLOCK, triggered_by=actor, test_clock=test_clock
        )
        for hook in simulated_clock_hooks():
            hook.run(test_clock.pk, moment)
