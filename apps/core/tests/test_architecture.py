"""The apps' dependency order (docs/architecture.md), as `make lint` checks it with import-linter's
contracts in `.importlinter`: the tree holds it, and an import against it fails the check."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own tool on our own tree
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    """The apps and the contracts, copied so that a test can break them."""
    shutil.copytree(ROOT / "apps", tmp_path / "apps", ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_tree_keeps_every_contract():
    result = _lint_imports(ROOT)

    assert result.returncode == 0, result.stdout
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_order(tree_copy):
    # Invoice documents importing the billing engine, which sits above them.
    (tree_copy / "apps/invoices/upward.py").write_text("from apps.billing.services import subscription_cancel\n")

    result = _lint_imports(tree_copy)

    assert result.returncode == 1
    assert "Apps depend on the apps below them only BROKEN" in result.stdout
    assert "apps.invoices.upward -> apps.billing.services" in result.stdout


def test_a_domain_module_importing_a_screen_breaks_the_order(tree_copy):
    # The engine importing the API that calls it (same app: only the screens contract catches it).
    (tree_copy / "apps/billing/services/screen.py").write_text("from apps.billing.api import views\n")

    result = _lint_imports(tree_copy)

    assert result.returncode == 1
    assert "Domain code never imports a screen (admin, API, portal, back office, demo) BROKEN" in result.stdout
    assert "apps.billing.services.screen -> apps.billing.api.views" in result.stdout


def test_an_app_reaching_into_the_back_office_breaks_the_order(tree_copy):
    (tree_copy / "apps/accounts/reach.py").write_text("from apps.backoffice.admin import customers\n")

    result = _lint_imports(tree_copy)

    assert result.returncode == 1
    assert "apps.accounts.reach -> apps.backoffice.admin" in result.stdout
