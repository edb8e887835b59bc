import uuid
from pathlib import Path

import pytest
from django.db import connection

from .services import ThrowawayPostgres

TEMPLATE = "bp_fault_template"


@pytest.fixture(scope="module")
def postgres(django_db_setup, django_db_blocker):
    """A throwaway PostgreSQL cluster holding a template database with the suite's schema."""
    if connection.vendor != "postgresql":
        pytest.skip("fault tests copy the suite's PostgreSQL schema (run them with DATABASE_URL set)")
    cluster = ThrowawayPostgres()
    try:
        cluster.init()
        cluster.start()
        with django_db_blocker.unblock():
            cluster.load_schema_from_test_database(TEMPLATE)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def fault_database(postgres) -> str:
    """A fresh database on the throwaway cluster, copied from the template."""
    name = f"bp_fault_{uuid.uuid4().hex[:8]}"
    postgres.copy_database(TEMPLATE, name)
    return name


@pytest.fixture
def media(tmp_path) -> Path:
    path = tmp_path / "fault-media"
    path.mkdir()
    return path
