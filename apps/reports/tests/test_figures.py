"""Every figure of the reports against the hand-computed fixture of conftest.py (the working is in
the comments; amounts in USD unless said otherwise)."""

from datetime import date
from decimal import Decimal

import pytest

from apps.billing.services import bill_due_subscriptions
from apps.billing.services.billing import billing_run_complete
from apps.core import clock
from apps.invoices.models import BillingRun, Invoice
from apps.invoices.services.credit_notes import CreditNoteLineRequest, credit_note_issue
from apps.reports.models import CashMonth, MrrMonth, MrrSegment, ReceivablesAging, ReportRefresh, RevenueMonth
from apps.reports.selectors import ReportFilters, aging_report, cash_report, mrr_report, revenue_report
from apps.reports.services import reports_refresh
from apps.subscriptions.services import subscription_cancel

from .conftest import AS_OF, at

D = Decimal
JAN, FEB, MAR, APR = (date(2026, month, 1) for month in (1, 2, 3, 4))


def usd(**kwargs) -> ReportFilters:
    return ReportFilters(currency="USD", first_month=JAN, last_month=APR, **kwargs)


@pytest.fixture
def refreshed(story):
    reports_refresh(full=True, now=AS_OF)
    return story


def _mrr(rows):
    return [row.mrr for row in rows]


def test_mrr_per_month_end(refreshed):
    rows = mrr_report(usd())
    # Jan: A 10 + B (2 × 30 − 25 %) 45 + C (1,200 / 12 = 100, + support 20) 120 + D 10 = 185.00
    # Feb: A now pro 30 + B 45 + C 120 (support runs until 1 Mar) + D 0 (canceled 10 Feb) = 195.00
    # Mar: A 30 + B (1 × 30 − 25 % = 22.50) + C 100 (support ended 1 Mar) = 152.50
    # Apr: 152.50 + D back on basic 10 = 162.50
    assert _mrr(rows) == [D("185.00"), D("195.00"), D("152.50"), D("162.50")]
    assert [row.arr for row in rows] == [D("2220.00"), D("2340.00"), D("1830.00"), D("1950.00")]
    assert [row.customers for row in rows] == [4, 3, 3, 4]


def test_movements_per_month(refreshed):
    jan, feb, mar, apr = (row.movements for row in mrr_report(usd()))
    # January: the four customers are new (185.00).
    assert (jan.new, jan.new_customers, jan.start_mrr, jan.start_customers) == (D("185.00"), 4, D(0), 0)
    # February: A 10 → 30 is expansion 20; D 10 → 0 is churn 10. 185 + 20 − 10 = 195.
    assert (feb.new, feb.expansion, feb.contraction, feb.churn, feb.reactivation) == (
        D(0),
        D("20.00"),
        D(0),
        D("10.00"),
        D(0),
    )
    assert (feb.churned_customers, feb.start_customers, feb.end_customers) == (1, 4, 3)
    # March: B 45 → 22.50 and C 120 → 100: contraction 22.50 + 20 = 42.50. 195 − 42.50 = 152.50.
    assert (mar.expansion, mar.contraction, mar.churn) == (D(0), D("42.50"), D(0))
    # April: D had MRR before (January): a reactivation of 10, not new business.
    assert (apr.new, apr.reactivation, apr.reactivated_customers, apr.new_customers) == (D(0), D("10.00"), 1, 0)
    assert [m.net for m in (jan, feb, mar, apr)] == [D("185.00"), D("10.00"), D("-42.50"), D("10.00")]


def test_churn_retention_and_arpa(refreshed):
    jan, feb, mar, apr = mrr_report(usd())
    assert jan.logo_churn is None  # no customer at the start of January
    # February: 1 of the 4 customers of the start of the month lost → 25.00 %.
    assert feb.logo_churn == D("25.00")
    # Revenue churn = (churn 10 + contraction 0) / 185 = 5.405… → 5.41 %
    assert feb.revenue_churn == D("5.41")
    # NRR = (185 + 20 − 0 − 10) / 185 = 105.405… → 105.41 %
    assert feb.net_revenue_retention == D("105.41")
    # March: no customer lost; revenue churn 42.50 / 195 = 21.794… → 21.79 %; NRR 152.50 / 195 = 78.205… → 78.21 %
    assert (mar.logo_churn, mar.revenue_churn, mar.net_revenue_retention) == (D("0.00"), D("21.79"), D("78.21"))
    # April: NRR leaves the reactivated customer out: (152.50 + 0 − 0 − 0) / 152.50 = 100 %
    assert apr.net_revenue_retention == D("100.00")
    # ARPA: 185 / 4 = 46.25; 195 / 3 = 65.00; 152.50 / 3 = 50.833… → 50.83; 162.50 / 4 = 40.625 → 40.63 (half up)
    assert [row.arpa("USD") for row in (jan, feb, mar, apr)] == [D("46.25"), D("65.00"), D("50.83"), D("40.63")]


def test_filters_by_product_and_plan(refreshed):
    story = refreshed
    # Plan "pro": Jan B 45; Feb A joins pro (new in this plan: 30) → 75; Mar B contracts to 22.50 → 52.50.
    pro = mrr_report(usd(plan=story.plans["pro"]))
    assert _mrr(pro) == [D("45.00"), D("75.00"), D("52.50"), D("52.50")]
    assert (pro[1].movements.new, pro[1].movements.new_customers) == (D("30.00"), 1)
    assert pro[2].movements.contraction == D("22.50")
    # Plan "basic": Jan A + D = 20; Feb A left for pro and D churned: churn 20, 2 customers; Apr D reactivates.
    basic = mrr_report(usd(plan=story.plans["basic"]))
    assert _mrr(basic) == [D("20.00"), D(0), D(0), D("10.00")]
    assert (basic[1].movements.churn, basic[1].movements.churned_customers) == (D("20.00"), 2)
    assert (basic[3].movements.reactivation, basic[3].movements.new) == (D("10.00"), D(0))
    # Product Hosting: A's move from basic to pro stays inside it (expansion 20), D churns 10.
    hosting = mrr_report(usd(product=story.products["hosting"]))
    assert _mrr(hosting) == [D("165.00"), D("175.00"), D("152.50"), D("162.50")]
    assert (hosting[1].movements.expansion, hosting[1].movements.churn) == (D("20.00"), D("10.00"))
    # Product Support: C's support churns in March.
    support = mrr_report(usd(product=story.products["support"]))
    assert _mrr(support) == [D("20.00"), D("20.00"), D(0), D(0)]
    assert (support[2].movements.churn, support[2].movements.churned_customers) == (D("20.00"), 1)


def test_currencies_are_never_added_together(refreshed):
    eur = mrr_report(ReportFilters(currency="EUR", first_month=JAN, last_month=APR))
    # E pays 9.00 EUR a month from February; nothing of it shows in USD (checked above) and vice versa.
    assert _mrr(eur) == [D(0), D("9.00"), D("9.00"), D("9.00")]
    assert eur[1].movements.new == D("9.00")
    assert set(MrrMonth.objects.values_list("currency", flat=True)) == {"USD", "EUR"}


def test_annual_plan_is_normalized_to_a_month(refreshed):
    story = refreshed
    annual = mrr_report(usd(plan=story.plans["annual"]))
    # 1,200.00 a year / 12 = 100.00 a month, every month
    assert _mrr(annual) == [D("100.00")] * 4
    segment = MrrSegment.objects.get(subscription=story.subscriptions["C-annual"])
    assert (segment.mrr, segment.valid_to) == (D("100.0000"), None)


def test_invoiced_and_collected(refreshed):
    rows = cash_report(usd())
    # Invoiced (issue date): Jan A 10 + B 45 + C 1,200 + 20 + D 10 = 1,285.00 (5 invoices)
    #   Feb A 10 + B 45 + C support 20 + D 10 = 85.00 (4)
    #   Mar A 30 + prorations (−5.00 + 15.00) = 40.00, B 30 − 7.50 = 22.50 → 62.50 (2)
    #   Apr A 30 + B 22.50 + D 10 = 62.50 (3)
    assert [(row.invoiced, row.invoice_count) for row in rows] == [
        (D("1285.00"), 5), (D("85.00"), 4), (D("62.50"), 2), (D("62.50"), 3)
    ]  # fmt: skip
    # Collected (day received): all of January on 10 Jan; A 10 + B 45 on 10 Feb; A's 40.00 on 5 Mar
    # and D's 4.00 on 20 Mar.
    assert [(row.collected, row.collected_count) for row in rows] == [
        (D("1285.00"), 5), (D("55.00"), 2), (D("44.00"), 2), (D(0), 0)
    ]  # fmt: skip
    eur = cash_report(ReportFilters(currency="EUR", first_month=JAN, last_month=APR))
    assert [row.invoiced for row in eur] == [D(0), D("9.00"), D("9.00"), D("9.00")]


def test_receivables_aging(refreshed):
    report = aging_report(usd())
    # Open on 20 Apr, due 14 days after issue:
    #   Feb invoices (due 15 Feb, 64 days late): C support 20 + D 10 − 4.00 paid → 61–90: 26.00 (2)
    #   Mar B 22.50 (due 15 Mar, 36 days) → 31–60
    #   Apr A 30 + B 22.50 + D 10 (due 15 Apr, 5 days) → 1–30: 62.50 (3)
    assert [(key, amount, count) for key, _, amount, count in report.buckets] == [
        ("current", D(0), 0), ("1_30", D("62.50"), 3), ("31_60", D("22.50"), 1), ("61_90", D("26.00"), 2),
        ("90_plus", D(0), 0),
    ]  # fmt: skip
    assert (report.total, report.invoice_count, report.as_of) == (D("111.00"), 6, date(2026, 4, 20))
    eur = aging_report(ReportFilters(currency="EUR", first_month=JAN, last_month=APR))
    assert [amount for _, _, amount, _ in eur.buckets] == [D(0), D("9.00"), D("9.00"), D("9.00"), D(0)]
    assert ReceivablesAging.objects.count() == 10  # five buckets × two currencies


def test_revenue_recognition(refreshed):
    rows = revenue_report(usd())
    # Monthly lines cover whole months and are recognized in their month. Discounts have no period:
    # recognized when issued. The annual fee covers 1 Jan 2026 – 1 Jan 2027 (365 days):
    #   through Jan 31/365 × 1,200 = 101.92; through Feb 59/365 → 193.97; Mar 90/365 → 295.89;
    #   Apr 120/365 → 394.52 (each month gets the difference of the rounded cumulative amounts).
    # Jan: A 10 + B 60 − 15 + C 101.92 + 20 + D 10 = 186.92
    # Feb: A 10 + B 45 + C (193.97 − 101.92 = 92.05) + 20 + D 10 = 177.05, plus A's prorations of
    #      15 Feb – 1 Mar (−5.00 + 15.00, invoiced on 1 Mar but earned in February) = 187.05
    # Mar: A 30 + B 30 − 7.50 + C (295.89 − 193.97 = 101.92) = 154.42
    # Apr: A 30 + B 22.50 + D 10 + C (394.52 − 295.89 = 98.63) = 161.13
    assert [row.recognized for row in rows] == [D("186.92"), D("187.05"), D("154.42"), D("161.13")]
    # Deferred at month end: what is left of the annual fee (monthly lines end with their month).
    assert [row.deferred for row in rows] == [D("1098.08"), D("1006.03"), D("904.11"), D("805.48")]
    annual = revenue_report(usd(plan=refreshed.plans["annual"]))
    assert [row.recognized for row in annual] == [D("101.92"), D("92.05"), D("101.92"), D("98.63")]


def _rows():
    mrr = [
        {k: v for k, v in row.items() if k != "id"}
        for row in MrrMonth.objects.order_by("scope", "scope_id", "currency", "month").values()
    ]
    cash = list(CashMonth.objects.order_by("currency", "month").values("month", "currency", "invoiced", "collected"))
    return mrr, cash


def test_incremental_refresh_picks_up_a_change_and_matches_a_full_rebuild(refreshed):
    story = refreshed
    unchanged = _rows()
    reports_refresh(now=AS_OF)
    assert _rows() == unchanged  # nothing new: the same figures
    # B cancels at once on 20 Apr: April ends with 162.50 − 22.50 = 140.00, a churn of 22.50.
    with clock.frozen_at(AS_OF):
        subscription_cancel(subscription_id=story.subscriptions["B"].pk, at_period_end=False, now=AS_OF)
    refresh = reports_refresh(now=AS_OF)
    assert refresh.full is False
    april = mrr_report(usd())[-1]
    assert (april.mrr, april.movements.churn, april.movements.churned_customers) == (D("140.00"), D("22.50"), 1)
    incremental = _rows()
    reports_refresh(full=True, now=AS_OF)
    assert _rows() == incremental


def test_refresh_after_a_billing_run_is_queued_on_commit(story, django_capture_on_commit_callbacks, settings):
    """Closing a billing run queues a refresh once the run is committed (run here in-process)."""
    run = BillingRun.objects.order_by("-pk").first()
    with django_capture_on_commit_callbacks() as callbacks:
        billing_run_complete(run_id=run.pk, now=AS_OF)
    assert len(callbacks) == 1
    assert ReportRefresh.objects.count() == 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from billing_portal.celery import app

    app.conf.task_always_eager = True
    try:
        callbacks[0]()
        assert ReportRefresh.objects.count() == 1
        settings.REPORTS_REFRESH_AFTER_BILLING_RUN = False
        callbacks[0]()
        assert ReportRefresh.objects.count() == 1
    finally:
        app.conf.task_always_eager = False


def _revenue_rows():
    fields = ("month", "currency", "plan_id", "recognized", "deferred")
    return list(RevenueMonth.objects.order_by(*fields).values_list(*fields))


def _credit(invoice, moment, **kwargs):
    with clock.frozen_at(moment):
        return credit_note_issue(invoice_id=invoice.pk, reason="other", now=moment, **kwargs)


def test_a_credit_note_is_taken_off_revenue_from_its_month_on(refreshed):
    """C is refunded half of its annual fee on 10 Mar: the 600.00 credited is taken off over the
    annual line's service period, and what fell before March is caught up in March (a credit note
    changes no month before its own). Checked through an incremental refresh."""
    story = refreshed
    annual_invoice = Invoice.objects.get(subscription=story.subscriptions["C-annual"])
    annual_line = annual_invoice.lines.get()
    _credit(
        annual_invoice, at(3, 10), lines=[CreditNoteLineRequest(invoice_line_id=annual_line.pk, amount=D("600.00"))],
        refund_amount=D("600.00"),
    )  # fmt: skip
    reports_refresh(now=AS_OF)
    rows = revenue_report(usd())
    # 600.00 over 1 Jan 2026 – 1 Jan 2027 (365 days): through Jan 31/365 → 50.96, Feb 59/365 → 96.99,
    # Mar 90/365 → 147.95, Apr 120/365 → 197.26. Jan and Feb are unchanged; March takes the three
    # months through its end at once (147.95), April its own share (197.26 − 147.95 = 49.31):
    #   Mar 154.42 − 147.95 = 6.47; Apr 161.13 − 49.31 = 111.82
    assert [row.recognized for row in rows] == [D("186.92"), D("187.05"), D("6.47"), D("111.82")]
    # Deferred: the credit's unrecognized rest comes off from March: 904.11 − (600 − 147.95) = 452.06,
    # 805.48 − (600 − 197.26) = 402.74 (half of the annual fee's rest, as it should be).
    assert [row.deferred for row in rows] == [D("1098.08"), D("1006.03"), D("452.06"), D("402.74")]
    annual = revenue_report(usd(plan=story.plans["annual"]))
    assert [row.recognized for row in annual] == [D("101.92"), D("92.05"), D("-46.03"), D("49.32")]
    incremental = _revenue_rows()
    reports_refresh(full=True, now=AS_OF)
    assert _revenue_rows() == incremental


def test_a_balance_credit_is_taken_off_revenue_once(refreshed):
    """A is credited 10.00 (a plain amount) to its balance on 15 Apr; the credit is taken off A's
    May invoice. Revenue loses 10.00 in April, when the credit note is issued, and not again in May
    (the balance applied on the invoice settles it, like a payment)."""
    story = refreshed
    march_invoice = Invoice.objects.get(customer=story.customers["A"], issued_at=at(3, 1))
    _credit(march_invoice, at(4, 15), amount=D("10.00"), credit_to_balance=D("10.00"))
    may = at(5, 1)
    with clock.frozen_at(may):
        bill_due_subscriptions(now=may)
    a_may = Invoice.objects.get(customer=story.customers["A"], issued_at=may)
    assert a_may.total.amount == D("20.00")  # 30.00 − the 10.00 credit
    reports_refresh(full=True, now=at(5, 1, 12))
    rows = revenue_report(ReportFilters(currency="USD", first_month=APR, last_month=date(2026, 5, 1)))
    # Apr 161.13 − 10.00 = 151.13. May: A 30 + B 22.50 + D 10 + C (151/365 × 1,200 = 496.44 − 394.52
    # = 101.92) = 164.42, the credit applied on A's invoice not taken off again.
    assert [row.recognized for row in rows] == [D("151.13"), D("164.42")]
    # Cash is unchanged by the rule: invoiced in May is what was billed, 20.00 for A.
    assert cash_report(ReportFilters(currency="USD", first_month=APR, last_month=date(2026, 5, 1)))[1].invoiced == D(
        "62.50"
    ) - D("10.00")
