"""The catalog's admin labels read in the staff's language: a price's row label ("USD (peak hours)"), the
charge notes (metric, pooled allowance, peak hours), a coupon's duration, the features table."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from apps.catalog.admin import CouponAdmin, prices_table
from apps.catalog.models import Charge, Coupon, PlanVersion, Price
from apps.catalog.services import billable_metric_create
from apps.catalog.tests.factories import CouponFactory, PlanFactory, add_charge

pytestmark = pytest.mark.django_db


@pytest.fixture
def peak_version():
    billable_metric_create(code="api_calls", name="API calls", aggregation="count")
    plan = PlanFactory(prices=[])
    version = PlanVersion.objects.create(plan=plan, number=1)
    price = add_charge(version, name="Calls", kind="usage", metric_code="api_calls", price_model="per_unit",
                       amount=Decimal("0.01"))  # fmt: skip
    Charge.objects.filter(pk=price.charge_id).update(peak_start_hour=9, peak_end_hour=18)
    Price.objects.create(charge_id=price.charge_id, currency="USD", amount=Decimal("0.02"), time_window="peak")
    return version


def test_the_prices_table_reads_in_chinese_under_zh_hans(peak_version):
    with translation.override("zh-hans"):
        table = str(prices_table(peak_version))
    assert "USD（高峰时段）" in table and "USD（非高峰时段）" in table
    assert "指标 api_calls" in table and "高峰时段 09:00–18:00" in table
    assert "peak hours" not in table and "metric" not in table


def test_the_prices_table_reads_in_english_under_english(peak_version):
    with translation.override("en"):
        table = str(prices_table(peak_version))
    assert "USD (peak hours)" in table and "USD (off-peak hours)" in table
    assert "metric api_calls" in table and "peak hours 09:00–18:00" in table


@pytest.mark.parametrize(
    ("duration", "periods", "english", "chinese"),
    [("once", None, "Once", "一次"), ("forever", None, "Forever", "永久"), ("repeating", 3, "3 periods", "3 个周期"),
     ("repeating", 1, "1 period", "1 个周期")],
)  # fmt: skip
def test_a_coupons_duration_column_reads_in_the_staffs_language(duration, periods, english, chinese):
    coupon = CouponFactory(percent_off=Decimal("10"), duration=duration, duration_in_periods=periods)
    column = CouponAdmin(Coupon, None).duration_label
    with translation.override("en"):
        assert column(coupon) == english
    with translation.override("zh-hans"):
        assert column(coupon) == chinese


def test_the_plan_version_page_shows_chinese_labels_to_chinese_staff(client, superuser, peak_version):
    client.force_login(superuser)
    response = client.get(
        reverse("admin:catalog_planversion_change", args=[peak_version.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "USD（高峰时段）" in page and "(peak hours)" not in page
