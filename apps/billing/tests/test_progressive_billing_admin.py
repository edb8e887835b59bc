"""Progressive billing in the admin: thresholds on a plan version (inline, checked by the service's
rules), a subscription's own thresholds (their page, refusals as form errors), and interim invoices
badged and filtered in the invoice list."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.billing.services import subscription_start
from apps.billing.services.progressive import subscription_progressive_evaluate
from apps.catalog.models import ProgressiveBilling
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create
from apps.catalog.tests.factories import ProductFactory
from apps.core.tests.test_admin import change_form_data
from apps.subscriptions.models import SubscriptionEvent, SubscriptionProgressiveBilling
from apps.subscriptions.periods import utc
from apps.usage.services import usage_events_ingest

pytestmark = pytest.mark.django_db

D = Decimal
ADD = "admin:subscriptions_subscriptionprogressivebilling_add"


@pytest.fixture
def plan():
    billable_metric_create(code="api_calls", name="API calls", aggregation="sum", field_name="calls")
    return plan_create(
        product=ProductFactory(name="Cloud"),
        code="metered",
        name="Metered",
        charges=[
            ChargeInput(
                name="API calls",
                kind="usage",
                metric_code="api_calls",
                price_model="per_unit",
                prices=[PriceInput(currency="USD", amount=D("1.00"))],
            )
        ],
    )


def _inline_prefix(response) -> str:
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.model is ProgressiveBilling:
            return inline.formset.prefix
    raise AssertionError("no progressive billing inline")


def _nested(data: dict, formset) -> None:
    """The nested formsets' management forms and rows (charges → prices → tiers), as a browser sends them."""
    for form in [formset.management_form, *formset.forms]:
        for name in form.fields:
            value = form[name].value()
            if value is not None and not isinstance(value, list | tuple):
                data[form.add_prefix(name)] = value
    for form in formset.forms:
        for nested in getattr(form, "nested_formsets", ()):
            _nested(data, nested)


def _version_post(client, version, **row):
    url = reverse("admin:catalog_planversion_change", args=[version.pk])
    page = client.get(url)
    prefix = _inline_prefix(page)
    data = change_form_data(page)
    for inline in page.context["inline_admin_formsets"]:
        _nested(data, inline.formset)
    data[f"{prefix}-TOTAL_FORMS"] = "1"
    data.update({f"{prefix}-0-{name}": value for name, value in row.items()})
    data[f"{prefix}-0-plan_version"] = str(version.pk)
    return client.post(url, data)


def test_thresholds_are_set_on_a_plan_versions_page(client, superuser, plan):
    client.force_login(superuser)
    version = plan.versions.get()

    response = _version_post(client, version, currency="USD", thresholds="1200, 500", every="250")

    assert response.status_code == 302, response.context and response.context["errors"]
    row = ProgressiveBilling.objects.get()
    assert (row.currency, row.amounts, row.every, row.scope) == ("USD", ["500", "1200"], D(250), "period")


def test_lifetime_thresholds_are_chosen_on_a_plan_versions_page_and_a_bad_scope_is_a_form_error(
    client, superuser, plan
):
    client.force_login(superuser)
    version = plan.versions.get()

    bad = _version_post(client, version, currency="USD", thresholds="500", every="", scope="forever")
    assert bad.status_code == 200
    assert "Select a valid choice." in bad.content.decode()
    assert not ProgressiveBilling.objects.exists()

    response = _version_post(client, version, currency="USD", thresholds="500", every="", scope="lifetime")

    assert response.status_code == 302, response.context and response.context["errors"]
    assert ProgressiveBilling.objects.get().scope == "lifetime"


def test_bad_thresholds_on_a_plan_version_are_form_errors_and_nothing_is_saved(client, superuser, plan):
    client.force_login(superuser)
    version = plan.versions.get()

    response = _version_post(client, version, currency="USD", thresholds="500, -3", every="")

    assert response.status_code == 200
    assert "Each threshold must be an amount above zero (got -3)." in response.content.decode()
    assert not ProgressiveBilling.objects.exists()


def test_a_subscriptions_own_thresholds_are_set_on_their_page_and_shown_on_the_subscription(client, superuser, plan):
    client.force_login(superuser)
    subscription = subscription_start(customer=CustomerFactory(currency="USD"), plan=plan, now=utc(2026, 4, 1))
    page = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    assert "Set thresholds" in client.get(page).content.decode()

    bad = client.post(reverse(ADD), {"subscription": subscription.pk, "thresholds": "abc", "every": "", "_save": "1"})
    assert bad.status_code == 200
    assert list(bad.context["adminform"].form.errors) == ["thresholds"]
    assert not SubscriptionProgressiveBilling.objects.exists()

    bad_scope = client.post(
        reverse(ADD),
        {"subscription": subscription.pk, "thresholds": "100", "every": "", "scope": "ever", "_save": "1"},
    )
    assert bad_scope.status_code == 200
    assert list(bad_scope.context["adminform"].form.errors) == ["scope"]
    assert not SubscriptionProgressiveBilling.objects.exists()

    response = client.post(
        reverse(ADD),
        {"subscription": subscription.pk, "thresholds": "100, 300", "every": "", "scope": "lifetime", "_save": "1"},
    )

    assert response.status_code == 302
    assert response.url == page
    assert SubscriptionProgressiveBilling.objects.get().amounts == ["100", "300"]
    assert SubscriptionProgressiveBilling.objects.get().scope == "lifetime"
    assert SubscriptionEvent.objects.filter(subscription=subscription, type="progressive_set", actor=superuser).exists()
    assert (
        "at 100.00 USD, 300.00 USD of the usage since the subscription started (its own)"
        in client.get(page).content.decode()
    )


def test_interim_invoices_are_badged_and_filtered_in_the_invoice_list(client, superuser, plan):
    client.force_login(superuser)
    customer = CustomerFactory(currency="USD", external_id="acme")
    subscription = subscription_start(customer=customer, plan=plan, now=utc(2026, 4, 1))
    SubscriptionProgressiveBilling.objects.create(subscription=subscription, amounts=["100"])
    usage_events_ingest(
        events=[
            {"transaction_id": "t1", "external_customer_id": "acme", "metric_code": "api_calls",
             "timestamp": utc(2026, 4, 5).isoformat(), "properties": {"calls": "150"}},
        ],
        now=utc(2026, 4, 5, 1),
    )  # fmt: skip
    interim = subscription_progressive_evaluate(subscription_id=subscription.pk, now=utc(2026, 4, 5, 2))
    changelist = reverse("admin:invoices_invoice_changelist")

    html = client.get(changelist, {"billing_reason": "subscription_threshold"}).content.decode()

    assert interim.number in html
    assert "Interim invoice (usage threshold)" in html
    assert "#2563eb" in html  # the interim badge's colour
    assert interim.number not in client.get(changelist, {"billing_reason": "subscription_cycle"}).content.decode()
    detail = client.get(reverse("admin:invoices_invoice_change", args=[interim.pk])).content.decode()
    assert "Usage already billed" not in detail  # the first interim invoice deducts nothing
    assert "Interim invoice (usage threshold)" in detail
