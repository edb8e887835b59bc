"""Backup and restore of the database and the media files (PDF bills), used by the `backup` and
`restore` management commands. See docs/backup.md.

A backup is a folder:
- `database.dump` (PostgreSQL, `pg_dump --format=custom`) or `database.sqlite3` (SQLite online backup),
- `media.tar.gz`: everything under MEDIA_ROOT,
- `manifest.json`: what was backed up, when, and the SHA-256 of each file (checked before a restore).
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connections

from apps.core.errors import ValidationFailed

MANIFEST = "manifest.json"
MEDIA_ARCHIVE = "media.tar.gz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: dict[str, str]  # name → SHA-256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _vendor(alias: str) -> str:
    return connections[alias].vendor


def _pg_environment(alias: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/psql (the password through the environment only)."""
    db = connections[alias].settings_dict
    args = ["--dbname", db["NAME"]]
    if db.get("HOST"):
        args += ["--host", db["HOST"]]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", db["USER"]]
    environment = {**os.environ}
    if db.get("PASSWORD"):
        environment["PGPASSWORD"] = db["PASSWORD"]
    return args, environment


def _run(command: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def backup_create(*, destination: Path, alias: str = "default") -> BackupResult:
    """Write a backup of the database and MEDIA_ROOT into `destination` (created; must be empty)."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise ValidationFailed(f"{destination} is not empty; give a new folder for the backup.")
    vendor = _vendor(alias)
    if vendor == "postgresql":
        database_file = destination / "database.dump"
        args, environment = _pg_environment(alias)
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(database_file), *args],
             environment)  # fmt: skip
    elif vendor == "sqlite":
        database_file = destination / "database.sqlite3"
        connection = connections[alias]
        connection.ensure_connection()
        target = sqlite3.connect(database_file)
        try:
            connection.connection.backup(target)
        finally:
            target.close()
    else:
        raise ValidationFailed(f"Backups support PostgreSQL and SQLite, not {vendor}.")

    media_root = Path(settings.MEDIA_ROOT)
    with tarfile.open(destination / MEDIA_ARCHIVE, "w:gz") as archive:
        if media_root.exists():
            for path in sorted(media_root.rglob("*")):
                archive.add(path, arcname=str(path.relative_to(media_root)), recursive=False)

    files = {name: _sha256(destination / name) for name in (database_file.name, MEDIA_ARCHIVE)}
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "database_vendor": vendor,
        "files": files,
    }
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupResult(path=destination, files=files)


def backup_verify(*, source: Path) -> dict:
    """Read the manifest and check every file against its SHA-256; returns the manifest."""
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationFailed(f"{source} holds no readable {MANIFEST}: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise ValidationFailed(f"Unknown backup format {manifest.get('format')!r}.")
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.exists() or _sha256(path) != expected:
            raise ValidationFailed(f"{path} is missing or damaged (its SHA-256 does not match the manifest).")
    return manifest


def backup_restore(*, source: Path, alias: str = "default") -> dict:
    """Replace the database and MEDIA_ROOT with the backup in `source` (checked first). Everything
    written since the backup is lost: this is for disaster recovery."""
    source = Path(source)
    manifest = backup_verify(source=source)
    vendor = _vendor(alias)
    if manifest["database_vendor"] != vendor:
        raise ValidationFailed(f"This is a {manifest['database_vendor']} backup; the database is {vendor}.")

    connection = connections[alias]
    if vendor == "postgresql":
        connection.close()  # hold no lock on the tables the restore drops
        args, environment = _pg_environment(alias)
        # Not `pg_restore --clean`: it drops each partition's inherited constraints one by one, which
        # PostgreSQL refuses (usage events live in monthly partitions). The dump becomes a script, and
        # psql runs it after emptying the schema, all in one transaction: a restore that fails midway
        # leaves the database as it was.
        with tempfile.TemporaryDirectory(prefix="billing-portal-restore-") as scratch:
            script = Path(scratch) / "database.sql"
            _run(["pg_restore", "--no-owner", "--no-privileges", "--file", str(script),
                  str(source / "database.dump")], environment)  # fmt: skip
            _run(["psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1",
                  "--command", "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;",
                  "--file", str(script), *args], environment)  # fmt: skip
    else:
        connection.ensure_connection()
        backup = sqlite3.connect(source / "database.sqlite3")
        try:
            backup.backup(connection.connection)
        finally:
            backup.close()

    media_root = Path(settings.MEDIA_ROOT)
    staging = media_root.with_name(media_root.name + ".restoring")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(source / MEDIA_ARCHIVE, "r:gz") as archive:
        archive.extractall(staging, filter="data")  # refuses absolute paths, links out and `..`
    media_root.mkdir(parents=True, exist_ok=True)
    for path in media_root.iterdir():  # empty it (it may be a mount point: keep the folder itself)
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for path in staging.iterdir():
        path.rename(media_root / path.name)
    staging.rmdir()
    return manifest
