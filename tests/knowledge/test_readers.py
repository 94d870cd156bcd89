"""Readers: structure from Markdown, text, reStructuredText, HTML and PDF; bad files refused."""

from __future__ import annotations

import codecs

import pytest

from bot.errors import KnowledgeError
from bot.knowledge.readers import read
from tests.knowledge.pdfgen import make_pdf

LIMIT = 1_000_000
MD = """---
title: Member Handbook
---
Welcome text before any heading.

# Getting started

Create an account on the site.
Then verify your e-mail.

## On Linux

<!-- YAML
added: v1.0
-->

```bash
# not a heading inside code

pip install thing
```

Setext heading
--------------

Under the setext heading.
"""


def test_markdown_sections_follow_headings_and_front_matter_names_the_title() -> None:
    """ATX and setext headings open sections with their path; fenced code stays one block."""
    p = read("handbook.md", MD.encode(), LIMIT)
    assert p.title == "Member Handbook" and p.kind == "markdown"
    heads = [s.heading for s in p.sections]
    assert heads == [[], ["Getting started"], ["Getting started", "On Linux"],
                     ["Getting started", "Setext heading"]]
    assert p.sections[1].paragraphs == ["Create an account on the site.\nThen verify your e-mail."]
    code = p.sections[2].paragraphs[0]
    assert code.startswith("```bash") and "not a heading" in code and "pip install" in code


def test_heading_identifiers_keep_their_underscores() -> None:
    """Code in headings loses its ticks and bold its stars, never an identifier's underscores."""
    p = read("errors.md", b"# Errors\n\n## `ERR_REQUIRE_ESM`\n\nx\n\n## **`child_process.exec()`**\n\ny\n", LIMIT)
    assert [s.heading for s in p.sections] == [["ERR_REQUIRE_ESM"], ["child_process.exec()"]]


def test_a_lone_top_heading_becomes_the_title() -> None:
    """A document with one H1 is titled by it and its sections drop that level."""
    p = read("faq.md", b"# FAQ\n\n## Billing\n\nPay monthly.\n\n## Refunds\n\nWithin 14 days.\n", LIMIT)
    assert p.title == "FAQ"
    assert [s.heading for s in p.sections] == [["Billing"], ["Refunds"]]


def test_rst_and_text_underlined_headings() -> None:
    """Underlined lines are headings; the first underline style is the top level."""
    text = "Guide\n=====\n\nIntro.\n\nPart A\n------\n\nText A.\n\nPart B\n------\n\nText B.\n"
    p = read("guide.rst", text.encode(), LIMIT)
    assert p.title == "Guide"
    assert [(s.heading, s.paragraphs) for s in p.sections] == [
        ([], ["Intro."]), (["Part A"], ["Text A."]), (["Part B"], ["Text B."])]
    plain = read("notes.txt", b"just one line\n\nand another\n", LIMIT)
    assert plain.title == "notes" and plain.sections[0].paragraphs == ["just one line", "and another"]


def test_html_headings_paragraphs_and_skipped_scripts() -> None:
    """<title> names it, h2/h3 open sections, scripts/styles/nav are not text, entities decoded."""
    html = b"""<html><head><title>Rules &amp; Roles</title><style>p{}</style>
    <script>var secret = 1;</script></head><body><nav>Home | About</nav>
    <h1>Rules</h1><p>Be kind.</p><h2>Voice</h2><p>No shouting &lt;please&gt;.</p>
    <ul><li>Mute when idle</li><li>Push to talk</li></ul><h3>Music</h3><pre>line 1
line 2</pre></body></html>"""
    p = read("rules.html", html, LIMIT)
    assert p.title == "Rules & Roles"
    flat = {" > ".join(s.heading): s.paragraphs for s in p.sections}
    assert flat == {"": ["Be kind."], "Voice": ["No shouting <please>.", "Mute when idle", "Push to talk"],
                    "Voice > Music": ["line 1\nline 2"]}


def test_html_declared_charset_is_honoured() -> None:
    """A page declaring latin-1 in <meta charset> is decoded with it."""
    html = '<meta charset="iso-8859-1"><h1>Café</h1><p>Crème brûlée.</p>'.encode("latin-1")
    p = read("menu.htm", html, LIMIT)
    assert p.sections[0].paragraphs == ["Crème brûlée."] and p.title == "Café"


def test_pdf_sections_from_outline_or_pages() -> None:
    """PDF text by page; the outline names sections, else 'page N'; metadata title used."""
    data = make_pdf([["Refunds are issued within 14 days."], ["We ship worldwide."]],
                    title="Shop Guide", outline=[("Refunds", 0), ("Shipping", 1)])
    p = read("guide.pdf", data, LIMIT)
    assert p.title == "Shop Guide" and p.kind == "pdf"
    assert [(s.heading, s.paragraphs) for s in p.sections] == [
        (["Refunds"], ["Refunds are issued within 14 days."]), (["Shipping"], ["We ship worldwide."])]
    plain = read("scan.pdf", make_pdf([["one"], ["two"]]), LIMIT)
    assert [s.heading for s in plain.sections] == [["page 1"], ["page 2"]]


def test_utf16_and_bom_text_are_accepted() -> None:
    """UTF-16 with a BOM and UTF-8 with a BOM decode to the same text."""
    text = "# Título\n\nAção rápida.\n"
    a = read("a.md", text.encode("utf-16"), LIMIT)
    b = read("b.md", codecs.BOM_UTF8 + text.encode(), LIMIT)
    assert a.sections == b.sections and a.title == "Título"


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.md", b"", "is empty"),
    ("blank.txt", b"  \n\n\t\n", "is empty"),
    ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
    ("latin1.txt", "Crème brûlée".encode("latin-1"), "is not valid UTF-8"),
    ("huge.txt", b"word " * 300_000, "the limit is"),
    ("photo.jpg", b"\xff\xd8\xff", "unsupported file type '.jpg'"),
    ("fake.pdf", b"hello, not a pdf", "is not a PDF"),
    ("broken.pdf", b"%PDF-1.4\n garbage garbage", "unreadable PDF"),
    ("noheadings.html", b"<html><script>x()</script></html>", "has no text"),
    ("scan.pdf", make_pdf([[]]), "no extractable text"),
])
def test_bad_files_are_refused_with_a_clear_reason(name: str, data: bytes, message: str) -> None:
    """Binary, empty, huge, wrong-encoding, unsupported and broken files raise KnowledgeError."""
    with pytest.raises(KnowledgeError, match=message):
        read(name, data, LIMIT)


def test_encrypted_pdf_is_refused() -> None:
    """A password-protected PDF is refused with a hint, not read as garbage."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(make_pdf([["secret text"]]))).pages:
        writer.add_page(page)
    writer.encrypt("pw", algorithm="RC4-40")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(KnowledgeError, match="encrypted"):
        read("locked.pdf", buf.getvalue(), LIMIT)
