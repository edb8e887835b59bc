"""`manage.py reports_rebuild`: a full rebuild, an incremental refresh, bad input refused."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.reports.models import MrrMonth, ReportRefresh


def test_rebuild_then_refresh(story):
    out = StringIO()
    call_command("reports_rebuild", "--as-of", "2026-04-20T12:00:00+00:00", stdout=out)
    assert out.getvalue().startswith("Reports rebuilt as of 2026-04-20 12:00 UTC in ")
    assert "(7 subscriptions)" in out.getvalue()
    april = MrrMonth.objects.get(scope="all", currency="USD", month="2026-04-01")
    assert april.mrr == 162.5
    call_command("reports_rebuild", "--incremental", "--as-of", "2026-04-20T12:00:00+00:00", stdout=out)
    assert "Reports refreshed as of 2026-04-20 12:00 UTC" in out.getvalue()
    assert list(ReportRefresh.objects.order_by("id").values_list("full", flat=True)) == [True, False]


@pytest.mark.parametrize(
    ("value", "message"),
    [("yesterday", "--as-of: Invalid isoformat string"), ("2026-04-20T12:00:00", "--as-of needs a time zone")],
)
def test_bad_as_of_is_refused(db, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("reports_rebuild", "--as-of", value, stdout=StringIO())
    assert ReportRefresh.objects.count() == 0
