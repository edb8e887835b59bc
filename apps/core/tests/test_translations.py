"""Simplified Chinese is complete: every message of the portal, the admin, the emails and the PDF bills
has a translation that is neither empty nor fuzzy, the catalog is in step with the code (a string
added to the code without Chinese fails here), and the compiled catalog is the one the .po makes.

The catalog is regenerated the way docs/portal.md says (`makemessages`), into a temporary directory,
so that the repository's files are never touched."""

import ast
import gettext
import io
import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.apps import apps as django_apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.commands import makemessages
from django.test.utils import isolate_apps
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import trans_real
from django_countries.fields import CountryField
from djmoney.models.fields import CurrencyField

from apps.core.errors import ApplicationError

LOCALE = "zh_Hans"
CATALOG = Path(settings.BASE_DIR) / "locale" / LOCALE / "LC_MESSAGES" / "django.po"
COMPILED = CATALOG.with_suffix(".mo")
IGNORED = [".venv/*", "bench/*", "*/tests/*", "node_modules/*", "staticfiles/*", "media/*"]


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))}


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


# --- Domain errors ----------------------------------------------------------------------------------
# The messages of the errors services raise reach staff (the admin) and customers (the portal, the API
# in the request's language). A message written as a plain string or f-string is never extracted into
# the catalog, so the tests above cannot see it: this check finds them in the domain modules.

DOMAIN_MODULES = sorted(
    {
        *Path(settings.BASE_DIR).glob("apps/*/services.py"),
        *Path(settings.BASE_DIR).glob("apps/*/services/*.py"),
        *Path(settings.BASE_DIR).glob("apps/payments/stripe/*.py"),
        *Path(settings.BASE_DIR).glob("apps/payments/dunning/*.py"),
        *(
            Path(settings.BASE_DIR) / name
            for name in (
                "apps/accounts/credentials.py",
                "apps/accounts/invitations.py",
                "apps/core/idempotency.py",
                "apps/core/transitions.py",
                "apps/usage/corrections.py",
                "apps/invoices/selectors.py",
                "apps/payments/selectors.py",
                "apps/subscriptions/selectors.py",
                "apps/payments/receipts.py",
            )
        ),
    }
    - {Path(settings.BASE_DIR) / "apps/payments/stripe/fake_server.py"}  # a test double, not the product
)
# Errors whose message a user reads (internal errors such as ValueError are for developers).
USER_ERRORS = {
    *(cls.__name__ for cls in _subclasses(ApplicationError)),
    "ApplicationError",
    "ValidationError",
    "DjangoValidationError",
    "_Rejected",
}
# Where a service collects field errors before raising them.
ERROR_COLLECTORS = {"errors", "problems"}
ERROR_ADDERS = {"add", "refuse"}


def _text(node) -> bool:
    """Whether the node is a literal sentence (a str constant or f-string with words in it, or text
    concatenated to one)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) or _text(node.right)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.Constant) and re.search("[A-Za-z]{2}", part.value) for part in node.values)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value.strip()


def _messages_in(node):
    """The message expressions of an error's arguments: the node itself, dict values, list items."""
    if isinstance(node, ast.Dict):
        for value in node.values:
            yield from _messages_in(value)
    elif isinstance(node, ast.DictComp):
        yield from _messages_in(node.value)
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            yield from _messages_in(item)
    elif isinstance(node, ast.IfExp):
        yield from _messages_in(node.body)
        yield from _messages_in(node.orelse)
    else:
        yield node


def _collector(node) -> bool:
    """`errors`, `errors[...]`, `errors.setdefault(...)`: where field errors are collected."""
    while isinstance(node, ast.Subscript | ast.Call | ast.Attribute):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return isinstance(node, ast.Name) and node.id in ERROR_COLLECTORS


def untranslated_messages(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: text` for each user-facing error message of the source not marked for translation."""
    found = []
    for node in ast.walk(ast.parse(source)):
        candidates = []
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) in USER_ERRORS:
                candidates = [*node.exc.args, *(k.value for k in node.exc.keywords if k.arg in ("message", "fields"))]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append":
            candidates = node.args if _collector(node.func.value) else []
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERROR_ADDERS:
            candidates = node.args[1:]
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Subscript) and _collector(target) for target in node.targets
        ):
            candidates = [node.value]
        for candidate in candidates:
            for message in _messages_in(candidate):
                if _text(message):
                    found.append(f"{filename}:{message.lineno}: {ast.unparse(message)[:100]}")
    return found


def test_the_check_finds_a_message_that_is_not_marked_for_translation():
    source = (
        "def f(x, errors):\n"
        "    errors.setdefault('amount', []).append('Must be greater than zero.')\n"
        "    errors['quantity'] = [gettext('Must be greater than zero.')]\n"
        "    raise ValidationFailed(f'Invoice {x} is a draft.', fields={'invoice': ['A draft cannot be credited.']})\n"
    )

    assert untranslated_messages(source) == [
        "<source>:4: f'Invoice {x} is a draft.'",
        "<source>:4: 'A draft cannot be credited.'",
        "<source>:2: 'Must be greater than zero.'",
    ]


def test_the_domain_errors_are_marked_for_translation():
    assert len(DOMAIN_MODULES) > 30
    found = []
    for path in DOMAIN_MODULES:
        found += untranslated_messages(path.read_text(), str(path.relative_to(settings.BASE_DIR)))

    assert not found, (
        "Error messages that staff and customers read, not marked for translation (wrap them in gettext with "
        "named placeholders, then translate them into Chinese):\n" + "\n".join(found)
    )


# --- Models ------------------------------------------------------------------------------------------
# The admin shows every model's name, its fields' names and help texts, and its choices' labels; the
# API's schema and the portal show some of them too. Each must be a lazy translation (`gettext_lazy`,
# read when shown, in the reader's language) whose message has Chinese in the compiled catalog: a
# plain string, or a field left to Django's name-derived default ("billing anchor day"), never is.


def _lazy_msgid(value) -> str | None:
    """The catalog key of a lazy translation ("context\\x04msgid" for pgettext_lazy), or None when the
    value is not one."""
    if not isinstance(value, Promise):
        return None
    func, args, _kwargs, *_ = value.__reduce__()[1]
    if func.__name__ == "gettext" and len(args) == 1:
        return args[0]
    if func.__name__ == "pgettext" and len(args) == 2:
        return f"{args[0]}\x04{args[1]}"
    return None  # format_lazy (Django's default plural: the name + "s"), ngettext_lazy


def _flat_choices(choices):
    for value, label in choices:
        if isinstance(label, list | tuple):  # an optgroup
            yield from _flat_choices(label)
        else:
            yield value, label


def _choices_named_elsewhere(field, values: set) -> bool:
    """Choices whose labels are not ours to translate: countries (django-countries' own Chinese names),
    currencies (`currency_choices`: CLDR's name in the reader's language), languages (each in its own
    name, as a language picker writes them). `test_choices_named_elsewhere_read_in_chinese` checks them."""
    return (
        isinstance(field, CountryField)
        or values == set(settings.CURRENCIES)
        or values == {code for code, _ in settings.LANGUAGES}
    )


def model_texts_untranslated(models_to_check, catalog_lookup) -> list[str]:
    """`app.Model.field (what): text` for each model text that is not a lazy translation with Chinese."""
    found = []

    def check(where: str, value) -> None:
        if value in ("", None):
            return
        msgid = _lazy_msgid(value)
        if msgid is None:
            found.append(f"{where}: {str(value)!r} is not marked for translation")
        elif not catalog_lookup(msgid):
            found.append(f"{where}: {str(value)!r} has no Chinese in {COMPILED.name}")

    for model in models_to_check:
        name = f"{model._meta.label}"
        check(f"{name} (verbose_name)", model._meta.verbose_name)
        check(f"{name} (verbose_name_plural)", model._meta.verbose_name_plural)
        for field in model._meta.get_fields(include_parents=False):
            if field.auto_created and not field.concrete:
                continue  # a reverse relation: named by the other side
            if getattr(field, "primary_key", False) and field.auto_created:
                continue  # the implicit id
            if isinstance(field, CurrencyField) and not field.editable:
                continue  # django-money's hidden currency column beside a money field: never shown
            where = f"{name}.{field.name}"
            check(f"{where} (verbose_name)", field.verbose_name)
            check(f"{where} (help_text)", field.help_text)
            choices = list(_flat_choices(getattr(field, "choices", None) or []))
            if _choices_named_elsewhere(field, {value for value, _ in choices}):
                continue
            for value, label in choices:
                check(f"{where} (choice {value!r})", label)
    return found


def _our_models():
    return [
        model
        for config in django_apps.get_app_configs()
        if config.name.startswith("apps.")
        for model in config.get_models()
    ]


def _chinese_catalog_lookup():
    catalog = trans_real.translation("zh-hans")._catalog

    def lookup(msgid: str) -> bool:
        return bool(catalog.get(msgid))

    return lookup


def test_choices_named_elsewhere_read_in_chinese():
    from apps.accounts.models import Customer
    from apps.core.money import currency_choices

    with translation.override("zh-hans"):
        countries = dict(Customer._meta.get_field("country").choices)
        currencies = dict(currency_choices())

    assert str(countries["CN"]) == "中国"
    assert currencies["EUR"] == "EUR — 欧元"


@isolate_apps("apps.core")
def test_the_model_check_finds_untranslated_names_help_texts_and_choices():
    from django.db import models as db_models
    from django.utils.translation import gettext_lazy

    class Probe(db_models.Model):  # noqa: DJ008
        class Colour(db_models.TextChoices):
            RED = "red", gettext_lazy("a colour no catalog has")
            BLUE = "blue", "Blue"

        name = db_models.CharField(max_length=5, help_text="Plain help.")
        colour = db_models.CharField(max_length=5, choices=Colour.choices, verbose_name=gettext_lazy("name"))

        class Meta:
            app_label = "core"
            verbose_name = gettext_lazy("name")
            verbose_name_plural = gettext_lazy("name")

    found = model_texts_untranslated([Probe], _chinese_catalog_lookup())

    assert found == [
        "core.Probe.name (verbose_name): 'name' is not marked for translation",
        "core.Probe.name (help_text): 'Plain help.' is not marked for translation",
        "core.Probe.colour (choice 'red'): 'a colour no catalog has' has no Chinese in django.mo",
        "core.Probe.colour (choice 'blue'): 'Blue' is not marked for translation",
    ]


def test_every_model_name_field_name_help_text_and_choice_has_chinese():
    models_to_check = _our_models()
    assert len(models_to_check) > 50

    found = model_texts_untranslated(models_to_check, _chinese_catalog_lookup())

    assert not found, (
        "Model texts the admin shows that have no Chinese (give each field a verbose_name, wrap texts in "
        "gettext_lazy, then translate them):\n" + "\n".join(found)
    )
