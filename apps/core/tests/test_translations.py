"""Simplified Chinese is complete: every message of the portal, the admin, the emails and the PDF bills
has a translation that is neither empty nor fuzzy, the catalog is in step with the code (a string
added to the code without Chinese fails here), and the compiled catalog is the one the .po makes.

The catalog is regenerated the way docs/portal.md says (`makemessages`), into a temporary directory,
so that the repository's files are never touched."""

import gettext
import io
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.core.management.commands import makemessages

LOCALE = "zh_Hans"
CATALOG = Path(settings.BASE_DIR) / "locale" / LOCALE / "LC_MESSAGES" / "django.po"
COMPILED = CATALOG.with_suffix(".mo")
IGNORED = [".venv/*", "bench/*", "*/tests/*", "node_modules/*", "staticfiles/*", "media/*"]


def _read(path: Path):
    # A fresh template's header has placeholders ("nplurals=INTEGER") that babel cannot read.
    text = path.read_bytes().replace(b"nplurals=INTEGER; plural=EXPRESSION;", b"nplurals=2; plural=0;")
    return read_po(io.BytesIO(text))


def _key(message) -> tuple:
    msgid = message.id if isinstance(message.id, tuple) else (message.id,)
    return (message.context or "", *msgid)


def _show(keys) -> str:
    return "\n".join(" | ".join(part for part in key if part) for key in sorted(keys))


class _MakemessagesInto(makemessages.Command):
    """Django's makemessages, writing its catalog into another directory."""

    target: str = ""

    def find_files(self, root):
        files = super().find_files(root)
        for translatable in files:
            translatable.locale_dir = self.target
        return files


@pytest.fixture(scope="module")
def catalog():
    return _read(CATALOG)


def test_no_message_is_untranslated_or_fuzzy(catalog):
    untranslated = {
        _key(message)
        for message in catalog
        if message.id and (not message.string or (isinstance(message.string, tuple) and not all(message.string)))
    }
    fuzzy = {_key(message) for message in catalog if message.id and message.fuzzy}

    assert not untranslated, f"Messages without Chinese in {CATALOG.name}:\n{_show(untranslated)}"
    assert not fuzzy, f"Fuzzy messages in {CATALOG.name} (check and remove the flag):\n{_show(fuzzy)}"


def test_the_catalog_is_in_step_with_the_code(catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(settings.BASE_DIR)
    command = _MakemessagesInto()
    command.target = str(tmp_path)
    call_command(command, locale=[LOCALE], ignore_patterns=IGNORED, keep_pot=True, verbosity=0)
    extracted = {_key(message) for message in _read(tmp_path / "django.pot") if message.id}
    present = {_key(message) for message in catalog if message.id}

    missing = extracted - present
    assert not missing, (
        f"Strings in the code that {CATALOG.name} lacks (run makemessages as docs/portal.md says, then "
        f"translate them):\n{_show(missing)}"
    )
    stale = present - extracted
    assert not stale, f"Messages in {CATALOG.name} that no code uses any more (remove them):\n{_show(stale)}"


def test_the_catalog_compiles_cleanly_and_the_compiled_file_is_current(catalog):
    subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(CATALOG)], check=True, capture_output=True)
    with COMPILED.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = set()
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        context = f"{message.context}\x04" if message.context else ""
        if isinstance(message.id, tuple):
            got = compiled.ngettext(context + message.id[0], context + message.id[1], 1)
            wanted = message.string[0]
        else:
            got, wanted = compiled.gettext(context + message.id), message.string
        if got != wanted:
            stale.add(_key(message))
    assert not stale, f"{COMPILED.name} is older than {CATALOG.name}; run compilemessages:\n{_show(stale)}"
