"""Backup and restore (manage.py backup / restore): back up, wipe, restore, compare — database rows
and media files (PDF bills) — on the database the suite runs on (PostgreSQL in CI, SQLite locally)."""

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from djmoney.money import Money

from apps.accounts.models import Customer
from apps.billing.services import subscription_start
from apps.catalog.tests.factories import PlanFactory
from apps.invoices.models import Invoice, InvoiceEvent, InvoiceLine
from apps.invoices.services import invoice_pdf_ensure
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import utc

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def database_tools():
    if connection.vendor == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump/pg_restore are not installed (postgresql-client)")


def _state(media_root: str) -> dict:
    """What a restore must bring back exactly: the rows that matter and every media file's bytes."""
    media = Path(media_root)
    return {
        "customers": sorted(Customer.objects.values_list("id", "external_id", "name", "email")),
        "subscriptions": sorted(Subscription.objects.values_list("id", "customer_id", "status")),
        "invoices": sorted(
            (i.pk, i.number, i.status, str(i.total), i.pdf.name, i.pdf_sha256) for i in Invoice.objects.all()
        ),
        "lines": InvoiceLine.objects.count(),
        "events": InvoiceEvent.objects.count(),
        "media": {
            str(path.relative_to(media)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(media.rglob("*"))
            if path.is_file()
        },
    }


@pytest.fixture
def billed():
    """Two customers billed, each invoice finalized with its PDF bill stored."""
    from apps.accounts.tests.factories import CustomerFactory

    plan = PlanFactory(prices=[Money("49.00", "USD")])
    for external_id in ("acme", "globex"):
        subscription_start(customer=CustomerFactory(external_id=external_id, currency="USD"), plan=plan,
                           now=utc(2026, 4, 1))  # fmt: skip
    for invoice in Invoice.objects.exclude(number=None):
        invoice_pdf_ensure(invoice_id=invoice.pk)


def _backup_wipe_restore(tmp_path: Path, media_root: str) -> tuple[dict, dict, dict]:
    before = _state(media_root)
    assert len(before["invoices"]) == 2 and len(before["media"]) == 2, before  # something to lose

    out = io.StringIO()
    call_command("backup", str(tmp_path / "backup"), stdout=out)
    assert "Backup written to" in out.getvalue()

    call_command("flush", "--no-input")
    shutil.rmtree(media_root)
    wiped = _state(media_root) if Path(media_root).exists() else {"invoices": [], "media": {}}

    call_command("restore", str(tmp_path / "backup"), "--yes", stdout=io.StringIO())
    return before, wiped, _state(media_root)


def test_backup_wipe_restore_brings_back_every_row_and_bill(billed, tmp_path, media_root):
    before, wiped, after = _backup_wipe_restore(tmp_path, media_root)

    assert (wiped["invoices"], wiped["media"]) == ([], {})
    assert after == before


def test_the_manifest_lists_each_file_with_its_checksum(billed, tmp_path):
    call_command("backup", str(tmp_path / "backup"), stdout=io.StringIO())

    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    names = sorted(manifest["files"])
    assert names in (["database.dump", "media.tar.gz"], ["database.sqlite3", "media.tar.gz"])
    for name, sha256 in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "backup" / name).read_bytes()).hexdigest() == sha256


def test_a_damaged_backup_is_refused_and_changes_nothing(billed, tmp_path, media_root):
    call_command("backup", str(tmp_path / "backup"), stdout=io.StringIO())
    with (tmp_path / "backup" / "media.tar.gz").open("ab") as archive:
        archive.write(b"garbage")
    before = _state(media_root)

    with pytest.raises(CommandError, match="media.tar.gz is missing or damaged"):
        call_command("restore", str(tmp_path / "backup"), "--yes")

    assert _state(media_root) == before


def test_a_backup_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "something").write_text("keep me")

    with pytest.raises(CommandError, match="is not empty"):
        call_command("backup", str(tmp_path / "backup"))

    assert (tmp_path / "backup" / "something").read_text() == "keep me"
