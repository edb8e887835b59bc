"""Admin of dunning: Customers in dunning (list, recovery figures, actions), campaigns (form errors),
customer settings."""

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services.simulated_clocks import simulated_clock_advance
from apps.payments.dunning.models import CustomerDunningSetting, DunningCampaign, InvoiceDunning
from apps.payments.services import payment_record_manual
from apps.subscriptions.periods import utc

from .conftest import CAMPAIGN

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:payments_invoicedunning_changelist")


@pytest.fixture
def dunning(campaign, test_clock, invoice):
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    return InvoiceDunning.objects.get(invoice=invoice)


def test_customers_in_dunning_list_shows_amount_step_and_next_action(client, superuser, dunning):
    client.force_login(superuser)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme Corp" in page and dunning.invoice.number in page
    assert "10.00 USD" in page  # amount due
    assert "2 of 8" in page  # the overdue step comes next
    assert "Jan. 16, 2026, 9 a.m." in page
    figures = response.context["recovery_figures"]
    assert [(f.month, f.currency, f.started, f.recovered, str(f.amount_in_dunning.amount), f.recovery_rate)
            for f in figures] == [("2026-01", "USD", 1, 0, "10.00", Decimal("0.00"))]  # fmt: skip


def test_recovery_rate_after_a_payment(client, superuser, dunning, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payment_record_manual(
            customer_id=dunning.customer_id, amount=Decimal("10.00"), currency="USD", method="bank_transfer",
            reference="T", received_at=utc(2026, 1, 13), allocations=[(dunning.invoice_id, Decimal("10.00"))],
        )  # fmt: skip
    client.force_login(superuser)

    response = client.get(LIST_URL, {"status__exact": "recovered"})

    [figure] = response.context["recovery_totals"]
    assert (figure.started, figure.recovered, str(figure.amount_recovered.amount), figure.recovery_rate) == (
        1,
        1,
        "10.00",
        Decimal("100.00"),
    )
    assert "100.00 %" in response.content.decode()


def test_list_queries_are_bounded(client, superuser, campaign, test_clock, django_assert_max_num_queries):
    from apps.invoices.tests.factories import make_manual_invoice

    for _ in range(6):
        make_manual_invoice(customer=CustomerFactory(test_clock=test_clock), now=utc(2026, 1, 1))
    simulated_clock_advance(test_clock_id=test_clock.pk, to=utc(2026, 1, 13))
    assert InvoiceDunning.objects.count() == 6
    client.force_login(superuser)

    with django_assert_max_num_queries(14):
        assert client.get(LIST_URL).status_code == 200


def test_pause_resume_and_run_next_action_now(client, superuser, dunning):
    client.force_login(superuser)

    client.post(LIST_URL, {"action": "exclude_selected", "_selected_action": [dunning.pk]})
    dunning.refresh_from_db()
    assert dunning.status == "excluded"
    refused = client.post(LIST_URL, {"action": "run_next_action_now", "_selected_action": [dunning.pk]}, follow=True)
    assert "it has no next action to run" in refused.content.decode()

    client.post(LIST_URL, {"action": "resume_selected", "_selected_action": [dunning.pk]})
    mail.outbox.clear()
    ran = client.post(LIST_URL, {"action": "run_next_action_now", "_selected_action": [dunning.pk]}, follow=True)

    dunning.refresh_from_db()
    assert (dunning.status, dunning.step, dunning.next_action_kind) == ("active", 2, "reminder_after_due")
    assert "overdue (subscription past due) — action done" in ran.content.decode()
    last = dunning.events.order_by("id").last()
    assert (last.step, last.occurred_at, last.actor) == (1, utc(2026, 1, 13), superuser)  # at the clock's time


def test_a_dunnings_page_shows_its_plan_and_history(client, superuser, dunning):
    client.force_login(superuser)

    page = client.get(reverse("admin:payments_invoicedunning_change", args=[dunning.pk])).content.decode()

    assert (
        "<td>1</td><td>Reminder before the due date</td><td>2026-01-12 09:00 UTC</td><td></td><td>Action done</td>"
        in page
    )
    assert (
        "<td>2</td><td>Overdue (subscription past due)</td><td>2026-01-16 09:00 UTC</td><td></td><td>next</td>" in page
    )
    assert "<td>4</td><td>Payment retry</td><td>2026-01-18 09:00 UTC</td><td>attempt 2</td><td>planned</td>" in page


def test_staff_who_may_only_view_cannot_run_actions(client, make_staff, dunning):
    client.force_login(make_staff("payments.view_invoicedunning"))

    assert client.get(LIST_URL).status_code == 200
    client.post(LIST_URL, {"action": "exclude_selected", "_selected_action": [dunning.pk]})

    dunning.refresh_from_db()
    assert dunning.status == "active"


def test_campaign_form_errors_save_nothing(client, superuser):
    client.force_login(superuser)
    data = {**CAMPAIGN, "retry_days": "3, 5, 7", "reminder_days_before_due": "3", "reminder_days_after_due": "1",
            "description": ""}  # fmt: skip

    bad = client.post(reverse("admin:payments_dunningcampaign_add"), {**data, "end_action_day": "9"})
    typo = client.post(reverse("admin:payments_dunningcampaign_add"), {**data, "retry_days": "3, five"})
    good = client.post(reverse("admin:payments_dunningcampaign_add"), data)

    assert bad.status_code == typo.status_code == 200
    assert "give more than 10 days" in bad.content.decode()
    assert "Give whole numbers of days" in typo.content.decode()
    assert good.status_code == 302
    assert list(DunningCampaign.objects.values_list("retry_days", "end_action_day")) == [([3, 5, 7], 14)]


def test_excluding_a_customer_in_the_admin_excludes_its_dunning(client, superuser, dunning):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:payments_customerdunningsetting_add"),
        {"customer": dunning.customer_id, "campaign": "", "excluded": "on", "note": "Arrangement"},
    )

    assert response.status_code == 302
    assert CustomerDunningSetting.objects.get().excluded is True
    dunning.refresh_from_db()
    assert dunning.status == "excluded"
