"""Simplified Chinese beyond the portal's pages: the PDF bill and the bill email in the customer's
language (set when the bill is issued), English bills unchanged."""

import subprocess
from decimal import Decimal

import pytest
from django.core import mail

from apps.accounts.tests.factories import CustomerFactory
from apps.invoices.services.emails import invoice_email_message
from apps.invoices.services.pdf import invoice_render_pdf_bytes
from apps.invoices.tests.factories import make_manual_invoice

pytestmark = pytest.mark.django_db


def _pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "bill.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _fonts(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout


def test_pdf_bill_in_simplified_chinese(tmp_path):
    customer = CustomerFactory(name="北京云科技有限公司", preferred_language="zh-hans")
    invoice = make_manual_invoice(customer=customer, lines=[("咨询服务", "1", "1234.50")])
    assert invoice.customer_details["language"] == "zh-hans"
    pdf = invoice_render_pdf_bytes(invoice)
    text = _pdf_text(pdf, tmp_path)
    assert "发票" in text
    assert "北京云科技有限公司" in text
    assert "总计" in text and "US$1,234.50" in text
    assert "2026年1月15日" in text  # the issue date
    assert "第 1 页，共 1 页" in text
    assert "WenQuanYi" in _fonts(pdf, tmp_path)


def test_pdf_bill_in_english_has_no_chinese_font(tmp_path):
    invoice = make_manual_invoice(lines=[("Consulting", "1", "1234.50")])
    pdf = invoice_render_pdf_bytes(invoice)
    text = _pdf_text(pdf, tmp_path)
    assert "INVOICE" in text and "1,234.50 USD" in text and "15 Jan 2026" in text
    assert "Page 1 of 1" in text
    assert "WenQuanYi" not in _fonts(pdf, tmp_path)


def test_language_is_the_customers_when_the_bill_was_issued(tmp_path):
    customer = CustomerFactory(preferred_language="zh-hans")
    invoice = make_manual_invoice(customer=customer)
    customer.preferred_language = "en"
    customer.save()
    assert "发票" in _pdf_text(invoice_render_pdf_bytes(invoice), tmp_path)


def test_bill_email_in_simplified_chinese():
    customer = CustomerFactory(name="北京云科技有限公司", preferred_language="zh-hans")
    invoice = make_manual_invoice(customer=customer, lines=[("咨询服务", "1", "100.00")])
    message = invoice_email_message(invoice=invoice, recipients=["a@example.com"], pdf=b"%PDF-")
    assert message.subject == f"Acme Cloud Ltd. 发票 {invoice.number}"
    assert "北京云科技有限公司，您好：" in message.body
    assert "金额 US$100.00" in message.body
    assert Decimal(invoice.total.amount) == Decimal("100.00")
    assert mail.outbox == []


def test_credit_note_pdf_in_simplified_chinese(tmp_path):
    from apps.invoices.services import credit_note_issue
    from apps.invoices.services.pdf import credit_note_render_pdf_bytes

    customer = CustomerFactory(preferred_language="zh-hans")
    invoice = make_manual_invoice(customer=customer, lines=[("咨询服务", "1", "100.00")])
    credit_note = credit_note_issue(invoice_id=invoice.pk, reason="duplicate", amount=Decimal("20.00"))
    text = _pdf_text(credit_note_render_pdf_bytes(credit_note), tmp_path)
    assert "贷项通知单" in text
    assert "重复收费" in text
    assert f"从发票 {invoice.number} 的应付金额中扣减 US$20.00。" in text


def test_service_refusals_are_in_simplified_chinese_in_the_portal(client, api_client, world):
    """The checks behind the forms (tax ID, billing emails, team) answer in the user's language."""
    from django.urls import reverse

    from apps.accounts.models import Customer

    client.force_login(world.a.user)
    client.post(reverse("portal:language"), {"language": "zh-hans", "next": "/portal/"})
    data = {
        "name": "Alpha Labs", "email": "billing@alpha.example", "billing_emails": "ap@alpha.example",
        "address_line1": "1 Road", "city": "Berlin", "postal_code": "10115", "country": "DE",
        "tax_id": "DE812345678", "tax_id_type": "", "preferred_language": "en",
    }  # fmt: skip
    page = client.post(reverse("portal:billing"), data).content.decode()
    assert "DE812345678 不是有效的德国的增值税号：校验位不匹配（是否输入有误？）。" in page
    assert "check digits" not in page
    assert '<option value="DE" selected>德国</option>' in page  # country names in the user's language
    page = client.post(reverse("portal:billing"), {**data, "tax_id": "FR11123456782"}).content.decode()
    assert "不是客户所在地德国的增值税号：应以 DE 开头" in page
    assert Customer.objects.get(pk=world.a.customer.pk).tax_id == ""
    client.post(reverse("portal:billing"), {**data, "tax_id": "DE136695976"})
    assert "税号: DE136695976 (有效（格式和校验位正确）)" in client.get(reverse("portal:billing")).content.decode()

    page = client.post(reverse("portal:team"), {"email": world.a.user.email, "role": "viewer"}).content.decode()
    assert "此人已在团队中。" in page

    # The customer API speaks the same language for the same user (session).
    api_client.force_login(world.a.user)
    response = api_client.patch("/api/v1/portal/billing-details", {"tax_id": "DE123", "country": "DE"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["tax_id"] == ["DE123 不是有效的德国的增值税号：位数不正确。"]


@pytest.mark.parametrize("scheme", ["customer token", "user token"])
def test_customer_api_speaks_the_users_language_with_a_token(api_client, world, scheme):
    """A token request (no session) answers in the member's language, as a session request does."""
    from apps.accounts.credentials import portal_token_create, user_token_create
    from apps.accounts.models import CustomerMembership
    from apps.accounts.services import customer_membership_language_set

    membership = CustomerMembership.objects.get(customer=world.a.customer, user=world.a.user)
    customer_membership_language_set(membership_id=membership.pk, language="zh-hans")
    if scheme == "customer token":
        secret = portal_token_create(membership_id=membership.pk, name="Export")[1]
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    else:
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {user_token_create(user_id=world.a.user.pk, name='user')[1]}")
    response = api_client.patch("/api/v1/portal/billing-details", {"tax_id": "DE123", "country": "DE"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["tax_id"] == ["DE123 不是有效的德国的增值税号：位数不正确。"]
    assert response["Content-Language"] == "zh-hans"
    # The customer's language when the user chose none.
    customer_membership_language_set(membership_id=membership.pk, language="")
    world.a.customer.preferred_language = "zh-hans"
    world.a.customer.save(update_fields=["preferred_language"])
    response = api_client.patch("/api/v1/portal/billing-details", {"tax_id": "DE123", "country": "DE"}, format="json")
    assert response.json()["fields"]["tax_id"] == ["DE123 不是有效的德国的增值税号：位数不正确。"]
    world.a.customer.preferred_language = "en"
    world.a.customer.save(update_fields=["preferred_language"])
    response = api_client.patch("/api/v1/portal/billing-details", {"tax_id": "DE123", "country": "DE"}, format="json")
    assert "不是" not in response.json()["fields"]["tax_id"][0]
    assert response["Content-Language"] == "en"


@pytest.mark.parametrize(
    ("language", "recurring", "credit", "credit_note", "page"),
    [
        (
            "en",
            "Cloud — Pro (monthly)",
            ["Credit note CN-2026-000001 (invoice INV-2026-000001)",
             "Credited to the balance by credit note CN-2026-000001, tax included."],
            ["2 of 4 unit(s) of 400.00 USD"],
            "Page 1 of 1",
        ),
        (
            "zh-hans",
            "Cloud — Pro（按月）",
            ["贷项通知单 CN-2026-000001（发票 INV-2026-000001）", "已由贷项通知单 CN-2026-000001 记入余额，含税。"],
            ["共 4 个单位（US$400.00）中的 2 个"],
            "第 1 页，共 1 页",
        ),
    ],
)  # fmt: skip
def test_line_names_the_billing_engine_and_credit_notes_write_are_in_the_bills_language(
    tmp_path, language, recurring, credit, credit_note, page
):
    """A credit note credited to the balance, then the next monthly invoice taking it off: every text
    the engine and the credit note write on them (the plan's interval, the credit's name and
    explanation, the credited quantity) is in the customer's language."""
    from djmoney.money import Money

    from apps.billing.services import bill_due_subscriptions, subscription_start
    from apps.catalog.tests.factories import PlanFactory
    from apps.invoices.models import Invoice
    from apps.invoices.services import CreditNoteLineRequest, credit_note_issue
    from apps.invoices.services.pdf import credit_note_render_pdf_bytes
    from apps.payments.services import invoice_mark_paid
    from apps.subscriptions.periods import utc

    customer = CustomerFactory(name="北京云科技有限公司", currency="USD", preferred_language=language)
    plan = PlanFactory(name="Pro", product__name="Cloud", prices=[Money("100.00", "USD")])
    subscription = subscription_start(customer=customer, plan=plan, quantity=4, now=utc(2026, 1, 1))
    january = invoice_mark_paid(invoice_id=Invoice.objects.get(subscription=subscription).pk, now=utc(2026, 1, 2))
    note = credit_note_issue(
        invoice_id=january.pk, reason="order_change",
        lines=[CreditNoteLineRequest(january.lines.get().pk, quantity=Decimal(2))], now=utc(2026, 1, 10),
    )  # fmt: skip
    bill_due_subscriptions(now=utc(2026, 2, 1, 1))
    february = Invoice.objects.filter(subscription=subscription).order_by("period_start_at").last()

    for pages, expected in [
        (_pdf_pages(credit_note_render_pdf_bytes(note), tmp_path), [recurring, *credit_note]),
        (_pdf_pages(invoice_render_pdf_bytes(february), tmp_path), [recurring, *credit]),
    ]:
        assert len(pages) == 1, pages
        text = " ".join(pages[0].split())  # lines wrapped in their column are read as one
        for phrase in expected:
            assert " ".join(phrase.split()) in text, (phrase, text)
        assert page in text
    assert february.total == Money("200.00", "USD")  # 400.00, less the 200.00 credited


def _pdf_pages(pdf: bytes, tmp_path) -> list[str]:
    path = tmp_path / "document.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return text.rstrip("\f").split("\f")


def test_a_billing_run_names_each_customers_recurring_line_in_their_language():
    """Renewals billed together (in bulk, one recurring line computed per plan and period) are still
    named in each customer's own language."""
    from djmoney.money import Money

    from apps.billing.services import bill_due_subscriptions, subscription_start
    from apps.catalog.tests.factories import PlanFactory
    from apps.invoices.models import InvoiceLine
    from apps.subscriptions.periods import utc

    plan = PlanFactory(name="Pro", product__name="Cloud", prices=[Money("100.00", "USD")], interval_count=3)
    for name, language in [("English Ltd", "en"), ("北京云科技有限公司", "zh-hans"), ("Other Ltd", "en")]:
        customer = CustomerFactory(name=name, currency="USD", preferred_language=language)
        subscription_start(customer=customer, plan=plan, now=utc(2026, 1, 1))

    run = bill_due_subscriptions(now=utc(2026, 4, 1, 1))

    assert run.invoiced_count == 3
    renewals = InvoiceLine.objects.filter(invoice__period_start_at=utc(2026, 4, 1)).order_by("invoice__customer_id")
    assert [line.description for line in renewals] == [
        "Cloud — Pro (every 3 months)", "Cloud — Pro（每 3 个月）", "Cloud — Pro (every 3 months)",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("language", "expected", "page"),
    [
        (
            "en",
            [
                "Unused time on Cloud — Pro ×2",
                "Remaining time on Cloud — Pro ×3",
                "Cloud — Pro: API calls (usage)",
                "Discount: Spring offer (20 % off)",
            ],
            "Page 1 of {pages}",
        ),
        (
            "zh-hans",
            [
                "Cloud — Pro ×2 的未使用时间",
                "Cloud — Pro ×3 的剩余时间",
                "Cloud — Pro: API calls（用量）",
                "折扣：Spring offer（优惠 20 %）",
            ],
            "第 1 页，共 {pages} 页",
        ),
    ],
)  # fmt: skip
def test_proration_usage_and_discount_lines_are_in_the_bills_language(tmp_path, language, expected, page):
    """A seat added mid-January (prorated onto the next invoice), API calls metered, a 20 % coupon: the
    February bill names its proration, usage and discount lines in the customer's language; an English
    customer's stay as they were."""
    from djmoney.money import Money

    from apps.billing.constants import ChangeTiming
    from apps.billing.services import bill_due_subscriptions, subscription_change, subscription_start
    from apps.catalog.services import billable_metric_create, coupon_create
    from apps.catalog.tests.factories import PlanFactory, add_charge
    from apps.invoices.models import Invoice
    from apps.subscriptions.periods import utc
    from apps.subscriptions.services import coupon_redeem
    from apps.usage.services import usage_events_ingest

    customer = CustomerFactory(name="北京云科技有限公司", currency="USD", preferred_language=language)
    billable_metric_create(code="api_calls", name="API calls", aggregation="count")
    plan = PlanFactory(name="Pro", product__name="Cloud", prices=[Money("100.00", "USD")])
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    subscription = subscription_start(customer=customer, plan=plan, quantity=2, now=utc(2026, 1, 1))
    coupon = coupon_create(code="spring", name="Spring offer", discount_type="percentage", percent_off=Decimal("20"))
    coupon_redeem(coupon=coupon, subscription=subscription, now=utc(2026, 1, 2))
    usage_events_ingest(
        events=[
            {"transaction_id": f"call-{n}", "external_customer_id": customer.external_id, "metric_code": "api_calls",
             "timestamp": utc(2026, 1, 5, n).isoformat(), "properties": {}}
            for n in range(3)
        ],
        now=utc(2026, 1, 6),
    )  # fmt: skip
    subscription_change(
        subscription_id=subscription.pk, quantity=3, timing=ChangeTiming.NOW, now=utc(2026, 1, 16)
    )  # prorated onto the next invoice
    bill_due_subscriptions(now=utc(2026, 2, 1, 1))
    february = Invoice.objects.filter(subscription=subscription).order_by("period_start_at").last()
    descriptions = [line.description for line in february.lines.all()]
    for phrase in expected:
        assert phrase in descriptions, (phrase, descriptions)

    pages = _pdf_pages(invoice_render_pdf_bytes(february), tmp_path)
    text = " ".join(" ".join(pages).split())  # lines wrapped in their column are read as one
    for phrase in expected:
        assert " ".join(phrase.split()) in text, (phrase, text)
    assert page.format(pages=len(pages)) in text


def test_a_billing_run_names_each_customers_usage_line_in_their_language():
    """Usage billed in bulk (the billing run's chunks) is named "(usage)" / "（用量）" per customer."""
    from djmoney.money import Money

    from apps.billing.services import bill_due_subscriptions, subscription_start
    from apps.catalog.services import billable_metric_create
    from apps.catalog.tests.factories import PlanFactory, add_charge
    from apps.invoices.models import InvoiceLine
    from apps.subscriptions.periods import utc
    from apps.usage.services import usage_events_ingest

    billable_metric_create(code="api_calls", name="API calls", aggregation="count")
    plan = PlanFactory(name="Pro", product__name="Cloud", prices=[Money("100.00", "USD")])
    add_charge(
        plan.versions.get(), name="API calls", price_model="per_unit", kind="usage", metric_code="api_calls",
        amount=Decimal("0.01"),
    )  # fmt: skip
    for name, language in [("English Ltd", "en"), ("北京云科技有限公司", "zh-hans")]:
        customer = CustomerFactory(name=name, currency="USD", preferred_language=language)
        subscription_start(customer=customer, plan=plan, now=utc(2026, 1, 1))
        usage_events_ingest(
            events=[{"transaction_id": f"{customer.pk}-call", "external_customer_id": customer.external_id,
                     "metric_code": "api_calls", "timestamp": utc(2026, 1, 5).isoformat(), "properties": {}}],
            now=utc(2026, 1, 6),
        )  # fmt: skip

    run = bill_due_subscriptions(now=utc(2026, 2, 1, 1))

    assert run.invoiced_count == 2
    usage = InvoiceLine.objects.filter(kind="usage").order_by("invoice__customer_id")
    assert [line.description for line in usage] == ["Cloud — Pro: API calls (usage)", "Cloud — Pro: API calls（用量）"]
