"""PDF documents (bills, credit notes): rendered with WeasyPrint from a Django template and local
static files only, stored once under a name of their own with their SHA-256, never replaced.

What is document-specific (the template, its context, the model and its database guard) stays with
the document's app; this module only renders, stores and checks bytes.

Rendering cost matters (a pdf worker renders every bill): each process builds the WeasyPrint font
configuration and each stylesheet once and keeps an image cache (the logo is parsed once), and
documents are styled with a user-agent stylesheet of their own elements only
(`pdf_user_agent.css`), see docs/performance.md. WeasyPrint is imported lazily because importing it
takes a while.
"""

import functools
import gc
import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile
from django.template.loader import render_to_string
from django.utils.translation import gettext

from apps.core.errors import Conflict

logger = logging.getLogger(__name__)


class PdfAlreadyStored(Conflict):
    code = "pdf_already_rendered"


class PdfIntegrity(StrEnum):
    INTACT = "intact"  # the stored file hashes to the recorded SHA-256
    ALTERED = "altered"  # the stored file differs from what was rendered
    MISSING = "missing"  # no file in storage where the record says


def static_root() -> Path:
    """Where relative URLs of a PDF template (stylesheets, logo, fonts) are resolved."""
    return Path(settings.BASE_DIR) / "static"


def static_url(path: str) -> str:
    """A `file://` URL for a static file: absolute paths as they are, others under static/."""
    candidate = Path(path)
    return (candidate if candidate.is_absolute() else static_root() / candidate).as_uri()


def _local_only_fetcher():
    """A WeasyPrint URL fetcher for rendering: documents may load local files (stylesheet, logo,
    fonts) but never anything from the network. WeasyPrint 70 wants a `URLFetcher` instance (it
    reads attributes of it), not a plain function."""
    from weasyprint.urls import URLFetcher

    class LocalOnlyURLFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith("file://"):
                raise ValueError(f"refusing to fetch {url!r} while rendering a PDF")
            return super().fetch(url, headers)

    return LocalOnlyURLFetcher(allowed_protocols={"file"})


@functools.cache
def _font_config() -> Any:
    """One font configuration per process, shared by every stylesheet and document."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@functools.cache
def _image_cache() -> dict[str, Any]:
    """WeasyPrint's image cache, kept for the process: the logo is read and parsed once."""
    return {}


@functools.lru_cache(maxsize=32)
def _stylesheet(path: str, modified_ns: int) -> Any:
    """A parsed stylesheet, rebuilt when the file changes (the modification time is part of the key)."""
    from weasyprint import CSS

    return CSS(filename=path, font_config=_font_config(), url_fetcher=_local_only_fetcher())


USER_AGENT_STYLESHEET = Path(__file__).with_name("pdf_user_agent.css")


@functools.cache
def _document_class() -> Any:
    """WeasyPrint's `HTML` with our user-agent stylesheet in place of its full HTML one.

    WeasyPrint (pinned at 70) takes a document's user-agent stylesheets from `HTML._ua_stylesheets`;
    it has no public option for them. Every element is matched against every user-agent selector,
    and the full sheet's few hundred (forms, lists, ruby, bidi) cost about an eighth of a bill's
    rendering time; ours holds the same rules for the elements documents use. `render_pdf(...,
    user_agent="weasyprint")` renders with WeasyPrint's own sheet, which the tests compare against."""
    from weasyprint import CSS, HTML
    from weasyprint.html import UA_COUNTER_STYLE

    sheet = CSS(filename=str(USER_AGENT_STYLESHEET), counter_style=UA_COUNTER_STYLE, font_config=_font_config())

    class DocumentHTML(HTML):
        def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
            return [sheet]

    return DocumentHTML


@contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Layout allocates hundreds of thousands of short-lived objects, which set off the cyclic garbage
    collector over and over (about a tenth of a bill's CPU time); what it leaves is collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def render_pdf(
    *,
    template_name: str,
    context: dict[str, Any],
    stylesheets: Iterable[str] = (),
    user_agent: str = "documents",
) -> bytes:
    """Render a Django template to PDF bytes. `stylesheets` are paths under static/ (or absolute),
    parsed once per process; relative URLs in the HTML resolve under static/; no network access.
    `user_agent="weasyprint"` styles the elements with WeasyPrint's full HTML stylesheet instead of
    ours (same output, slower; for comparison)."""
    from weasyprint import HTML

    document_class = HTML if user_agent == "weasyprint" else _document_class()
    html = render_to_string(template_name, context)
    sheets = []
    for name in stylesheets:
        path = Path(static_url(name).removeprefix("file://"))
        sheets.append(_stylesheet(str(path), path.stat().st_mtime_ns))
    document = document_class(string=html, base_url=static_root().as_uri() + "/", url_fetcher=_local_only_fetcher())
    with _garbage_collection_paused():
        return bytes(document.write_pdf(stylesheets=sheets, font_config=_font_config(), cache=_image_cache()))


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def pdf_file_store(*, field_file: FieldFile, filename: str, content: bytes) -> str:
    """Store `content` for the file field's instance under the name its `upload_to` gives `filename`,
    and point the field at it (the caller saves the instance). Never overwrites: an existing file is
    refused with `PdfAlreadyStored`, and so is losing a race for the name. Returns the stored name."""
    name = field_file.field.generate_filename(field_file.instance, filename)
    storage = field_file.storage
    if storage.exists(name):
        raise PdfAlreadyStored(
            gettext("A file is already stored at %(name)s; a stored PDF is never overwritten.") % {"name": name}
        )
    stored_name = storage.save(name, ContentFile(content), max_length=field_file.field.max_length)
    if stored_name != name:  # another process stored the same name meanwhile: keep theirs, drop ours
        storage.delete(stored_name)
        raise PdfAlreadyStored(
            gettext("A file is already stored at %(name)s; a stored PDF is never overwritten.") % {"name": name}
        )
    field_file.name = stored_name
    return stored_name


def pdf_file_discard(*, field_file: FieldFile, name: str) -> None:
    """Remove a file this process has just stored but could not record (its transaction failed)."""
    try:
        field_file.storage.delete(name)
    except OSError:
        logger.exception("could not remove the unrecorded PDF %s", name)


def pdf_file_read(field_file: FieldFile) -> bytes | None:
    """The stored bytes, or None when the file is missing from storage."""
    try:
        with field_file.storage.open(field_file.name, "rb") as handle:
            return bytes(handle.read())
    except FileNotFoundError:
        return None


def pdf_file_integrity(*, field_file: FieldFile, sha256: str) -> PdfIntegrity:
    content = pdf_file_read(field_file)
    if content is None:
        return PdfIntegrity.MISSING
    return PdfIntegrity.INTACT if sha256_hex(content) == sha256 else PdfIntegrity.ALTERED
