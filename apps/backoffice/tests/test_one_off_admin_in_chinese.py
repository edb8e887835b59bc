"""The one-off charge pages and the errors of the services behind them, for a staff user who chose
Simplified Chinese: labels, help texts, filters, messages and the services' field errors are Chinese,
and nothing is written when a service refuses."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.accounts.models import StaffPreference
from apps.accounts.roles import BILLING_OPERATOR
from apps.accounts.tests.factories import CustomerFactory, UserFactory
from apps.billing.services.one_off import OneOffCharge, invoice_item_create
from apps.invoices.models import Invoice, InvoiceItem

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:invoices_invoiceitem_add")
LIST_URL = reverse("admin:invoices_invoiceitem_changelist")


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.INVOICE_DRAFT_GRACE_HOURS = 0  # a one-off invoice is issued at once
    settings.INVOICE_GROUPING = "per_subscription"


@pytest.fixture
def operator(client):
    user = UserFactory(username="wang.fang", is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_OPERATOR))
    StaffPreference.objects.create(user=user, language="zh-hans")
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


def _invoice_post(**lines) -> dict:
    data = {"memo": "", "due_on": "", "lines-TOTAL_FORMS": "3", "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "100"}  # fmt: skip
    return {**data, **lines}


def test_the_add_item_page_is_in_chinese(client, operator, customer):
    page = client.get(f"{ADD_URL}?customer={customer.pk}", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    labels = ("单价", "以客户的币种计；小数位数可以多于该币种。", "打印在账单上。", "税率", "周期开始时间", "产品")
    for chinese in labels:
        assert chinese in page
    for english in ("In the customer's currency", "Printed on the bill", "Empty: taxed at the customer's rate"):
        assert english not in page


def test_a_service_refusal_on_the_add_item_page_is_a_chinese_field_error_and_writes_nothing(client, operator, customer):
    response = client.post(ADD_URL, _item_post(customer, quantity="0"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["quantity"] == ["必须大于零。"]
    assert not InvoiceItem.objects.exists()


def test_the_pending_items_list_filters_and_badges_are_in_chinese(client, operator, customer):
    invoice_item_create(
        customer_id=customer.pk, charge=OneOffCharge(quantity=1, unit_amount=10, description="Setup"), actor=None
    )

    page = client.get(LIST_URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "待计费（下一张发票）" in page  # the filter
    assert "待计费：计入下一张发票" in page  # the row's status
    assert "Pending: the next invoice" not in page


def test_the_one_off_invoice_page_and_its_errors_are_in_chinese(client, operator, customer):
    url = reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for chinese in ("为 Acme Ltd. 开具的一次性收费发票", "明细（空行会被忽略）", "单价（USD）", "立即开具", "创建发票"):
        assert chinese in page
    assert "Create the invoice" not in page

    response = client.post(
        url,
        _invoice_post(**{
            "lines-0-description": "Installation", "lines-0-quantity": "1", "lines-0-unit_price": "1200",
            "lines-1-description": "Refund?", "lines-1-quantity": "-2", "lines-1-unit_price": "5",
            "lines-2-description": "Visit", "lines-2-quantity": "1", "lines-2-unit_price": "50",
            "lines-2-period_start_at": "2026-03-02 00:00", "lines-2-period_end_at": "2026-03-01 00:00",
        }),
        HTTP_ACCEPT_LANGUAGE="en",
    )  # fmt: skip

    assert response.status_code == 200
    assert response.context["lines"].forms[1].errors == {"quantity": ["必须大于零。"]}
    assert response.context["lines"].forms[2].errors == {"period_end_at": ["须晚于期间的开始时间。"]}
    assert "请更正下面的错误：未创建任何内容。" in response.content.decode()
    assert not Invoice.objects.exists()


def test_the_one_off_invoice_success_message_is_in_chinese(client, operator, customer):
    url = reverse("admin:accounts_customer_one_off_invoice", args=[customer.pk])

    response = client.post(
        url,
        _invoice_post(**{"lines-0-description": "Installation", "lines-0-quantity": "1", "lines-0-unit_price": "99"}),
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    invoice = Invoice.objects.get()
    [message] = [str(message) for message in response.context["messages"]]
    assert message.startswith(f"一次性发票已开具，编号 {invoice.number}：")
    assert "99.00" in message
