"""Benchmark: rendering PDF bills the way the `pdf` Celery worker does (prefork, concurrency 2).

Creates `--bills` finalized one-page invoices in PostgreSQL (each its own customer and subscription,
made through the product's services), then calls `apps.invoices.services.invoice_render_pdf` — what
the `pdf` queue task runs: load the invoice, its lines and taxes, render the template, lay it out with
WeasyPrint, store the file and its SHA-256, record the event, commit — once per invoice from a pool of
`--workers` processes, each taking the next invoice when done. Every process renders one bill untimed
first (as a long-lived worker would have). Afterwards every bill is checked: stored, one page (unless
`--lines` asks for more), its SHA-256 that of the stored file.

Targets: at least 25 one-page bills/s on 2 cores, p95 at most 150 ms per bill.

Runs with the production settings; PDFs go to a temporary MEDIA_ROOT (removed afterwards unless
`--keep`); Celery publishes nowhere (memory broker), so finalizing queues no real work.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import django_setup, percentile, verdict

TARGET_BILLS_PER_SECOND = 25
TARGET_P95_MS = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bp_bench", help="(default: %(default)s)"
    )
    parser.add_argument("--bills", type=int, default=400, help="timed bills (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default: %(default)s)")
    parser.add_argument("--lines", type=int, default=1, help="lines per bill (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the rendered PDFs (their folder is printed)")
    options = parser.parse_args()

    media_root = tempfile.mkdtemp(prefix="bench-pdf-")
    os.environ["MEDIA_ROOT"] = media_root
    os.environ["CELERY_BROKER_URL"] = "memory://"
    django_setup(options.database_url)

    invoice_ids = _make_invoices(count=options.bills + options.workers, lines=options.lines)
    warmups, timed = invoice_ids[: options.workers], invoice_ids[options.workers :]

    from django.db import connections

    connections.close_all()  # each process opens its own connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(options.workers)
    with context.Pool(options.workers, initializer=_warm_up, initargs=(warmups, barrier)) as pool:
        started = time.perf_counter()
        results = list(pool.imap_unordered(_render, timed, chunksize=1))
        elapsed = time.perf_counter() - started

    wall_ms = [wall * 1000 for wall, _ in results]
    cpu_ms = [cpu * 1000 for _, cpu in results]
    rate = len(results) / elapsed
    p95 = percentile(wall_ms, 0.95)
    print(
        f"rendered {len(results)} bills of {options.lines} line(s) with {options.workers} processes in {elapsed:.2f} s"
    )
    print(
        f"per bill (wall): p50 {percentile(wall_ms, 0.50):.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {percentile(wall_ms, 0.99):.1f} ms, mean {statistics.fmean(wall_ms):.1f} ms, max {max(wall_ms):.1f} ms"
    )
    print(
        f"per bill (CPU of the rendering process): p50 {percentile(cpu_ms, 0.50):.1f} ms, "
        f"mean {statistics.fmean(cpu_ms):.1f} ms"
    )
    problems = _verify(timed, pages=None if options.lines > 1 else 1)
    print(f"verification: {'OK' if not problems else 'FAILED: ' + '; '.join(problems[:5])}")
    passed = rate >= TARGET_BILLS_PER_SECOND
    print(f"TARGET throughput >= {TARGET_BILLS_PER_SECOND} bills/s: {rate:.1f} bills/s {verdict(passed)}")
    print(f"TARGET p95 <= {TARGET_P95_MS} ms per bill: {p95:.1f} ms {verdict(p95 <= TARGET_P95_MS)}")
    if options.keep:
        print(f"PDFs kept in {media_root}")
    else:
        shutil.rmtree(media_root, ignore_errors=True)
    if problems:
        sys.exit(1)


def _make_invoices(*, count: int, lines: int) -> list[int]:
    """`count` finalized invoices, made as billing makes them; extra lines added to the draft."""
    import uuid
    from decimal import Decimal

    from djmoney.money import Money

    from apps.accounts.tests.factories import CustomerFactory
    from apps.catalog.tests.factories import PlanFactory
    from apps.invoices.models import InvoiceLine
    from apps.invoices.services import invoice_finalize
    from apps.invoices.tests.factories import DEFAULT_START, make_draft_invoice
    from apps.subscriptions.tests.factories import make_subscription

    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    plan = PlanFactory(
        product__code=f"bench-pdf-{run}", product__name="Cloud platform", code=f"bench-pdf-{run}",
        name="Business (monthly)", prices=[Money("49.00", "USD")],
    )  # fmt: skip
    invoice_ids = []
    for number in range(count):
        customer = CustomerFactory(
            external_id=f"bench_pdf_{run}_{number:04d}", name=f"Bench customer {number} Ltd.",
            email=f"bench{number}@customer.example", tax_id=f"GB{number:09d}",
        )  # fmt: skip
        draft = make_draft_invoice(
            subscription=make_subscription(customer=customer, plan=plan, started_at=DEFAULT_START)
        )
        for position in range(2, lines + 1):
            InvoiceLine.objects.create(
                invoice=draft, position=position, description=f"API requests — batch {position:02d}",
                period_start_at=draft.period_start_at, period_end_at=draft.period_end_at, quantity=Decimal(125_000),
                unit_amount=Money(Decimal("0.00012"), "USD"), amount=Money(Decimal("15.00"), "USD"),
                explanation=["125,000 requests × 0.00012 USD"],
            )  # fmt: skip
        invoice_ids.append(invoice_finalize(invoice_id=draft.pk, now=draft.period_start_at).pk)
    print(f"made {count} finalized invoices in {time.perf_counter() - started:.1f} s")
    return invoice_ids


def _warm_up(warmups: list[int], barrier) -> None:
    """Per process, untimed: render one bill (imports, fonts, stylesheet, logo), as a worker that has
    been running would have; then wait for the others so that timing starts with every process ready."""
    from apps.invoices.services import invoice_render_pdf

    index = barrier.wait()  # each process gets its own index, hence its own warm-up invoice
    invoice_render_pdf(invoice_id=warmups[index])
    barrier.wait()


def _render(invoice_id: int) -> tuple[float, float]:
    from apps.invoices.services import invoice_render_pdf

    wall, cpu = time.perf_counter(), time.process_time()
    invoice_render_pdf(invoice_id=invoice_id)
    return time.perf_counter() - wall, time.process_time() - cpu


def _verify(invoice_ids: list[int], *, pages: int | None) -> list[str]:
    import hashlib
    import io

    from pypdf import PdfReader

    from apps.invoices.models import Invoice

    problems = []
    for invoice in Invoice.objects.filter(pk__in=invoice_ids):
        if not invoice.pdf_sha256:
            problems.append(f"{invoice.number}: no PDF")
            continue
        with invoice.pdf.open("rb") as handle:
            content = handle.read()
        if hashlib.sha256(content).hexdigest() != invoice.pdf_sha256:
            problems.append(f"{invoice.number}: stored file does not match its SHA-256")
        count = len(PdfReader(io.BytesIO(content)).pages)
        if pages is not None and count != pages:
            problems.append(f"{invoice.number}: {count} pages")
    if len(invoice_ids) != Invoice.objects.filter(pk__in=invoice_ids).count():
        problems.append("some invoices are missing")
    return problems


if __name__ == "__main__":
    main()
