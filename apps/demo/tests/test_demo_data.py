import hashlib
import re
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Q, Sum

from apps.accounts.credentials import api_key_authenticate, portal_token_authenticate, user_token_authenticate
from apps.accounts.models import Customer, CustomerMembership, UserToken
from apps.accounts.tests.factories import CustomerFactory
from apps.catalog.models import Plan
from apps.core import clock
from apps.core.money import quantize_amount
from apps.invoices.constants import CreditNoteReason, CreditNoteStatus, InvoiceEventType, InvoiceStatus
from apps.invoices.models import BillingRun, CreditNote, Invoice, InvoiceEvent, InvoiceLine, InvoiceNumberSequence
from apps.payments.models import Payment
from apps.reports.constants import ReportScope
from apps.reports.models import MrrMonth
from apps.reports.services import reports_refresh
from apps.subscriptions.models import ScheduledChange, Subscription
from apps.subscriptions.periods import utc
from apps.subscriptions.tests.factories import make_subscription
from apps.usage.models import UsageEvent

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 20, 12)


def _load() -> str:
    out = StringIO()
    with clock.frozen_at(NOW):
        call_command("load_demo_data", stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Customer, Subscription, Invoice, InvoiceEvent, BillingRun, InvoiceNumberSequence)
    )


def test_load_demo_data_creates_a_realistic_history_once(client):
    output = _load()

    assert "Demo data loaded" in output
    assert 18 + 6 <= Customer.objects.count() <= 25 + 6  # and the usage-based sellers' six (below)
    assert {str(c) for c in Customer.objects.values_list("country", flat=True)} >= {"US", "DE", "FR", "GB", "IE", "NL"}
    assert set(Customer.objects.values_list("currency", flat=True)) == {"USD", "EUR", "GBP"}
    assert Customer.objects.exclude(tax_id="").exists() and Customer.objects.filter(tax_id="").exists()
    # Every demo tax ID passes its check (so EU business customers abroad show the reverse charge).
    assert set(Customer.objects.exclude(tax_id="").values_list("tax_id_status", flat=True)) == {"valid"}
    assert 20 + 10 <= Subscription.objects.count() <= 40 + 10  # the sellers': 2 + 6 SIMs + 2
    # (One customer who left came back 12 days ago.)
    history = Subscription.objects.exclude(status="trialing").exclude(
        started_at=NOW.replace(hour=10) - timedelta(days=12)
    )
    starts = list(history.values_list("started_at", flat=True))
    assert all(NOW - timedelta(days=153) <= start <= NOW - timedelta(days=30) for start in starts)
    # Today's showcase: a trial, a grandfathered price rise, a scheduled downgrade, a test-clock customer.
    assert Subscription.objects.filter(status="trialing").count() == 2
    pro = Plan.objects.get(code="hosting-pro-monthly")
    assert pro.current_version.number == 2 and not pro.current_version.subscriptions.exclude(status="trialing").exists()
    assert ScheduledChange.objects.filter(applied_at=None).count() == 1
    assert ScheduledChange.objects.exclude(applied_at=None).count() == 2  # two customers dropped seats
    assert Customer.objects.filter(test_clock__isnull=False).count() == 1
    assert not BillingRun.objects.filter(failed_count__gt=0).exists()  # every run billed everything
    # A customer whose two subscriptions renew on the same day gets one invoice for both each month.
    # (The IoT seller's customers get one invoice for all their SIMs: below.)
    grouped = (
        Invoice.objects.filter(subscription=None, invoiced_periods__isnull=False)
        .exclude(customer__external_id__startswith="demo-seller-")
        .distinct()
    )
    assert grouped.count() >= 2
    assert all(invoice.invoiced_periods.count() == 2 for invoice in grouped)
    usage = InvoiceLine.objects.filter(kind="usage", charge__name="API requests").first()
    assert usage is not None and usage.quantity > 100_000 and usage.explanation[0].startswith("API requests:")
    seats = InvoiceLine.objects.filter(charge__name="Seats").first()
    assert seats.explanation[:2] == ["Units 1–5: 5 × 10.00 USD", "Units 6–12: 7 × 8.00 USD"]

    # Three drafts wait for review: today's added seats, prorated and invoiced at once, finalized by
    # themselves in 72 hours unless staff finalize them first.
    drafts = list(Invoice.objects.filter(status=InvoiceStatus.DRAFT).order_by("customer__name"))
    assert [draft.customer.name for draft in drafts] == ["Clyde Software Ltd", "Kiezware GmbH", "Northwind Media Group"]
    for draft in drafts:
        assert draft.number is None and draft.issued_at is None
        assert draft.auto_finalize_at == NOW + timedelta(hours=72)
        assert draft.billing_reason == "subscription_update" and draft.total.amount > 0
        assert {line.kind for line in draft.lines.all()} == {"proration"}

    # Staff find them in the admin, with the Finalize action.
    client.force_login(get_user_model().objects.create_superuser("reviewer", "reviewer@example.com", "x"))
    listing = client.get("/admin/invoices/invoice/?status__exact=draft").content.decode()
    assert all(f"Draft #{draft.pk}" in listing for draft in drafts)
    assert 'value="finalize_selected"' in listing  # the bulk action
    page = client.get(f"/admin/invoices/invoice/{drafts[0].pk}/change/").content.decode()
    assert ">Finalize<" in page, page

    # A goodwill credit note: a fifth of one line of a paid bill, credited to the customer's balance.
    credit_note = CreditNote.objects.get()
    assert (
        credit_note.status == CreditNoteStatus.ISSUED and credit_note.reason == CreditNoteReason.PRODUCT_UNSATISFACTORY
    )
    assert credit_note.invoice.status == InvoiceStatus.PAID
    credited_line = credit_note.lines.get().invoice_line
    assert credit_note.subtotal.amount == quantize_amount(credited_line.amount.amount / 5, credit_note.invoice.currency)
    assert credit_note.credit_to_balance == credit_note.total and credit_note.total.amount > 0
    assert credit_note.number in client.get("/admin/invoices/creditnote/").content.decode()

    invoices = list(Invoice.objects.exclude(status=InvoiceStatus.DRAFT))
    assert 50 <= len(invoices) <= 150
    by_status = defaultdict(list)
    for invoice in invoices:
        by_status[invoice.status].append(invoice)
    assert set(by_status) == {InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}
    assert len(by_status[InvoiceStatus.VOID]) == 1 and len(by_status[InvoiceStatus.UNCOLLECTIBLE]) == 1
    assert len(by_status[InvoiceStatus.PAID]) > len(invoices) / 2
    reverse_charged = {str(invoice.customer.country) for invoice in invoices if invoice.reverse_charge}
    assert reverse_charged == {"DE", "FR", "NL", "ES", "BE"}  # the seller is in IE
    # Irish customers pay Irish VAT; EU customers without a VAT number their country's; others none.
    vat = {str(i.customer.country): i.taxes.get().percentage for i in invoices if i.taxes.exists()}
    assert vat == {"IE": Decimal("23"), "DE": Decimal("19"), "FR": Decimal("20")}
    assert not any(i.taxes.exists() for i in invoices if i.reverse_charge or str(i.customer.country) in ("US", "GB"))
    assert f"{len(invoices) + len(drafts)} (" in output and "3 draft" in output and "void" in output

    # Historical issue dates; old bills mostly paid (by bank transfer, after issue), recent ones open.
    assert all(invoice.issued_at < NOW for invoice in invoices)
    assert min(invoice.issued_at for invoice in invoices) < NOW - timedelta(days=60)
    for invoice in by_status[InvoiceStatus.PAID]:
        assert invoice.issued_at < invoice.paid_at <= NOW
        assert invoice.issued_at <= NOW - timedelta(days=30)
    overdue = [i for i in by_status[InvoiceStatus.OPEN] if i.issued_at <= NOW - timedelta(days=30)]
    assert 0 < len(overdue) < len(by_status[InvoiceStatus.PAID]) / 2  # a late payer and a few stragglers
    recent = [invoice for invoice in invoices if invoice.issued_at > NOW - timedelta(days=30)]
    assert recent and all(invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.VOID) for invoice in recent)
    paid_event = InvoiceEvent.objects.filter(type=InvoiceEventType.PAID).first()
    payment = Payment.objects.get(pk=paid_event.data["payment"])
    reference = f"Bank transfer {paid_event.invoice.number}"
    assert (payment.provider, payment.method, payment.reference) == ("manual", "bank_transfer", reference)
    assert paid_event.data == {"payment": payment.pk, "reference": reference, "method": "bank_transfer"}
    assert all(invoice.amount_paid == invoice.total for invoice in by_status[InvoiceStatus.PAID])
    # One bill is paid in part (half, by bank transfer); the rest is still due.
    [partial] = [invoice for invoice in by_status[InvoiceStatus.OPEN] if invoice.amount_paid.amount > 0]
    half = quantize_amount(partial.total.amount / 2, partial.currency)
    assert partial.amount_paid.amount == half
    assert partial.amount_due.amount == partial.total.amount - half
    assert Payment.objects.get(allocations__invoice=partial).reference == f"Part payment {partial.number}"

    # Every issued invoice has its PDF, stored with the hash of its bytes.
    for invoice in invoices:
        assert invoice.number
        assert invoice.pdf, invoice.number
        with invoice.pdf.open("rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == invoice.pdf_sha256

    # Gapless numbers per series: INV-YYYY-000001 … N, and the counter stands at N.
    series = defaultdict(list)
    for invoice in invoices:
        match = re.fullmatch(r"INV-(\d{4})-(\d{6})", invoice.number)
        assert match, invoice.number
        assert int(match[1]) == invoice.issued_at.year
        series[match[1]].append(int(match[2]))
    assert set(series) == {"2025", "2026"}
    for year, numbers in series.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
        assert InvoiceNumberSequence.objects.get(key=f"INV-{year}").last_value == len(numbers)

    # Customers left, shrank and came back during the history: every MRR movement shows on the
    # dashboard, in EUR (shown first) and in USD.
    reports_refresh(full=True, now=NOW)
    movements = MrrMonth.objects.filter(scope=ReportScope.ALL).aggregate(
        **{f"{currency}_{field}": Sum(field, filter=Q(currency=currency))
           for currency in ("EUR", "USD") for field in ("new_mrr", "expansion_mrr", "contraction_mrr",
                                                        "churned_mrr", "reactivation_mrr")}
    )  # fmt: skip
    assert all(value > 0 for key, value in movements.items() if key != "USD_reactivation_mrr"), movements
    assert Subscription.objects.filter(status="canceled", cancellation_reason="Moved to another provider.").count() == 3

    # The portal's customer: what its hosting plan entitles it to, welcome credits, its own budget.
    from apps.alerts.models import Alert
    from apps.demo.demo_data import demo_first_customer
    from apps.subscriptions.entitlements import customer_entitlements
    from apps.wallets.selectors import wallet_list_for_customer

    first = demo_first_customer()
    features = {row["code"] for row in customer_entitlements(customer_id=first.pk)["features"]}
    assert {"seats", "sso", "support"} <= features
    [wallet] = wallet_list_for_customer(customer=first)
    assert wallet.balance > 0
    assert Alert.objects.filter(customer=first, origin="customer", kind="spend").count() == 1

    # A second run creates nothing and says so.
    before = _counts()
    assert "already present" in _load()
    assert _counts() == before

    # Loading the demo takes minutes: the usage-based sellers are checked on the same load.
    _assert_usage_based_sellers_billed_for_last_month(client, output)


def _lines(invoice: Invoice) -> list[tuple[str, Decimal, Decimal]]:
    return [(line.description, line.quantity, line.amount.amount) for line in invoice.lines.order_by("position")]


def _assert_usage_based_sellers_billed_for_last_month(client, output: str) -> None:
    """The demo adds a cloud host, an IoT seller and a CDN, each billed on 1 March for February."""
    # A progress line per seller; NOW is 20 March: the IoT SIMs started on 1 January, the others on
    # 1 February, and every seller customer has an invoice issued on 1 March for February's usage.
    for line in ("Stratus Cloud (cloud host)", "Kite IoT Connect (IoT connectivity)", "Lumen Edge CDN (CDN)"):
        assert f"usage-based seller {line}" in output
    sellers = {c.external_id.removeprefix("demo-seller-"): c for c in Customer.objects.filter(
        external_id__startswith="demo-seller-")}  # fmt: skip
    assert sorted(sellers) == ["cdn-1", "cdn-2", "cloud-1", "cloud-2", "iot-1", "iot-2"]
    issued_on_the_1st = utc(2026, 3, 1, 0, 5)  # by the daily run at 00:05
    march = {key: Invoice.objects.get(customer=c, issued_at=issued_on_the_1st) for key, c in sellers.items()}
    assert {invoice.status for invoice in march.values()} == {InvoiceStatus.OPEN}
    # A few thousand events per seller, not more (the demo loads fast).
    for prefix in ("stratus_", "kite_", "lumen_"):
        assert 1_000 <= UsageEvent.objects.filter(metric__code__startswith=prefix).count() <= 10_000

    # Cloud host: usage only, billed in arrears: VM-hours per region (a dimension price for
    # ap-southeast, the default for us-east) and storage in GB-months; nothing billed in advance.
    vm = "Stratus Cloud (demo cloud host) — Pay as you go: VM-hours"
    cloud = march["cloud-1"]
    assert [d for d, _, _ in _lines(cloud)] == [
        f"{vm} — region ap-southeast (usage)", f"{vm} — region us-east (usage)",
        "Stratus Cloud (demo cloud host) — Pay as you go: Block storage (GB-months) (usage)",
    ]  # fmt: skip
    for line in cloud.lines.all():
        assert line.amount.amount == quantize_amount(line.quantity * line.unit_amount.amount, "USD") > 0
    by_description = {line.description: line for line in cloud.lines.all()}
    assert by_description[f"{vm} — region ap-southeast (usage)"].explanation[1] == "Price for region ap-southeast."
    assert by_description[f"{vm} — region ap-southeast (usage)"].unit_amount.amount == Decimal("0.052")
    assert by_description[f"{vm} — region us-east (usage)"].unit_amount.amount == Decimal("0.04")
    assert not Invoice.objects.filter(customer=sellers["cloud-1"]).exclude(pk=cloud.pk).exists()

    # IoT: four SIMs on one invoice, a fee each in arrears, data beyond the pool, and January's late
    # session (260 MB, after the pool ran out) as its own line: 260 × 0.01 = 2.60.
    plan = "Kite IoT Connect (demo IoT connectivity) — SIM with pooled data"
    iot = _lines(march["iot-1"])
    assert [line for line in iot if "Active SIM" in line[0]] == [
        (f"{plan}: Active SIM (monthly)", Decimal(1), Decimal("2.00"))
    ] * 4
    assert len([line for line in iot if line[0] == f"{plan}: Data (usage beyond the pool)"]) == 4
    assert (f"{plan}: Data (late usage, 1–31 Jan)", Decimal(260), Decimal("2.60")) in iot
    assert len(iot) == 9
    # The smaller fleet stays within its pool: its data lines are 0.00.
    assert [amount for description, _, amount in _lines(march["iot-2"]) if "Data" in description] == [0, 0]

    # CDN: February's 95th percentile per region, requests in packages of 10,000 (rounded up), and
    # March's platform fee in advance.
    cdn = {line.description.split(" — Edge: ")[1]: line for line in march["cdn-1"].lines.all()}
    assert sorted(cdn) == [
        "Bandwidth (95th percentile) — region apac (usage)", "Bandwidth (95th percentile) — region na (usage)",
        "Platform fee (monthly)", "Requests (per 10,000) (usage)",
    ]  # fmt: skip
    requests = cdn["Requests (per 10,000) (usage)"]
    packages = (requests.quantity / 10_000).to_integral_value(rounding=ROUND_CEILING)
    assert requests.amount.amount == packages * Decimal("0.75")
    assert cdn["Bandwidth (95th percentile) — region apac (usage)"].unit_amount.amount == Decimal("1.20")
    assert cdn["Platform fee (monthly)"].amount.amount == Decimal("20.00")

    # Staff see the lines in the admin; the demo portal user views each seller's first customer.
    client.force_login(get_user_model().objects.get(username="reviewer"))
    page = client.get(f"/admin/invoices/invoice/{march['iot-1'].pk}/change/").content.decode()
    assert "Data (late usage, 1–31 Jan)" in page
    call_command("ensure_demo_admin", stdout=StringIO())
    viewer = get_user_model().objects.get(username="demo-customer")
    viewing = CustomerMembership.objects.filter(user=viewer, role="viewer").values_list(
        "customer__external_id", flat=True
    )
    assert sorted(viewing) == ["demo-seller-cdn-1", "demo-seller-cloud-1", "demo-seller-iot-1"]
    client.force_login(viewer)
    client.post("/portal/switch/", {"customer": sellers["cdn-1"].pk})
    page = client.get(f"/portal/invoices/{march['cdn-1'].pk}/").content.decode()
    assert "Bandwidth (95th percentile) — region apac" in page, page[:2000]


def test_load_demo_data_refuses_a_database_with_subscriptions_of_its_own():
    make_subscription(started_at=utc(2026, 1, 1))

    with pytest.raises(CommandError, match="empty database"):
        _load()

    assert not Customer.objects.filter(external_id__startswith="demo-").exists()
    assert Invoice.objects.count() == 0


def _field(output: str, label: str, occurrence: int = 0) -> str:
    return re.findall(rf"{label}:\s+(\S+)", output)[occurrence]


def test_ensure_demo_admin_creates_a_superuser_with_a_fresh_password_a_token_and_a_portal_user():
    customer = CustomerFactory(external_id="demo-0001", name="Nordwind Logistik GmbH")
    out = StringIO()

    call_command("ensure_demo_admin", stdout=out)

    output = out.getvalue()
    assert "http://127.0.0.1:8000/admin/" in output
    assert _field(output, "Username") == "admin"
    password = _field(output, "Password")
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff
    token = _field(output, "API token")
    assert token.startswith("bpu_")
    assert f"Authorization: Token {token}" in output
    assert user_token_authenticate(token).user == admin
    assert token not in UserToken.objects.get(user=admin).key_hash  # stored hashed
    usage_key = _field(output, "Usage API key").split()[0]
    assert api_key_authenticate(usage_key) is not None

    portal_password = _field(output, "Password", 1)
    portal_user = authenticate(username="demo-customer", password=portal_password)
    assert portal_user is not None and not portal_user.is_staff and not portal_user.is_superuser
    membership = CustomerMembership.objects.get(user=portal_user)
    assert membership.customer == customer
    assert "Portal:   http://127.0.0.1:8000/portal/" in output
    customer_token = _field(output, "Customer API token").split()[0]
    assert customer_token.startswith("bpc_")
    assert f"Authorization: Bearer {customer_token}" in output
    assert portal_token_authenticate(customer_token).membership == membership
    assert not UserToken.objects.filter(user=portal_user).exists()  # no user-wide token for the demo customer

    # Again: a new password (the old one stops working), no duplicate users.
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out)
    new_password = _field(out.getvalue(), "Password")
    assert new_password != password
    assert authenticate(username="admin", password=password) is None
    assert authenticate(username="admin", password=new_password) is not None
    # Tokens are stored hashed, so none can be printed again: a fresh one, the previous one revoked.
    new_token = _field(out.getvalue(), "API token")
    assert new_token != token
    assert user_token_authenticate(token) is None
    assert user_token_authenticate(new_token).user == admin
    assert UserToken.objects.filter(user=admin, revoked_at__isnull=True).count() == 1
    assert api_key_authenticate(usage_key) is None  # replaced by a fresh one
    assert api_key_authenticate(_field(out.getvalue(), "Usage API key").split()[0]) is not None
    assert get_user_model().objects.filter(username__in=["admin", "demo-customer"]).count() == 2
    assert CustomerMembership.objects.filter(user=portal_user).count() == 1
    assert portal_token_authenticate(customer_token) is None  # replaced by a fresh one
    assert portal_token_authenticate(_field(out.getvalue(), "Customer API token").split()[0]) is not None


def test_ensure_demo_admin_without_demo_data_creates_only_the_admin():
    out = StringIO()

    call_command("ensure_demo_admin", stdout=out)

    assert "run load_demo_data first" in out.getvalue()
    assert not get_user_model().objects.filter(username="demo-customer").exists()
