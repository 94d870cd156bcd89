"""PDF to sections with ``pypdf`` (pure Python; the only module importing it, its errors
become ``KnowledgeError`` here). Each page's text is split into paragraphs at blank lines
(or kept as one block the chunker splits at sentences). Sections come from the outline
(bookmarks) when the PDF has one, else they are the pages ("page 3"). The title is the
document's metadata title, else the file name."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from bot.errors import KnowledgeError
from bot.knowledge.document import Parsed, Section

logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files warn a lot


def read_pdf(data: bytes, stem: str) -> Parsed:
    if not data.lstrip()[:5] == b"%PDF-":
        raise KnowledgeError("is not a PDF (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise KnowledgeError("is an encrypted PDF; remove the password first")
        pages = [page.extract_text() or "" for page in reader.pages]
        marks = _outline(reader)
        meta = reader.metadata
        title = str(meta.title).strip() if meta and meta.title else ""
    except KnowledgeError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise KnowledgeError(f"is an unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not any(p.strip() for p in pages):
        raise KnowledgeError("has no extractable text (a scanned PDF? run OCR first)")
    sections: list[Section] = []
    for n, text in enumerate(pages):
        heading = [marks[n]] if n in marks else (
            sections[-1].heading if marks and sections else [f"page {n + 1}"])
        if not sections or heading != sections[-1].heading:
            sections.append(Section(list(heading)))
        sections[-1].paragraphs += _paragraphs(text)
    return Parsed(title or stem, sections, "pdf")


def _paragraphs(text: str) -> list[str]:
    text = re.sub(r"-\n(?=[a-z])", "", text.replace("\r", ""))  # re-join hyphenated words
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _outline(reader: PdfReader) -> dict[int, str]:
    """First top-level bookmark title per page index (empty when there is no outline)."""
    out: dict[int, str] = {}
    try:
        items: list[Any] = list(reader.outline)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        return out
    for item in items:
        if isinstance(item, list):
            continue  # nested levels: the top level is enough for citing
        try:
            page = reader.get_destination_page_number(item)
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
            continue
        title = " ".join(str(getattr(item, "title", "") or "").split())
        if page is not None and page >= 0 and title:
            out.setdefault(page, title)
    return out
