"""Other apps' moments on a test clock: a registered hook runs at each of its moments, in order with
renewals, with the clock frozen at that moment."""

import pytest
from djmoney.money import Money

from apps.accounts.models import SimulatedClock
from apps.accounts.services import simulated_clock_create
from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.catalog.tests.factories import PlanFactory
from apps.core import clock
from apps.core.clock_hooks import simulated_clock_hook_register, simulated_clock_hook_unregister
from apps.invoices.models import Invoice
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

HOOK_MOMENTS = [utc(2026, 1, 10, 12), utc(2026, 2, 1), utc(2026, 2, 20)]


@pytest.fixture
def recorded():
    """A hook with three moments of its own that records, at each run, the clock's time and how many
    invoices exist by then."""
    runs: list[tuple] = []

    def next_moment(test_clock_id, after, until):
        return next((m for m in HOOK_MOMENTS if (after is None or m > after) and m <= until), None)

    def run(test_clock_id, moment):
        frozen_at = SimulatedClock.objects.get(pk=test_clock_id).frozen_at
        runs.append((moment, clock.now(), frozen_at, Invoice.objects.count()))

    simulated_clock_hook_register(name="recorder", next_moment=next_moment, run=run)
    yield runs
    simulated_clock_hook_unregister(name="recorder")


def test_a_hook_runs_at_its_own_moments_in_order_with_renewals(recorded):
    test_clock = simulated_clock_create(name="Hooks", frozen_at=utc(2026, 1, 1))
    customer = CustomerFactory(currency="USD", test_clock=test_clock)
    subscription_start(customer=customer, plan=PlanFactory(prices=[Money("10.00", "USD")]))  # renews on the 1st

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 5))

    assert recorded == [
        (utc(2026, 1, 10, 12), utc(2026, 1, 10, 12), utc(2026, 1, 10, 12), 1),
        (utc(2026, 2, 1), utc(2026, 2, 1), utc(2026, 2, 1), 2),  # after the renewal of the same moment
        (utc(2026, 2, 20), utc(2026, 2, 20), utc(2026, 2, 20), 2),
        (utc(2026, 3, 1), utc(2026, 3, 1), utc(2026, 3, 1), 3),  # each moment the clock stops at
        (utc(2026, 3, 5), utc(2026, 3, 5), utc(2026, 3, 5), 3),
    ]


def test_an_unregistered_hook_is_not_run(recorded):
    simulated_clock_hook_unregister(name="recorder")
    test_clock = simulated_clock_create(name="No hooks", frozen_at=utc(2026, 1, 1))

    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 3, 5))

    assert recorded == []
