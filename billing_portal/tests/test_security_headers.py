"""Security headers on every response, and pages that run under the Content Security Policy: no inline
script, no event handler attributes (the policy allows scripts from our own files only)."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.models import PlanVersion
from apps.catalog.tests.factories import PlanFactory, add_charge

pytestmark = pytest.mark.django_db

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def _directives(policy: str) -> set[str]:
    return {directive.strip() for directive in policy.split(";")}


def _inline_scripts(html: str) -> list[str]:
    """Executable scripts written into the page (data blocks such as json_script are not executed)."""
    return [
        body.strip()[:80]
        for attributes, body in SCRIPT_TAG.findall(html)
        if "src=" not in attributes and "application/json" not in attributes and body.strip()
    ]


@pytest.mark.parametrize(
    "url", ["/admin/login/", "/portal/login/", "/api/docs/", "/api/redoc/", "/api/schema/", "/healthz"]
)
def test_every_response_carries_the_security_headers(client, url):
    response = client.get(url)

    assert _directives(response["Content-Security-Policy"]) == _directives(POLICY)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_api_responses_carry_them_too(api_client, superuser):
    api_client.force_authenticate(superuser)

    response = api_client.get("/api/v1/customers")

    assert response.status_code == 200
    assert _directives(response["Content-Security-Policy"]) == _directives(POLICY)
    assert response["X-Frame-Options"] == "DENY"


def test_admin_and_docs_pages_have_no_inline_script_or_event_handler(client, superuser):
    customer = CustomerFactory()
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    price = add_charge(version, name="Calls", price_model="per_unit", amount=1)
    client.force_login(superuser)
    urls = [
        reverse("admin:index"),
        reverse("admin:accounts_customer_changelist"),
        reverse("admin:accounts_customer_change", args=[customer.pk]),
        reverse("admin:catalog_price_change", args=[price.pk]),  # the live price calculator
        reverse("admin:invoices_invoice_changelist"),
        reverse("admin:subscriptions_subscription_add"),
        reverse("api-docs"),
        reverse("api-redoc"),
    ]

    for url in urls:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert _inline_scripts(html) == [], url
        assert not EVENT_HANDLER.search(html), (url, EVENT_HANDLER.search(html))


def test_the_price_calculator_reads_its_url_from_the_page(client, superuser):
    version = PlanVersion.objects.create(plan=PlanFactory(prices=[]), number=1)
    price = add_charge(version, name="Calls", price_model="per_unit", amount=1)
    client.force_login(superuser)

    html = client.get(reverse("admin:catalog_price_change", args=[price.pk])).content.decode()

    quote_url = reverse("admin:catalog_price_quote", args=[price.pk])
    assert f'data-calculator-url="{quote_url}"' in html
    assert 'src="/static/catalog/price_calculator.js"' in html


def test_no_template_of_ours_writes_an_inline_script_or_event_handler():
    # Every page template (admin, portal, reports, docs), including those the tests above do not open.
    from django.conf import settings

    offenders = []
    for template in sorted(Path(settings.BASE_DIR).glob("templates/**/*.html")):
        html = template.read_text()
        if _inline_scripts(html) or EVENT_HANDLER.search(html):
            offenders.append(str(template.relative_to(settings.BASE_DIR)))
    assert offenders == []
