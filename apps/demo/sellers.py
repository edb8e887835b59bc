"""Three more demo sellers who bill by usage, as product lines of the demo's one seller: a cloud host,
an IoT connectivity seller and a CDN, each with two customers and their usage events.

- **Stratus Cloud (cloud host)**: pay as you go, billed in arrears (no fixed fee): VM-hours as a
  time-weighted sum of running VMs per region, priced per region (dimension prices), and storage in
  GB-months (a time-weighted sum with unit month).
- **Kite IoT Connect (IoT connectivity)**: one subscription per SIM, a fee per active SIM billed in
  arrears and 500 MB of data per SIM pooled across the customer's SIMs; data beyond the pool per MB.
  The customer's SIMs are invoiced together. One device's data session of the last day of a month
  reaches the meter a day after that month was invoiced: late usage, billed on the next invoice.
- **Lumen Edge CDN**: a platform fee in advance, the 95th percentile of 5-minute bandwidth samples
  per region (priced per region) and requests per 10,000 (package price).

Subscriptions start on the 1st of a month at midnight UTC (the IoT SIMs two months ago, the others
last month), so the replayed daily billing runs issue each customer an invoice for last month on the
1st. Events are sent the way a metering pipeline would, in one batch a day just after midnight for the
day before (`send_yesterdays_usage`); their values are drawn from a generator seeded by seller,
customer and day, so the same `now` gives the same demo.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from apps.accounts.models import Customer
from apps.accounts.services import customer_create
from apps.catalog.constants import BillingTiming, ChargeKind, MetricAggregation, PackageRounding, PriceModelChoice
from apps.catalog.models import Plan
from apps.catalog.services import ChargeInput, PriceInput, billable_metric_create, plan_create, product_create
from apps.core import clock
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_create
from apps.usage.services import usage_events_ingest

D = Decimal
Event = dict[str, Any]  # a usage event as the usage API takes it
CURRENCY = "USD"
SELLER_PREFIX = "demo-seller-"

CLOUD_PLAN = "stratus-payg-monthly"
IOT_PLAN = "kite-sim-pooled-monthly"
CDN_PLAN = "lumen-edge-monthly"

# Cloud: USD per VM-hour, by region (the default price covers every region without one of its own).
VM_HOUR_DEFAULT = D("0.0400")
VM_HOUR_BY_REGION = {"ap-southeast": D("0.0520")}
STORAGE_GB_MONTH = D("0.0230")
# IoT: a fee per active SIM and month, data pooled per SIM, data beyond the pool per MB.
SIM_FEE = D("2.00")
SIM_POOLED_MB = D(500)
DATA_PER_MB = D("0.0100")
IOT_LATENESS_DAYS = 5
# CDN: platform fee, bandwidth per Mbps of the 95th percentile by region, requests per 10,000.
CDN_PLATFORM_FEE = D("20.00")
MBPS_DEFAULT = D("0.50")
MBPS_BY_REGION = {"apac": D("1.20")}
REQUESTS_PACKAGE = 10_000
REQUESTS_PACKAGE_PRICE = D("0.75")
# The demo's evening peak per region (UTC minute of the day it starts): 24 and 18 samples a day.
CDN_PEAK_START_MINUTE = {"na": 22 * 60, "apac": 22 * 60 + 30}


def _month_start(moment: datetime, months_back: int = 0) -> datetime:
    year, month = moment.year, moment.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def cloud_host_catalog() -> Plan:
    """Stratus Cloud's pay-as-you-go plan: usage only, billed in arrears."""
    billable_metric_create(
        code="stratus_vm_hours", name="VM-hours", aggregation=MetricAggregation.WEIGHTED_SUM, field_name="vms",
        time_unit="hour", group_by="region",
        description="Running VMs per region (each event is the new number running), in VM-hours.",
    )  # fmt: skip
    billable_metric_create(
        code="stratus_storage_gb", name="Block storage", aggregation=MetricAggregation.WEIGHTED_SUM,
        field_name="gb", time_unit="month",
        description="Provisioned block storage (each event is the new size in GB), in GB-months.",
    )  # fmt: skip
    product = product_create(
        code="stratus-cloud", name="Stratus Cloud (demo cloud host)",
        description="Virtual machines billed by the VM-hour per region and block storage by the GB-month.",
    )  # fmt: skip
    vm_prices = [PriceInput(currency=CURRENCY, amount=VM_HOUR_DEFAULT)] + [
        PriceInput(currency=CURRENCY, amount=amount, dimension_values={"region": region})
        for region, amount in VM_HOUR_BY_REGION.items()
    ]
    return plan_create(
        product=product, code=CLOUD_PLAN, name="Pay as you go",
        description="No fixed fee: VM-hours and storage, billed at the end of each month.",
        charges=[
            ChargeInput(name="VM-hours", kind=ChargeKind.USAGE, metric_code="stratus_vm_hours", prices=vm_prices),
            ChargeInput(
                name="Block storage (GB-months)", kind=ChargeKind.USAGE, metric_code="stratus_storage_gb",
                prices=[PriceInput(currency=CURRENCY, amount=STORAGE_GB_MONTH)],
            ),
        ],
    )  # fmt: skip


def iot_catalog() -> Plan:
    """Kite IoT Connect's SIM plan: a fee per active SIM in arrears, data pooled across the SIMs."""
    billable_metric_create(
        code="kite_sim_data_mb", name="SIM data", aggregation=MetricAggregation.SUM, field_name="mb",
        lateness_window_days=IOT_LATENESS_DAYS,
        description="Data sessions of a SIM in MB; devices offline for a while report late.",
    )  # fmt: skip
    product = product_create(
        code="kite-iot", name="Kite IoT Connect (demo IoT connectivity)",
        description="Cellular connectivity per SIM, with a data pool shared by a customer's SIMs.",
    )  # fmt: skip
    return plan_create(
        product=product, code=IOT_PLAN, name="SIM with pooled data",
        description="One subscription per SIM; each adds 500 MB to the customer's monthly data pool.",
        charges=[
            ChargeInput(
                name="Active SIM", price_model=PriceModelChoice.FLAT, billing_timing=BillingTiming.IN_ARREARS,
                prices=[PriceInput(currency=CURRENCY, amount=SIM_FEE)],
            ),
            ChargeInput(
                name="Data", kind=ChargeKind.USAGE, metric_code="kite_sim_data_mb", pooled_allowance=SIM_POOLED_MB,
                prices=[PriceInput(currency=CURRENCY, amount=DATA_PER_MB)],
            ),
        ],
    )  # fmt: skip


def cdn_catalog() -> Plan:
    """Lumen Edge CDN's plan: a platform fee in advance, 95th-percentile bandwidth per region,
    requests per 10,000."""
    billable_metric_create(
        code="lumen_bandwidth_mbps", name="Bandwidth (95th percentile)", aggregation=MetricAggregation.PERCENTILE,
        field_name="mbps", percentile=D(95), interval_minutes=5, group_by="region",
        description="Edge egress per region, sampled every 5 minutes in Mbps; billed at the 95th percentile.",
    )  # fmt: skip
    billable_metric_create(
        code="lumen_requests", name="Edge requests", aggregation=MetricAggregation.SUM, field_name="requests",
        description="HTTP requests served at the edge, summarised by the edge's log shipper.",
    )  # fmt: skip
    product = product_create(
        code="lumen-cdn", name="Lumen Edge CDN (demo CDN)",
        description="Content delivery billed at the 95th percentile of bandwidth per region (95计费).",
    )  # fmt: skip
    mbps_prices = [PriceInput(currency=CURRENCY, amount=MBPS_DEFAULT)] + [
        PriceInput(currency=CURRENCY, amount=amount, dimension_values={"region": region})
        for region, amount in MBPS_BY_REGION.items()
    ]
    return plan_create(
        product=product, code=CDN_PLAN, name="Edge",
        description="Platform fee each month in advance; bandwidth and requests in arrears.",
        charges=[
            ChargeInput(
                name="Platform fee", price_model=PriceModelChoice.FLAT,
                prices=[PriceInput(currency=CURRENCY, amount=CDN_PLATFORM_FEE)],
            ),
            ChargeInput(
                name="Bandwidth (95th percentile)", kind=ChargeKind.USAGE, metric_code="lumen_bandwidth_mbps",
                prices=mbps_prices,
            ),
            ChargeInput(
                name="Requests (per 10,000)", kind=ChargeKind.USAGE, metric_code="lumen_requests",
                price_model=PriceModelChoice.PACKAGE,
                prices=[
                    PriceInput(
                        currency=CURRENCY, amount=REQUESTS_PACKAGE_PRICE, package_size=REQUESTS_PACKAGE,
                        package_rounding=PackageRounding.UP,
                    )
                ],
            ),
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class SellerCustomer:
    seller: str  # "cloud", "iot" or "cdn"
    key: str
    name: str
    email: str
    address_line1: str
    city: str
    postal_code: str
    country: str
    state: str = ""
    # cloud: {region: typical VMs running}; cdn: {region: typical evening Mbps}
    regions: dict[str, int] = field(default_factory=dict)
    sims: int = 0  # iot
    mb_per_sim_day: int = 0  # iot: typical MB a SIM uses a day
    invoice_grouping: str = ""


SELLER_CUSTOMERS = [
    SellerCustomer("cloud", "cloud-1", "Orbital Render Farm Inc.", "billing@orbitalrender.example",
                   "400 Spear Street", "San Francisco", "94105", "US", state="CA",
                   regions={"us-east": 12, "ap-southeast": 4}),
    SellerCustomer("cloud", "cloud-2", "Fjordline Games AS", "faktura@fjordlinegames.example", "Karl Johans gate 5",
                   "Oslo", "0154", "NO", regions={"eu-north": 6}),
    SellerCustomer("iot", "iot-1", "Cold Chain Trackers Pty Ltd", "accounts@coldchaintrackers.example",
                   "1 Macquarie Place", "Sydney", "2000", "AU", sims=4, mb_per_sim_day=24,
                   invoice_grouping="per_customer"),
    SellerCustomer("iot", "iot-2", "Smart Parking Meters Pte. Ltd.", "finance@smartparking.example",
                   "8 Marina View", "Singapore", "018960", "SG", sims=2, mb_per_sim_day=12,
                   invoice_grouping="per_customer"),
    SellerCustomer("cdn", "cdn-1", "StreamCast Media LLC", "ap@streamcast.example", "1600 Broadway", "Denver",
                   "80202", "US", state="CO", regions={"na": 800, "apac": 300}),
    SellerCustomer("cdn", "cdn-2", "Maplewood News Ltd.", "billing@maplewoodnews.example", "100 Queen Street West",
                   "Toronto", "M5H 2N2", "CA", state="ON", regions={"na": 150}),
]  # fmt: skip

SELLER_NAMES = {"cloud": "Stratus Cloud", "iot": "Kite IoT Connect", "cdn": "Lumen Edge CDN"}
# The SIM whose session of the last day of the month before last reaches the meter late, on the 2nd of
# last month (after that month was invoiced on the 1st): (customer key, SIM index, MB).
LATE_SESSION = ("iot-1", 0, 260)


@dataclass
class Sellers:
    customers: dict[str, Customer]  # by SellerCustomer.key
    subscriptions: dict[str, list[Subscription]]  # by SellerCustomer.key (one per SIM for IoT)
    first_start: datetime
    last_month: datetime  # the 1st of last month: usage is sent from the first start until now


def sellers_create(*, now: datetime, progress: Callable[[str], None]) -> Sellers:
    """The three sellers' catalogs, customers and subscriptions (started in the past; the replay bills them)."""
    this_month = _month_start(now - timedelta(minutes=5))  # the month of the last replayed billing run
    last_month, month_before = _month_start(this_month, 1), _month_start(this_month, 2)
    plans = {}
    for seller, what, catalog in SELLERS:
        progress(f"usage-based seller {SELLER_NAMES[seller]} ({what}): its catalog, customers and subscriptions")
        plans[seller] = catalog()
    customers, subscriptions = {}, {}
    for demo in SELLER_CUSTOMERS:
        customer = customer_create(
            external_id=f"{SELLER_PREFIX}{demo.key}", name=demo.name, email=demo.email,
            address_line1=demo.address_line1, city=demo.city, postal_code=demo.postal_code, state=demo.state,
            country=demo.country, currency=CURRENCY, invoice_grouping=demo.invoice_grouping,
        )  # fmt: skip
        started_at = month_before if demo.seller == "iot" else last_month
        with clock.frozen_at(started_at):
            subscriptions[demo.key] = [
                subscription_create(customer=customer, plan=plans[demo.seller], started_at=started_at)
                for _ in range(max(demo.sims, 1))
            ]
        customers[demo.key] = customer
    return Sellers(customers=customers, subscriptions=subscriptions, first_start=month_before, last_month=last_month)


def seller_portal_customers() -> list[Customer]:
    """The first customer of each seller, whom the demo portal user may view."""
    keys = [next(demo.key for demo in SELLER_CUSTOMERS if demo.seller == seller) for seller, _, _ in SELLERS]
    by_id = {c.external_id: c for c in Customer.objects.filter(external_id__in=[f"{SELLER_PREFIX}{k}" for k in keys])}
    return [by_id[f"{SELLER_PREFIX}{key}"] for key in keys if f"{SELLER_PREFIX}{key}" in by_id]


def send_yesterdays_usage(sellers: Sellers, *, day: datetime) -> int:
    """The events of the day before `day` (midnight UTC) for every seller customer subscribed then, in
    one batch (as one metering pipeline would send them), plus the late IoT session on the 2nd of last
    month. Returns the number sent."""
    yesterday = day - timedelta(days=1)
    batch: list[Event] = []
    for demo in SELLER_CUSTOMERS:
        subscriptions = sellers.subscriptions[demo.key]
        if subscriptions[0].started_at > yesterday:
            continue
        rng = random.Random(f"{demo.key}-{yesterday:%Y-%m-%d}")
        events = _EVENTS[demo.seller](demo, subscriptions, yesterday, rng)
        if day == sellers.last_month + timedelta(days=1) and demo.key == LATE_SESSION[0]:
            events.append(_late_session(subscriptions[LATE_SESSION[1]], sellers.last_month))
        for event in events:
            event["external_customer_id"] = sellers.customers[demo.key].external_id
        batch += events
    if batch:
        result = usage_events_ingest(events=batch, now=day)
        if result.rejected:  # the demo's own events: a refusal is a bug in the demo, said at once
            raise RuntimeError(f"Demo usage refused: {result.rejected[:3]}")
    return len(batch)


def _late_session(sim: Subscription, last_month: datetime) -> Event:
    """A SIM's session of 22:30 on the last day of the month before last, reported on the 2nd of last month."""
    moment = last_month - timedelta(minutes=90)
    return {
        "transaction_id": f"{SELLER_PREFIX}sim-{sim.pk}-late-{moment:%Y%m%d%H%M}",
        "metric_code": "kite_sim_data_mb",
        "timestamp": moment.isoformat(),
        "properties": {"mb": str(LATE_SESSION[2]), "subscription_id": sim.pk},
    }


def _cloud_events(
    demo: SellerCustomer, subscriptions: list[Subscription], day: datetime, rng: random.Random
) -> list[Event]:
    """VMs running per region, changed by autoscaling every two hours (a level event per region then),
    and the block storage's size once a day (it grows)."""
    events = []
    for region, typical in demo.regions.items():
        for hour in range(0, 24, 2):
            busy = 8 <= hour < 20
            vms = max(0, typical + (typical // 2 if busy else -(typical // 3)) + rng.randint(-2, 2))
            moment = day + timedelta(hours=hour)
            events.append({
                "transaction_id": f"{SELLER_PREFIX}{demo.key}-vm-{region}-{moment:%Y%m%d%H}",
                "metric_code": "stratus_vm_hours", "timestamp": moment.isoformat(),
                "properties": {"region": region, "vms": vms},
            })  # fmt: skip
    gb = 500 * len(demo.regions) + 10 * (day.day) + rng.randint(0, 20)
    events.append({
        "transaction_id": f"{SELLER_PREFIX}{demo.key}-storage-{day:%Y%m%d}",
        "metric_code": "stratus_storage_gb", "timestamp": (day + timedelta(hours=6)).isoformat(),
        "properties": {"gb": gb},
    })  # fmt: skip
    return events


def _iot_events(
    demo: SellerCustomer, subscriptions: list[Subscription], day: datetime, rng: random.Random
) -> list[Event]:
    """Each SIM opens a few data sessions a day; each event names its SIM's subscription (the pool)."""
    events = []
    for index, sim in enumerate(subscriptions):
        for session in range(rng.randint(2, 5)):
            moment = day + timedelta(minutes=rng.randint(0, 1_439))
            mb = D(rng.randint(demo.mb_per_sim_day * 10, demo.mb_per_sim_day * 40)) / 100
            events.append({
                "transaction_id": f"{SELLER_PREFIX}sim-{sim.pk}-{day:%Y%m%d}-{session}",
                "metric_code": "kite_sim_data_mb", "timestamp": moment.isoformat(),
                "properties": {"mb": str(mb), "subscription_id": sim.pk, "sim": f"8944-{index:04d}"},
            })  # fmt: skip
    return events


def _cdn_events(
    demo: SellerCustomer, subscriptions: list[Subscription], day: datetime, rng: random.Random
) -> list[Event]:
    """Bandwidth samples every 5 minutes of the evening peak per region (the rest of the day is idle
    here: those intervals count as zero; a peak of more than 5 % of the day's intervals keeps the 95th
    percentile above zero), and the requests served, reported every four hours."""
    events = []
    for region, typical in demo.regions.items():
        peak_start = CDN_PEAK_START_MINUTE.get(region, CDN_PEAK_START_MINUTE["na"])
        for interval in range((24 * 60 - peak_start) // 5):
            moment = day + timedelta(minutes=peak_start + 5 * interval)
            mbps = typical + rng.randint(-typical // 4, typical // 4)
            events.append({
                "transaction_id": f"{SELLER_PREFIX}{demo.key}-bw-{region}-{moment:%Y%m%d%H%M}",
                "metric_code": "lumen_bandwidth_mbps", "timestamp": moment.isoformat(),
                "properties": {"region": region, "mbps": mbps},
            })  # fmt: skip
    scale = sum(demo.regions.values())
    for hour in range(0, 24, 4):
        moment = day + timedelta(hours=hour, minutes=59)
        events.append({
            "transaction_id": f"{SELLER_PREFIX}{demo.key}-req-{moment:%Y%m%d%H}",
            "metric_code": "lumen_requests", "timestamp": moment.isoformat(),
            "properties": {"requests": scale * rng.randint(4, 24)},
        })  # fmt: skip
    return events


_EVENTS = {"cloud": _cloud_events, "iot": _iot_events, "cdn": _cdn_events}
SELLERS = [
    ("cloud", "cloud host", cloud_host_catalog),
    ("iot", "IoT connectivity", iot_catalog),
    ("cdn", "CDN", cdn_catalog),
]
