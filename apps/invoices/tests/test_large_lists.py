"""Lists over large tables: keyset pagination in the API, the admin's capped count and indexed search,
and (PostgreSQL) the plans that make them cheap at a million invoices."""

import pytest
from django.db import connection
from django.urls import reverse

from apps.accounts.tests.factories import CustomerFactory
from apps.core.admin import CappedCountPaginator
from apps.invoices.models import Invoice
from apps.invoices.tests.factories import make_manual_invoice

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api:invoice-list")
CHANGELIST_URL = reverse("admin:invoices_invoice_changelist")
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")


def _invoices(count: int, **kwargs) -> list[Invoice]:
    customer = kwargs.pop("customer", None) or CustomerFactory()
    return [make_manual_invoice(customer=customer, **kwargs) for _ in range(count)]


def _walk(api_client, url: str) -> list[int]:
    ids: list[int] = []
    while url:
        response = api_client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert "count" not in body
        ids += [row["id"] for row in body["results"]]
        url = body["next"]
    return ids


def test_a_cursor_walks_the_list_in_its_order_and_sees_every_invoice_once(api_client, superuser):
    _invoices(4)
    _invoices(3, finalize=False)
    api_client.force_authenticate(superuser)
    by_page = [row["id"] for row in api_client.get(LIST_URL, {"page_size": 100}).json()["results"]]

    walked = _walk(api_client, f"{LIST_URL}?cursor=&page_size=3")

    assert walked == by_page
    assert len(walked) == 7


def test_a_cursor_follows_the_requested_ordering_and_filters(api_client, superuser):
    customer = CustomerFactory()
    mine = _invoices(3, customer=customer)
    _invoices(2)
    api_client.force_authenticate(superuser)

    walked = _walk(api_client, f"{LIST_URL}?cursor=&page_size=2&ordering=id&customer={customer.pk}")

    assert walked == [invoice.pk for invoice in mine]


def test_the_previous_link_goes_back(api_client, superuser):
    _invoices(5)
    api_client.force_authenticate(superuser)
    first = api_client.get(LIST_URL, {"cursor": "", "page_size": 2}).json()
    second = api_client.get(first["next"]).json()

    back = api_client.get(second["previous"]).json()

    assert [row["id"] for row in back["results"]] == [row["id"] for row in first["results"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"cursor": "not-a-cursor"}, "Give a cursor from a previous page's links."),
        ({"cursor": "", "page": "2"}, "Give either a page or a cursor, not both."),
        ({"cursor": "", "ordering": "issued_at"}, "A cursor needs an ordering by a field that is never empty, not "
         "issued_at."),
    ],
)  # fmt: skip
def test_a_cursor_that_cannot_work_is_a_field_error(api_client, superuser, query, message):
    _invoices(1)
    api_client.force_authenticate(superuser)

    response = api_client.get(LIST_URL, query)

    assert response.status_code == 400
    assert response.json()["fields"] == {"cursor": [message]}


def test_page_numbers_still_count(api_client, superuser):
    _invoices(3)
    api_client.force_authenticate(superuser)

    body = api_client.get(LIST_URL, {"page": "2", "page_size": "2"}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 1


def test_the_admin_counts_up_to_the_cap_and_says_there_are_more(client, superuser, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    _invoices(3)
    client.force_login(superuser)

    response = client.get(CHANGELIST_URL)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    assert response.context["cl"].full_result_count is None  # no second count of the whole table
    assert "2+ invoices" in " ".join(response.content.decode().split())


def test_the_admin_count_is_exact_under_the_cap(client, superuser):
    _invoices(3)
    client.force_login(superuser)

    response = client.get(CHANGELIST_URL)

    assert response.context["cl"].result_count == 3
    assert "3 invoices" in " ".join(response.content.decode().split())
    assert "3+" not in response.content.decode()


def test_admin_search_by_number_customer_name_and_external_id(client, superuser):
    acme = CustomerFactory(name="Acme Cloud", external_id="cus_acme")
    globex = CustomerFactory(name="Globex", external_id="cus_globex")
    acme_invoices = _invoices(2, customer=acme)
    globex_invoice = _invoices(1, customer=globex)[0]
    client.force_login(superuser)

    def found(term: str) -> set[int]:
        response = client.get(CHANGELIST_URL, {"q": term})
        assert response.status_code == 200
        return {invoice.pk for invoice in response.context["cl"].result_list}

    assert found("acme") == {invoice.pk for invoice in acme_invoices}
    assert found("CUS_GLOB") == {globex_invoice.pk}
    assert found(globex_invoice.number[-6:]) == {globex_invoice.pk}
    assert found(f"globex {globex_invoice.number}") == {globex_invoice.pk}  # every word must match
    assert found(f"acme {globex_invoice.number}") == set()
    assert found("nobody") == set()


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the plan a large table gets, on a small one
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@on_postgresql
def test_the_first_page_reads_the_ordering_index_without_sorting(api_client, superuser):
    from apps.invoices.selectors import invoice_list, invoices_with_amount_due

    _invoices(3)
    page = invoices_with_amount_due(invoice_list()).order_by("-created_at", "-id")[:51]
    sql, params = page.query.sql_with_params()

    plan = _plan(sql, params)

    assert "invoice_created_idx" in plan
    assert "Sort" not in plan


@on_postgresql
def test_name_search_uses_the_trigram_index():
    from apps.accounts.models import Customer

    CustomerFactory(name="Acme Cloud")
    sql, params = Customer.objects.filter(name__icontains="acme").query.sql_with_params()

    assert "customer_name_trgm_idx" in _plan(sql, params)


@on_postgresql
def test_number_search_matches_the_trigram_index_expression():
    """On a small table PostgreSQL prefers the unique index on number; what matters is that the
    trigram index is on the very expression Django searches with."""
    sql, _ = Invoice.objects.filter(number__icontains="00001").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'invoice_number_trgm_idx'")
        (definition,) = cursor.fetchone()

    assert 'UPPER("invoices_invoice"."number"::text)' in sql
    assert "USING gin (upper((number)::text) gin_trgm_ops)" in definition
