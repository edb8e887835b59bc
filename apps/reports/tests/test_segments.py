"""A subscription's MRR history, replayed from what happened to it: a trial, a repeating coupon, a
pause and its resumption (worked by hand in the comments)."""

from datetime import UTC, date, datetime
from decimal import Decimal

from djmoney.money import Money

from apps.accounts.services import customer_create
from apps.billing.services import bill_due_subscriptions, subscription_pause, subscription_resume
from apps.catalog.services import coupon_create, plan_create, product_create
from apps.core import clock
from apps.reports.models import MrrSegment
from apps.reports.selectors import ReportFilters, mrr_report
from apps.reports.services import reports_refresh
from apps.subscriptions.services import coupon_redeem, subscription_create

D = Decimal


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def test_trial_repeating_coupon_and_pause(db, settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_EMAIL_ON_FINALIZE = False
    product = product_create(code="team", name="Team")
    plan = plan_create(product=product, code="team", name="Team", prices=[Money("50.00", "USD")], trial_days=14)
    customer = customer_create(name="X", email="x@example.com", country="US", state="NV", currency="USD")
    with clock.frozen_at(at(1, 20)):
        # A 14-day trial from 20 Jan: paid life begins 3 Feb.
        subscription = subscription_create(customer=customer, plan=plan, started_at=at(1, 20))
        coupon = coupon_create(code="welcome", name="Welcome", discount_type="percentage",
                               percent_off=D(20), duration="repeating", duration_in_periods=2)  # fmt: skip
        coupon_redeem(coupon=coupon, subscription=subscription, now=at(1, 20))
    for moment in (at(2, 3), at(3, 3), at(4, 3)):
        with clock.frozen_at(moment):
            bill_due_subscriptions(now=moment)
    # The coupon discounted the invoices of 3 Feb and 3 Mar and ended with the second (3 Mar); that
    # invoice paid until 3 Apr, so MRR is 50.00 − 20 % = 40.00 from 3 Feb to 3 Apr, then 50.00.
    with clock.frozen_at(at(4, 10)):
        subscription_pause(subscription_id=subscription.pk, now=at(4, 10))
    with clock.frozen_at(at(5, 1)):
        subscription_resume(subscription_id=subscription.pk, now=at(5, 1))
    reports_refresh(full=True, now=at(5, 20))

    segments = list(MrrSegment.objects.order_by("valid_from").values_list("mrr", "valid_from", "valid_to"))
    assert segments == [
        (D("40.0000"), at(2, 3), at(4, 3)),
        (D("50.0000"), at(4, 3), at(4, 10)),  # paused 10 Apr – 1 May: no MRR
        (D("50.0000"), at(5, 1), None),
    ]
    rows = mrr_report(ReportFilters(currency="USD", first_month=date(2026, 1, 1), last_month=date(2026, 5, 1)))
    # Month ends: Jan trialing 0; Feb 40; Mar 40; Apr paused 0; May (now) 50
    assert [row.mrr for row in rows] == [D(0), D("40.00"), D("40.00"), D(0), D("50.00")]
    # A pause is churn (of what it paid at the last month end) and the resumption a reactivation.
    assert (rows[1].movements.new, rows[3].movements.churn, rows[4].movements.reactivation) == (
        D("40.00"), D("40.00"), D("50.00")
    )  # fmt: skip
