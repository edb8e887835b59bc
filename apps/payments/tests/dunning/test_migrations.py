"""Unapplying payments.0004 (several dunnings per invoice → one) refuses, before changing anything,
while an invoice has a reopened dunning and its new cycle."""

import importlib

import pytest
from django.apps import apps
from django.db import migrations

from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.payments.dunning.constants import DunningStatus
from apps.payments.dunning.models import InvoiceDunning
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db

migration_0004 = importlib.import_module("apps.payments.migrations.0004_dunning_new_cycle_after_reopen")


@pytest.fixture
def dunning(campaign, test_clock, invoice):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    return InvoiceDunning.objects.get(invoice=invoice)


def test_the_refusal_is_unapplied_first_and_changes_nothing_forward():
    last = migration_0004.Migration.operations[-1]
    assert isinstance(last, migrations.RunPython)
    assert (last.code, last.reverse_code) == (migrations.RunPython.noop, migration_0004.refuse_to_undo_new_cycles)


def test_unapplying_is_refused_while_an_invoice_has_a_reopened_dunning_and_a_new_cycle(dunning):
    InvoiceDunning.objects.filter(pk=dunning.pk).update(status=DunningStatus.REOPENED)
    InvoiceDunning.objects.create(
        **{field.attname: getattr(dunning, field.attname) for field in InvoiceDunning._meta.concrete_fields
           if field.attname not in ("id", "status")},
        status=DunningStatus.ACTIVE,
    )  # fmt: skip

    with pytest.raises(RuntimeError) as refused:
        migration_0004.refuse_to_undo_new_cycles(apps, None)

    assert str(refused.value).startswith(
        f"Cannot unapply payments.0004: invoices {dunning.invoice_id} have more than one dunning (a reopened one "
        "and its new cycle), and before this migration an invoice has one dunning only. Nothing was changed."
    )


def test_unapplying_goes_on_with_one_dunning_per_invoice(dunning):
    migration_0004.refuse_to_undo_new_cycles(apps, None)  # no error
