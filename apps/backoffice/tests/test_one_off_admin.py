"""One-off charges in the admin: the customer page's entries, the pending-items admin (add, change,
delete, filters, read-only once billed) and the one-off invoice page, with field errors that write
nothing."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from djmoney.money import Money

from apps.accounts.roles import BILLING_OPERATOR, SUPPORT
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.billing.services import bill_due_subscriptions
from apps.billing.services.one_off import OneOffCharge, invoice_item_create
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.constants import BillingReason, InvoiceStatus
from apps.invoices.models import Invoice, InvoiceItem, TaxRate
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:invoices_invoiceitem_add")
LIST_URL = reverse("admin:invoices_invoiceitem_changelist")


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0
    settings.INVOICE_GROUPING = "per_subscription"


def staff_in(role: str):
    user = UserFactory(username=role.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def operator(client):
    user = staff_in(BILLING_OPERATOR)
    client.force_login(user)
    return user


@pytest.fixture
def customer():
    return CustomerFactory(currency="USD", name="Acme Ltd.")


def _item_post(customer, **changes) -> dict:
    data = {
        "customer": customer.pk, "description": "Setup fee", "quantity": "1", "unit_price": "250.00",
        "product": "", "tax_rate": "", "period_start_at_0": "", "period_start_at_1": "", "period_end_at_0": "",
        "period_end_at_1": "",
    }  # fmt: skip
    return {**data, **changes}


def test_the_customer_page_offers_the_one_off_entries_by_role(client, customer):
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    client.force_login(staff_in(BILLING_OPERATOR))
    page = client.get(url).content.decode()
    assert f'href="{ADD_URL}?customer={customer.pk}" id="customer-add-invoice-item"' in page
    assert 'id="customer-one-off-invoice"' in page

    client.force_login(staff_in(SUPPORT))
    page = client.get(url).content.decode()
    assert 'id="customer-add-invoice-item"' not in page
    assert 'id="customer-one-off-invoice"' not in page
    assert 'id="customer-pending-items"' in page


def test_an_operator_adds_a_pending_item_and_changes_it(client, operator, customer):
    vat = TaxRate.objects.create(name="VAT", percentage=Decimal("20"), country="GB")
    assert client.get(f"{ADD_URL}?customer={customer.pk}").context["adminform"].form.initial["customer"] == str(
        customer.pk
    )

    response = client.post(ADD_URL, _item_post(customer, quantity="3", unit_price="33.333", tax_rate=vat.pk))

    assert response.status_code == 302, response.context["adminform"].form.errors
    item = InvoiceItem.objects.get()
    assert (item.customer_id, item.kind, item.amount, item.tax_rate_id, item.created_by_id) == (
        customer.pk, "one_off", Money("100.00", "USD"), vat.pk, operator.pk,
    )  # fmt: skip
    change_url = reverse("admin:invoices_invoiceitem_change", args=[item.pk])
    response = client.post(change_url, _item_post(customer, quantity="2", unit_price="10.005"))
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.quantity, item.amount) == (Decimal("2"), Money("20.01", "USD"))
    listed = client.get(LIST_URL, {"status": "pending", "q": "Setup"})
    assert [row.pk for row in listed.context["cl"].result_list] == [item.pk]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "abc"}, "quantity"),
        ({"unit_price": "-5"}, "unit_price"),
        ({"description": ""}, "description"),
        ({"period_start_at_0": "2026-02-01", "period_start_at_1": "00:00"}, "period_end_at"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_writes_nothing(client, operator, customer, changes, field):
    response = client.post(ADD_URL, _item_post(customer, **changes))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not InvoiceItem.objects.exists()


def test_a_billed_item_is_read_only_and_links_to_its_invoice(client, operator, customer):
    subscription = make_subscription(customer=customer, plan=PlanFactory(prices=[Money("10.00", "USD")]),
                                     started_at=utc(2026, 1, 1))  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 1, 1))
    item = invoice_item_create(
        customer_id=customer.pk,
        charge=OneOffCharge(quantity=1, unit_amount="5", description="SIM"),
        now=utc(2026, 1, 2),
    )
    bill_due_subscriptions(now=utc(2026, 2, 1))
    invoice = Invoice.objects.get(subscription=subscription, period_start_at=utc(2026, 2, 1))
    change_url = reverse("admin:invoices_invoiceitem_change", args=[item.pk])

    page = client.get(change_url)
    posted = client.post(change_url, _item_post(customer, quantity="9"))
    deleted = client.post(reverse("admin:invoices_invoiceitem_delete", args=[item.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert reverse("admin:invoices_invoice_change", args=[invoice.pk]) in page.content.decode()
    assert (posted.status_code, deleted.status_code) == (403, 403)
    item.refresh_from_db()
    assert (item.quantity, item.invoice_id) == (Decimal("1"), invoice.pk)
    assert [row.pk for row in client.get(LIST_URL, {"status": "billed"}).context["cl"].result_list] == [item.pk]


def _invoice_post(**lines) -> dict:
    data = {"memo": "PO 77", "due_on": "", "lines-TOTAL_FORMS": "3", "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "100"}  # fmt: skip
    data.update(lines)
    return data


def test_the_one_off_invoice_page_issues_an_invoice_at_once(client, operator, customer):
    url = reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk])
    assert client.get(url).status_code == 200

    response = client.post(
        url,
        _invoice_post(**{
            "finalize": "on",
            "lines-0-description": "Installation", "lines-0-quantity": "1", "lines-0-unit_price": "1200",
            "lines-2-description": "Gateway", "lines-2-quantity": "4", "lines-2-unit_price": "19.995",
        }),
    )  # fmt: skip

    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:invoices_invoice_change", args=[invoice.pk])
    assert (invoice.billing_reason, invoice.status, invoice.memo, invoice.total) == (
        BillingReason.MANUAL, InvoiceStatus.OPEN, "PO 77", Money("1279.98", "USD"),
    )  # fmt: skip
    assert [line.description for line in invoice.lines.order_by("position")] == ["Installation", "Gateway"]


def test_the_one_off_invoice_page_shows_a_bad_line_on_its_field_and_writes_nothing(client, operator, customer):
    url = reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk])

    response = client.post(
        url,
        _invoice_post(**{
            "lines-0-description": "Installation", "lines-0-quantity": "1", "lines-0-unit_price": "1200",
            "lines-1-description": "Refund?", "lines-1-quantity": "-2", "lines-1-unit_price": "5",
        }),
    )  # fmt: skip

    assert response.status_code == 200
    assert response.context["lines"].forms[1].errors == {"quantity": ["Must be greater than zero."]}
    assert response.context["lines"].forms[0].errors == {}
    assert not Invoice.objects.exists()


def test_support_may_not_open_the_one_off_invoice_page(client, customer):
    client.force_login(staff_in(SUPPORT))

    response = client.get(reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk]))

    assert response.status_code == 403
