"""Demo data: a small cloud company's catalog, twenty customers and a few months of billing history,
and three usage-based sellers billed for last month (`apps.demo.sellers`).

Everything is created through the services, and history is replayed day by day under the product's
clock (`clock.frozen_at`), the way the daily billing run would have produced it: invoices carry
realistic issue dates, most older bills are paid a few days after issue, recent ones are open, one
is void and one uncollectible. Today, a few customers added a seat mid-period, invoiced at once: those
invoices wait as drafts for staff to review and finalize (`DRAFTS_FOR_REVIEW`).
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as day_time
from decimal import Decimal

from django.db.models import Count, Q
from django.test import override_settings
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.accounts.services import customer_create, simulated_clock_create
from apps.alerts.services import alert_create
from apps.billing.constants import ChangeTiming, ProrationBehavior
from apps.billing.services import bill_due_subscriptions, subscription_cancel, subscription_change, subscription_start
from apps.catalog.constants import SIMPLE_CHARGE_NAME
from apps.catalog.models import BillableMetric, Feature, Plan, Product
from apps.catalog.services import (
    ChargeInput,
    GrantInput,
    PriceInput,
    TierInput,
    billable_metric_create,
    feature_create,
    plan_create,
    plan_version_create,
    plan_version_features_set,
    product_create,
)
from apps.core import clock
from apps.core.money import quantize_amount
from apps.demo.sellers import Sellers, sellers_create, send_yesterdays_usage
from apps.invoices.constants import BillingRunTrigger, CreditNoteReason, InvoiceStatus
from apps.invoices.models import Invoice, TaxRate
from apps.invoices.services import invoice_mark_uncollectible, invoice_render_pdf, invoice_void
from apps.invoices.services.credit_notes import CreditNoteLineRequest, credit_note_issue, credit_note_preview
from apps.payments.constants import PaymentMethod
from apps.payments.services import invoice_mark_paid, payment_record_manual
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_create
from apps.usage.services import usage_events_ingest
from apps.wallets.services.ledger import wallet_create, wallet_grant

DEMO_EXTERNAL_ID_PREFIX = "demo-"
RANDOM_SEED = 20260115
BILLING_RUN_TIME = day_time(0, 5)  # the daily beat schedule (crontab 00:05 UTC)
PAID_AFTER_DAYS = 30  # bills older than this are mostly paid; younger ones are left open
PAY_PROBABILITY = 0.9
# What customers did during the replayed history, so that the finance dashboard shows every kind of
# MRR movement (upsells already make expansions): (days before today, customer, what they did). The
# subscriptions' start days are seeded: each change comes more than a month after the customer's
# start and a churn more than a month before a return, so each shows at a month end of its own.
LIFECYCLE = [
    (60, "Corrib Energy DAC", "cancel"),  # churn (EUR), started 145 days ago
    (45, "Solana Viajes S.L.", "one seat"),  # contraction (EUR): starter ×3 → ×1 at renewal
    (40, "Maple Leaf Robotics Inc.", "cancel"),  # churn (USD)
    (38, "Harbor & Finch LLC", "one seat"),  # contraction (USD): starter ×2 → ×1 at renewal
    (20, "Provence Data SARL", "cancel"),  # churn (EUR), started 71 days ago
    (12, "Corrib Energy DAC", "resubscribe"),  # reactivation (EUR)
]
LIFECYCLE_TIME = day_time(10, 0)
# Customers who add a seat today, prorated and invoiced at once: their invoices wait as drafts for
# staff to review (the rest of the demo issues drafts at once), finalized by themselves after
# DRAFT_REVIEW_HOURS unless staff finalize them first.
DRAFTS_FOR_REVIEW = ["Kiezware GmbH", "Northwind Media Group", "Clyde Software Ltd"]
DRAFT_REVIEW_HOURS = 72

PRODUCTS = [
    ("cloud-hosting", "Cloud Hosting", "Virtual machines, load balancers and object storage."),
    ("managed-database", "Managed Database", "PostgreSQL clusters with backups and failover."),
    ("support", "Support", "Help from our engineers, with response-time commitments."),
]

# (product code, plan code, name, interval, USD, EUR, GBP)
# A hybrid plan: a platform fee, seats priced in graduated tiers, and API requests metered (priced
# from usage once metering lands; its price can be tried in the admin's price calculator today).
API_TEAM_PLAN = "api-team-monthly"
API_TEAM_CHARGES = [
    ChargeInput(
        name="Platform fee",
        price_model="flat",
        prices=[PriceInput(currency=c, amount=Decimal(a)) for c, a in (("USD", "49"), ("EUR", "45"), ("GBP", "39"))],
    ),
    ChargeInput(
        name="Seats",
        price_model="graduated",
        prices=[
            PriceInput(
                currency=currency,
                tiers=[
                    TierInput(Decimal(5), Decimal(first)),
                    TierInput(Decimal(20), Decimal(second)),
                    TierInput(None, Decimal(rest)),
                ],
            )  # fmt: skip
            for currency, first, second, rest in (
                ("USD", "10", "8", "6"),
                ("EUR", "9", "7.5", "5.5"),
                ("GBP", "8", "6.5", "5"),
            )
        ],
    ),  # fmt: skip
    ChargeInput(
        name="API requests",
        kind="usage",
        metric_code="api_requests",
        price_model="per_unit",
        prices=[
            PriceInput(currency=currency, amount=Decimal(amount), included_units=Decimal(100_000))
            for currency, amount in (("USD", "0.0002"), ("EUR", "0.00018"), ("GBP", "0.00016"))
        ],
    ),
]

PLANS = [
    ("cloud-hosting", "hosting-starter-monthly", "Starter", "month", "29.00", "27.00", "23.00"),
    ("cloud-hosting", "hosting-pro-monthly", "Pro", "month", "99.00", "92.00", "79.00"),
    ("cloud-hosting", "hosting-business-monthly", "Business", "month", "299.00", "279.00", "239.00"),
    ("cloud-hosting", "hosting-business-yearly", "Business", "year", "2990.00", "2790.00", "2390.00"),
    ("managed-database", "database-standard-monthly", "Standard", "month", "149.00", "139.00", "119.00"),
    ("support", "support-priority-yearly", "Priority", "year", "1200.00", "1100.00", "950.00"),
]


# Standard VAT rates of the EU countries the demo customers are in (the seller is in Ireland): Irish
# customers pay Irish VAT; EU businesses with a valid VAT number elsewhere are reverse-charged; EU
# consumers and businesses without one pay their country's rate; customers outside the EU pay none.
DEMO_VAT_RATES = [("IE", "23"), ("DE", "19"), ("FR", "20"), ("NL", "21"), ("ES", "21"), ("BE", "21")]


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    email: str
    address_line1: str
    city: str
    postal_code: str
    country: str
    currency: str
    state: str = ""
    address_line2: str = ""
    tax_id: str = ""
    payment_terms_days: int | None = None
    # (plan code, quantity) pairs
    subscriptions: list[tuple[str, int]] = field(default_factory=list)
    pays_late: bool = False
    # One invoice for the subscriptions renewing on the same day (their subscriptions start together).
    invoice_grouping: str = ""


CUSTOMERS = [
    DemoCustomer("Nordwind Logistik GmbH", "rechnungen@nordwind-logistik.example", "Speicherstraße 12", "Hamburg",
                 "20457", "DE", "EUR", tax_id="DE812345673",
                 subscriptions=[("hosting-business-monthly", 1), ("database-standard-monthly", 2)]),
    DemoCustomer("Brightline Analytics, Inc.", "ap@brightline-analytics.example", "500 Howard Street", "San Francisco",
                 "94105", "US", "USD", state="CA", address_line2="Suite 300", tax_id="94-3141592",
                 subscriptions=[("hosting-pro-monthly", 3), (API_TEAM_PLAN, 12)]),
    DemoCustomer("Thames Fintech Ltd", "finance@thamesfintech.example", "30 St Mary Axe", "London", "EC3A 8BF",
                 "GB", "GBP", tax_id="GB123456727", payment_terms_days=30,
                 subscriptions=[("hosting-business-yearly", 1), ("support-priority-yearly", 1)]),
    DemoCustomer("Atelier Lumière SAS", "comptabilite@atelier-lumiere.example", "18 rue de la Paix", "Paris",
                 "75002", "FR", "EUR", tax_id="FR11123456782", subscriptions=[("hosting-starter-monthly", 1)]),
    DemoCustomer("Liffey Labs Ltd", "accounts@liffeylabs.example", "2 Grand Canal Square", "Dublin", "D02 A342",
                 "IE", "EUR", tax_id="IE9876543H",
                 subscriptions=[("hosting-pro-monthly", 1), ("database-standard-monthly", 1)],
                 invoice_grouping="per_customer"),
    DemoCustomer("Grachten Digital B.V.", "facturen@grachtendigital.example", "Herengracht 420", "Amsterdam",
                 "1017 BZ", "NL", "EUR", tax_id="NL812345678B01", subscriptions=[("hosting-pro-monthly", 2)],
                 pays_late=True),
    DemoCustomer("Harbor & Finch LLC", "billing@harborfinch.example", "77 Water Street", "New York", "10005",
                 "US", "USD", state="NY", subscriptions=[("hosting-starter-monthly", 2)]),
    DemoCustomer("Pennine Outdoor Ltd", "accounts@pennine-outdoor.example", "1 Piccadilly Gardens", "Manchester",
                 "M1 1RG", "GB", "GBP", subscriptions=[("hosting-starter-monthly", 1)]),
    DemoCustomer("Bergmann & Söhne Maschinenbau KG", "buchhaltung@bergmann-soehne.example", "Industriestraße 45",
                 "Stuttgart", "70565", "DE", "EUR", tax_id="DE298765435", payment_terms_days=30,
                 subscriptions=[("hosting-business-monthly", 2), ("support-priority-yearly", 1)]),
    DemoCustomer("Cascade Robotics Inc.", "payables@cascaderobotics.example", "1201 3rd Avenue", "Seattle",
                 "98101", "US", "USD", state="WA",
                 subscriptions=[("hosting-business-yearly", 1), ("database-standard-monthly", 1)]),
    DemoCustomer("Provence Data SARL", "factures@provencedata.example", "5 quai de Rive-Neuve", "Marseille",
                 "13007", "FR", "EUR", subscriptions=[("database-standard-monthly", 1)]),
    DemoCustomer("Corrib Energy DAC", "finance@corribenergy.example", "Dock Road", "Galway", "H91 X2K8", "IE",
                 "EUR", tax_id="IE3456789AH", subscriptions=[("hosting-pro-monthly", 1)]),
    DemoCustomer("Clyde Software Ltd", "hello@clydesoftware.example", "5 St Vincent Place", "Glasgow", "G1 2DH",
                 "GB", "GBP", tax_id="GB987654311",
                 subscriptions=[("hosting-pro-monthly", 1), ("database-standard-monthly", 1)]),
    DemoCustomer("Lumen Health Systems Corp.", "ap@lumenhealth.example", "1100 Congress Avenue", "Austin", "78701",
                 "US", "USD", state="TX", payment_terms_days=30, subscriptions=[("hosting-business-monthly", 1)]),
    DemoCustomer("Maasvlakte Shipping B.V.", "crediteuren@maasvlakte-shipping.example", "Wilhelminakade 909",
                 "Rotterdam", "3072 AP", "NL", "EUR", tax_id="NL003456729B02",
                 subscriptions=[("hosting-business-yearly", 1)]),
    DemoCustomer("Kiezware GmbH", "office@kiezware.example", "Torstraße 140", "Berlin", "10119", "DE", "EUR",
                 subscriptions=[("hosting-starter-monthly", 1), ("database-standard-monthly", 1)]),
    DemoCustomer("Maple Leaf Robotics Inc.", "finance@mapleleafrobotics.example", "100 King Street West",
                 "Toronto", "M5X 1A9", "CA", "USD", state="ON", subscriptions=[("hosting-pro-monthly", 1)]),
    DemoCustomer("Solana Viajes S.L.", "administracion@solanaviajes.example", "Calle de Alcalá 48", "Madrid",
                 "28014", "ES", "EUR", tax_id="ESB12345674", subscriptions=[("hosting-starter-monthly", 3)]),
    DemoCustomer("Brabant Foods NV", "boekhouding@brabantfoods.example", "Rue Royale 55", "Brussels", "1000",
                 "BE", "EUR", tax_id="BE0123456749", subscriptions=[("hosting-pro-monthly", 1)]),
    DemoCustomer("Northwind Media Group", "accounting@northwindmedia.example", "233 South Wacker Drive",
                 "Chicago", "60606", "US", "USD", state="IL",
                 subscriptions=[("hosting-business-monthly", 1), ("support-priority-yearly", 1)]),
]  # fmt: skip


@dataclass
class DemoSummary:
    created: bool
    customers: int = 0
    subscriptions: int = 0
    invoices_by_status: dict[str, int] = field(default_factory=dict)
    billing_runs: int = 0
    pdfs_rendered_at_the_end: int = 0
    seconds: float = 0.0


def demo_data_present() -> bool:
    return Customer.objects.filter(external_id__startswith=DEMO_EXTERNAL_ID_PREFIX).exists()


def demo_first_customer() -> Customer | None:
    return Customer.objects.filter(external_id=f"{DEMO_EXTERNAL_ID_PREFIX}0001").first()


class DemoDataRefused(Exception):
    pass


def demo_data_load(*, now: datetime | None = None, progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Create the demo data unless it is there already (then return `created=False` at once).
    `progress` is told what each step is about to do (the command prints it: the replay takes a while).

    Meant for an empty database: replaying history runs the billing run at past moments, which
    would also bill any other subscription in the database with back-dated invoices."""
    started = time.monotonic()
    if demo_data_present():
        return DemoSummary(created=False)
    if Subscription.objects.exclude(customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX).exists():
        raise DemoDataRefused(
            "This database already has subscriptions of its own; load the demo data into an empty database "
            "(replaying the billing history would back-date invoices for them too)."
        )
    now = clock.ensure_aware(now or clock.now())
    rng = random.Random(RANDOM_SEED)

    # Replayed history is not mailed: hundreds of back-dated bills to example addresses (printed in
    # full, PDF included, by the console email backend) help no one. Staff can still send any of them.
    with override_settings(INVOICE_EMAIL_ON_FINALIZE=False, REPORTS_REFRESH_AFTER_BILLING_RUN=False):
        say = progress or (lambda step: None)
        say("catalog, tax rates, customers and subscriptions")
        plans = _catalog()
        _features(plans)
        _tax_rates()
        customers = _customers()
        _subscriptions(customers, plans, now=now, rng=rng)
        sellers = sellers_create(now=now, progress=say)
        billing_runs = _replay_history(customers, sellers, now=now, rng=rng, progress=say)
        say("a void bill, a write-off, a partial payment, a credit note, plan changes and a test clock")
        _void_and_write_off(customers, now=now)
        _partial_payment(customers, now=now)
        _goodwill_credit_note(customers, now=now)
        _showcase(customers, plans, now=now)
        say("drafts waiting for review")
        _drafts_for_review(customers, now=now)
        say("prepaid credits and a budget")
        _credits_and_budget(customers, now=now)
        say("PDF bills")
        rendered = _render_missing_pdfs()

    invoices = Invoice.objects.filter(customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX)
    return DemoSummary(
        created=True,
        customers=len(customers) + len(sellers.customers),
        subscriptions=Subscription.objects.filter(customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX).count(),
        invoices_by_status=dict(invoices.order_by("status").values_list("status").annotate(n=Count("id"))),
        billing_runs=billing_runs,
        pdfs_rendered_at_the_end=rendered,
        seconds=time.monotonic() - started,
    )


def _catalog() -> dict[str, Plan]:
    products = {}
    for code, name, description in PRODUCTS:
        products[code] = Product.objects.filter(code=code).first() or product_create(
            code=code, name=name, description=description
        )
    plans = {}
    products["api-gateway"] = Product.objects.filter(code="api-gateway").first() or product_create(
        code="api-gateway", name="API Gateway", description="Managed API gateway: seats, requests, analytics."
    )
    if not BillableMetric.objects.filter(code="api_requests").exists():
        billable_metric_create(code="api_requests", name="API requests", description="Requests through the gateway.")
    plans[API_TEAM_PLAN] = Plan.objects.filter(code=API_TEAM_PLAN).first() or plan_create(
        product=products["api-gateway"], code=API_TEAM_PLAN, name="Team", charges=API_TEAM_CHARGES
    )
    for product_code, code, name, interval, usd, eur, gbp in PLANS:
        plans[code] = Plan.objects.filter(code=code).first() or plan_create(
            product=products[product_code],
            code=code,
            name=name,
            interval=interval,
            prices=[Money(Decimal(usd), "USD"), Money(Decimal(eur), "EUR"), Money(Decimal(gbp), "GBP")],
        )
    return plans


# What the hosting plans entitle a customer to (docs/entitlements.md): seats, single sign-on, support.
FEATURES = [("seats", "Seats", "limit"), ("sso", "Single sign-on", "boolean"), ("support", "Support", "value")]
GRANTS = {
    "hosting-starter-monthly": {"seats": 3, "sso": False, "support": "email"},
    "hosting-pro-monthly": {"seats": 10, "sso": True, "support": "priority"},
    "hosting-business-monthly": {"seats": "unlimited", "sso": True, "support": "dedicated"},
    "hosting-business-yearly": {"seats": "unlimited", "sso": True, "support": "dedicated"},
}


def _features(plans: dict[str, Plan]) -> None:
    for code, name, kind in FEATURES:
        if not Feature.objects.filter(code=code).exists():
            feature_create(code=code, name=name, kind=kind)
    for plan_code, grants in GRANTS.items():
        plan_version_features_set(
            version=plans[plan_code].current_version,
            grants=[GrantInput(feature=feature, value=value) for feature, value in grants.items()],
        )


def _credits_and_budget(customers: list[Customer], *, now: datetime) -> None:
    """The first demo customer (the portal's) holds prepaid credits granted as a welcome, used on its
    next finalized invoice, and has set itself a spend budget (docs/credits.md, docs/alerts.md)."""
    customer = customers[0]
    wallet = wallet_create(customer=customer, name="Prepaid credits", rate=Decimal("1.00"))
    wallet_grant(
        wallet_id=wallet.pk, credits="50", category="promotion", reason="Welcome credits",
        expires_on=(now + timedelta(days=90)).date(), now=now,
    )  # fmt: skip
    alert_create(customer=customer, kind="spend", thresholds=["250", "400"], name="Monthly budget", origin="customer")


def _tax_rates() -> None:
    for country, percentage in DEMO_VAT_RATES:
        if not TaxRate.objects.filter(country=country, region="", is_active=True).exists():
            TaxRate.objects.create(name="VAT", percentage=Decimal(percentage), country=country)


def _customers() -> list[Customer]:
    customers = []
    for number, demo in enumerate(CUSTOMERS, start=1):
        customers.append(
            customer_create(
                external_id=f"{DEMO_EXTERNAL_ID_PREFIX}{number:04d}",
                name=demo.name,
                email=demo.email,
                address_line1=demo.address_line1,
                address_line2=demo.address_line2,
                city=demo.city,
                postal_code=demo.postal_code,
                state=demo.state,
                country=demo.country,
                currency=demo.currency,
                tax_id=demo.tax_id,
                payment_terms_days=demo.payment_terms_days,
                invoice_grouping=demo.invoice_grouping,
            )
        )
    return customers


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _subscriptions(customers: list[Customer], plans: dict[str, Plan], *, now: datetime, rng: random.Random) -> None:
    """Subscriptions started 2 to 5 months ago, at midnight UTC (so the 00:05 run bills them that day)."""
    for customer, demo in zip(customers, CUSTOMERS, strict=True):
        first_start = _midnight(now) - timedelta(days=rng.randint(62, 150))
        for index, (plan_code, quantity) in enumerate(demo.subscriptions):
            # A second subscription follows the first a few weeks later (an upsell), never in the future;
            # a customer with grouped invoices took both at once.
            started_at = first_start + timedelta(days=index * rng.randint(7, 30))
            if demo.invoice_grouping:
                started_at = first_start
            with clock.frozen_at(started_at):
                subscription_create(customer=customer, plan=plans[plan_code], quantity=quantity, started_at=started_at)


def _send_yesterdays_requests(subscriptions: list[Subscription], *, day: datetime, rng: random.Random) -> None:
    """A day of API traffic for the metered demo customers, sent in one batch just after midnight, as a
    metering pipeline would (a few thousand requests a day, summarised as events of 1 to 50 calls)."""
    yesterday = day - timedelta(days=1)
    for subscription in subscriptions:
        if subscription.started_at > yesterday:
            continue
        events = [
            {
                "transaction_id": f"demo-{subscription.pk}-{yesterday:%Y%m%d}-{n}",
                "external_customer_id": subscription.customer.external_id,
                "metric_code": "api_requests",
                "timestamp": (yesterday + timedelta(seconds=rng.randint(0, 86_399))).isoformat(),
            }
            for n in range(rng.randint(2_000, 6_000))
        ]
        usage_events_ingest(events=events, now=day)


def _replay_history(
    customers: list[Customer],
    sellers: Sellers,
    *,
    now: datetime,
    rng: random.Random,
    progress: Callable[[str], None],
) -> int:
    """Run the daily billing run for every day from the first subscription until now, and record
    customer payments on the days they would have arrived. The usage-based sellers' events of each day
    are sent just before the next day's run."""
    late_payers = {c.pk for c, demo in zip(customers, CUSTOMERS, strict=True) if demo.pays_late}
    first_start = Subscription.objects.filter(customer__in=customers).order_by("started_at").first().started_at
    first_start = min(first_start, sellers.first_start)
    payments: list[tuple[datetime, int, str]] = []
    last_seen_id = Invoice.objects.order_by("-id").values_list("id", flat=True).first() or 0
    runs = 0
    day = _midnight(first_start)
    metered = list(
        Subscription.objects.filter(customer__in=customers, plan__code=API_TEAM_PLAN).select_related("customer")
    )
    while (run_at := datetime.combine(day.date(), BILLING_RUN_TIME, tzinfo=day.tzinfo)) <= now:
        if day.day == 1 or runs == 0:
            progress(f"billing history: the daily billing runs of {day:%B %Y}")
        with clock.frozen_at(run_at):
            _send_yesterdays_requests(metered, day=day, rng=rng)
            send_yesterdays_usage(sellers, day=day)
            bill_due_subscriptions(now=run_at, trigger=BillingRunTrigger.SCHEDULE)
        runs += 1
        issued = Invoice.objects.filter(pk__gt=last_seen_id, number__isnull=False).order_by("id")
        for invoice in issued.only("id", "customer_id", "issued_at", "status", "number"):
            last_seen_id = invoice.pk
            if invoice.status != InvoiceStatus.OPEN or invoice.customer_id in late_payers:
                continue
            if invoice.issued_at > now - timedelta(days=PAID_AFTER_DAYS) or rng.random() > PAY_PROBABILITY:
                continue
            paid_at = invoice.issued_at + timedelta(days=rng.randint(2, 12), hours=rng.randint(9, 16))
            payments.append((min(paid_at, now), invoice.pk, invoice.number))
        payments.sort()
        next_day = day + timedelta(days=1)
        _lifecycle(customers, day=day, now=now)
        while payments and payments[0][0] < next_day:
            paid_at, invoice_id, number = payments.pop(0)
            with clock.frozen_at(paid_at):  # a transfer reference is unique per customer: the invoice's number
                invoice_mark_paid(invoice_id=invoice_id, reference=f"Bank transfer {number}", now=paid_at)
        day = next_day
    for paid_at, invoice_id, number in payments:  # payments dated after the last run, before now
        with clock.frozen_at(paid_at):
            invoice_mark_paid(invoice_id=invoice_id, reference=f"Bank transfer {number}", now=paid_at)
    return runs


def _lifecycle(customers: list[Customer], *, day: datetime, now: datetime) -> None:
    """Apply what LIFECYCLE says happened on `day` (at 10:00 UTC, after that day's billing run)."""
    by_name = {customer.name: customer for customer in customers}
    for days_before, name, action in LIFECYCLE:
        if _midnight(now) - timedelta(days=days_before) != day:
            continue
        moment = datetime.combine(day.date(), LIFECYCLE_TIME, tzinfo=day.tzinfo)
        customer = by_name[name]
        live = Subscription.objects.filter(customer=customer, ended_at__isnull=True, started_at__lt=moment)
        with clock.frozen_at(moment):
            if action == "cancel":
                for subscription in live:
                    subscription_cancel(
                        subscription_id=subscription.pk, when=ChangeTiming.NOW, prorate=False,
                        reason="Moved to another provider.", now=moment,
                    )  # fmt: skip
            elif action == "one seat":
                subscription = live.filter(quantity__gt=1).first()
                if subscription is not None:
                    subscription_change(
                        subscription_id=subscription.pk, quantity=1, timing=ChangeTiming.PERIOD_END, now=moment
                    )
            elif action == "resubscribe":
                plan_code = CUSTOMERS[customers.index(customer)].subscriptions[0][0]
                subscription_create(customer=customer, plan=Plan.objects.get(code=plan_code), started_at=moment)


def _void_and_write_off(customers: list[Customer], *, now: datetime) -> None:
    """The late payer's oldest bill is written off; one recent bill was issued in error and voided."""
    demo_invoices = Invoice.objects.filter(customer__in=customers, status=InvoiceStatus.OPEN).order_by("issued_at")
    late_payers = [c.pk for c, demo in zip(customers, CUSTOMERS, strict=True) if demo.pays_late]
    oldest_unpaid = demo_invoices.filter(customer_id__in=late_payers).first()
    if oldest_unpaid is not None:
        moment = min(now, oldest_unpaid.issued_at + timedelta(days=45))
        with clock.frozen_at(moment):
            invoice_mark_uncollectible(
                invoice_id=oldest_unpaid.pk, reason="Customer unresponsive after three reminders.", now=moment
            )
    recent = demo_invoices.exclude(customer_id__in=late_payers).filter(
        Q(issued_at__lte=now - timedelta(days=3)) & Q(issued_at__gte=now - timedelta(days=PAID_AFTER_DAYS))
    )
    to_void = recent.last() or demo_invoices.exclude(customer_id__in=late_payers).last()
    if to_void is not None:
        moment = min(now, to_void.issued_at + timedelta(days=2))
        with clock.frozen_at(moment):
            invoice_void(invoice_id=to_void.pk, reason="Issued in error: duplicate of a manual invoice.", now=moment)


def _partial_payment(customers: list[Customer], *, now: datetime) -> None:
    """One customer paid half of its latest open bill by bank transfer; the rest is still due."""
    late_payers = [c.pk for c, demo in zip(customers, CUSTOMERS, strict=True) if demo.pays_late]
    invoice = (
        Invoice.objects.filter(customer__in=customers, status=InvoiceStatus.OPEN, total__gt=1)
        .exclude(customer_id__in=late_payers)
        .order_by("-issued_at", "-id")
        .first()
    )
    if invoice is None:
        return
    moment = min(now, invoice.issued_at + timedelta(days=1))
    half = quantize_amount(invoice.total.amount / 2, invoice.currency)
    with clock.frozen_at(moment):
        payment_record_manual(
            customer_id=invoice.customer_id, amount=half, currency=invoice.currency,
            method=PaymentMethod.BANK_TRANSFER, reference=f"Part payment {invoice.number}", received_at=moment,
            allocations=[(invoice.pk, half)],
        )  # fmt: skip


def _goodwill_credit_note(customers: list[Customer], *, now: datetime) -> None:
    """A fifth of one line of a customer's latest paid bill credited back to its balance after an
    outage (the next bill takes it off): finance staff find a credit note, its PDF and the balance credit."""
    late_payers = [c.pk for c, demo in zip(customers, CUSTOMERS, strict=True) if demo.pays_late]
    invoice = (
        Invoice.objects.filter(customer__in=customers, status=InvoiceStatus.PAID, total__gt=10)
        .exclude(customer_id__in=late_payers)
        .order_by("-issued_at", "-id")
        .first()
    )
    if invoice is None:
        return
    line = invoice.lines.filter(amount__gt=0).order_by("position", "id").first()
    if line is None:
        return
    request = [
        CreditNoteLineRequest(invoice_line_id=line.pk, amount=quantize_amount(line.amount.amount / 5, invoice.currency))
    ]
    memo = "Goodwill credit: the service was unavailable for three hours on the 12th."
    moment = min(now, max(invoice.paid_at, invoice.issued_at) + timedelta(days=3))
    with clock.frozen_at(moment):
        draft = credit_note_preview(
            invoice_id=invoice.pk, reason=CreditNoteReason.PRODUCT_UNSATISFACTORY, memo=memo, lines=request
        )
        credit_note_issue(
            invoice_id=invoice.pk, reason=CreditNoteReason.PRODUCT_UNSATISFACTORY, memo=memo, lines=request,
            credit_to_balance=draft.total, now=moment,
        )  # fmt: skip


def _showcase(customers: list[Customer], plans: dict[str, Plan], *, now: datetime) -> None:
    """Today's state of things a finance user should find in the demo: a price rise that existing
    subscribers are grandfathered from, a trial, a scheduled downgrade, and a customer on a test clock."""
    with clock.frozen_at(now):
        pro = plans["hosting-pro-monthly"]
        plan_version_create(
            plan=pro,
            charges=[
                ChargeInput(
                    name=SIMPLE_CHARGE_NAME,
                    prices=[
                        PriceInput(currency=currency, amount=Decimal(amount))
                        for currency, amount in (("USD", "109"), ("EUR", "101"), ("GBP", "87"))
                    ],
                )
            ],
            notes="Price rise for new subscribers; existing ones keep v1 until migrated.",
        )  # fmt: skip
        subscription_start(customer=customers[-1], plan=plans[API_TEAM_PLAN], quantity=4, trial_days=14)
        downgrading = Subscription.objects.filter(customer=customers[0], plan__code="hosting-business-monthly").first()
        if downgrading is not None:
            subscription_change(subscription_id=downgrading.pk, plan=pro, timing=ChangeTiming.PERIOD_END)
        test_clock = simulated_clock_create(name="Sales demo clock", frozen_at=_midnight(now))
    clock_customer = customer_create(
        external_id=f"{DEMO_EXTERNAL_ID_PREFIX}clock",
        name="Clockwork Trial Ltd",
        email="billing@clockwork-trial.example",
        address_line1="1 Test Street",
        city="London",
        postal_code="EC1A 1BB",
        country="GB",
        currency="GBP",
        test_clock=test_clock,
    )
    subscription_start(customer=clock_customer, plan=plans[API_TEAM_PLAN], quantity=3, trial_days=14)


def _drafts_for_review(customers: list[Customer], *, now: datetime) -> None:
    """A seat added today by each of DRAFTS_FOR_REVIEW, prorated and invoiced at once, while drafts
    wait DRAFT_REVIEW_HOURS for review: a newcomer finds drafts to check and finalize."""
    by_name = {customer.name: customer for customer in customers}
    with override_settings(INVOICE_DRAFT_GRACE_HOURS=DRAFT_REVIEW_HOURS), clock.frozen_at(now):
        for name in DRAFTS_FOR_REVIEW:
            subscription = (
                Subscription.objects.filter(customer=by_name[name], status="active", cancel_at_period_end=False)
                .order_by("started_at", "pk")
                .first()
            )
            if subscription is None:
                continue
            subscription_change(
                subscription_id=subscription.pk, quantity=subscription.quantity + 1, timing=ChangeTiming.NOW,
                proration=ProrationBehavior.INVOICE_NOW, now=now,
            )  # fmt: skip


def _render_missing_pdfs() -> int:
    """With eager Celery the bills were rendered at finalization; otherwise (a worker that is not
    running, tests) render what is missing now so that every issued demo invoice has its PDF."""
    missing = Invoice.objects.filter(
        customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX, number__isnull=False, pdf=""
    ).values_list("id", flat=True)
    rendered = 0
    for invoice_id in list(missing):
        invoice_render_pdf(invoice_id=invoice_id)
        rendered += 1
    return rendered
