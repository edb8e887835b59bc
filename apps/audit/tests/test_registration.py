"""What the audit trail reads of an object when it records a change."""

import pytest

from apps.accounts.tests.factories import CustomerFactory
from apps.audit.registration import audited_models

pytestmark = pytest.mark.django_db


def test_recording_a_change_reads_no_reverse_relation():
    # A customer's Stripe link and dunning setting live on other tables: recording the customer's
    # creation must not look them up (one query each) nor remember them as missing on the instance.
    customer = CustomerFactory()
    customer.name = "Renamed Ltd."
    customer.save()

    assert customer._state.fields_cache == {}


def test_every_audited_model_records_its_own_columns_only():
    from auditlog.registry import auditlog

    for model in audited_models():
        tracked = auditlog.get_model_fields(model)["include_fields"]
        assert set(tracked) <= {field.name for field in model._meta.concrete_fields}, model
