"""Files to structured text: a title and sections (a heading path and its paragraphs).

Formats by file name: Markdown (``.md .markdown .mdx``), plain text (``.txt .text``, and
files without an extension), reStructuredText (``.rst``), HTML (``.html .htm .xhtml``,
see bot.knowledge.html) and PDF (``.pdf``, see bot.knowledge.pdf).

Refused with ``KnowledgeError`` (and nothing written): an unsupported type, an empty file,
a file over the size limit, binary content where text was expected, text that is not
UTF-8 (UTF-16 and UTF-8 with a byte-order mark are accepted; HTML may declare its charset),
a file with no text once parsed, an unreadable or encrypted PDF.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from bot.errors import KnowledgeError
from bot.knowledge.document import Parsed, Section, decode, flush, titled
from bot.knowledge.html import read_html
from bot.knowledge.pdf import read_pdf

KINDS = {".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".txt": "text",
         ".text": "text", "": "text", ".rst": "rst", ".html": "html", ".htm": "html",
         ".xhtml": "html", ".pdf": "pdf"}
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+|~+|\^+|\*+)\s*$")


def kind_of(name: str) -> str:
    """The reader for a file name, or ``KnowledgeError`` listing the supported types."""
    ext = PurePath(name).suffix.lower()
    if ext not in KINDS:
        supported = " ".join(sorted(k for k in KINDS if k))
        raise KnowledgeError(f"unsupported file type '{ext}' (supported: {supported})")
    return KINDS[ext]


def read(name: str, data: bytes, max_bytes: int) -> Parsed:
    """Parse one file's bytes; ``KnowledgeError`` names what is wrong with it."""
    kind = kind_of(name)
    if len(data) > max_bytes:
        raise KnowledgeError(f"is {_mb(len(data))}; the limit is {_mb(max_bytes)} "
                             "(KNOWLEDGE_MAX_FILE_MB)")
    if not data.strip():
        raise KnowledgeError("is empty")
    stem = PurePath(name).stem or name
    if kind == "pdf":
        parsed = read_pdf(data, stem)
    elif kind == "html":
        parsed = read_html(data, stem)
    else:
        text = decode(data)
        parsed = read_markdown(text, stem) if kind == "markdown" else read_text(text, stem, kind)
    parsed.sections = [s for s in parsed.sections if s.paragraphs]
    if not parsed.sections:
        raise KnowledgeError("has no text")
    return parsed


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


# --- plain text and reStructuredText -------------------------------------------------------
def read_text(text: str, stem: str, kind: str = "text") -> Parsed:
    """Paragraphs split at blank lines; a line underlined with ===/---/~~~ is a heading
    (reStructuredText and many plain-text documents), the first underline style the top level."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections = [Section([])]
    styles: list[str] = []
    para: list[str] = []
    i = 0
    while i < len(lines):
        line, nxt = lines[i], lines[i + 1] if i + 1 < len(lines) else ""
        under = _UNDERLINE.match(nxt)
        if line.strip() and under and len(nxt.strip()) >= len(line.strip()) >= 1 and not para:
            style = under.group(1)[0]
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            path = sections[-1].heading[:level] + [line.strip()]
            sections.append(Section(path))
            i += 2
            continue
        if not line.strip():
            flush(sections[-1], para)
        elif not _UNDERLINE.match(line) or para:
            para.append(line.rstrip())
        i += 1
    flush(sections[-1], para)
    return titled(sections, stem, "text" if kind == "text" else "rst")


# --- Markdown --------------------------------------------------------------------------------
def read_markdown(text: str, stem: str) -> Parsed:
    """ATX (``## Title``) and setext headings; paragraphs at blank lines; fenced code kept
    whole; HTML comments dropped; YAML front matter's ``title:`` names the document."""
    text = _COMMENT.sub("", text)  # HTML comments are not rendered (metadata, notes)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    front_title, lines = _front_matter(lines)
    sections = [Section([])]
    para: list[str] = []
    fence: str | None = None
    for line in lines:
        if fence is not None:
            para.append(line)
            if line.strip().startswith(fence):
                fence = None
                flush(sections[-1], para)
            continue
        m = _FENCE.match(line)
        if m:
            flush(sections[-1], para)
            fence = m.group(1)
            para.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            flush(sections[-1], para)
            level = len(atx.group(1))
            path = sections[-1].heading[:level - 1]
            path += [""] * (level - 1 - len(path))
            sections.append(Section([*path, _inline(atx.group(2))]))
            continue
        if para and re.match(r"^\s{0,3}(=+|-{2,})\s*$", line) and len(para) == 1:
            heading, para[:] = para[0].strip(), []
            level = 1 if line.strip()[0] == "=" else 2
            sections.append(Section([*sections[-1].heading[:level - 1], _inline(heading)]))
            continue
        if not line.strip():
            flush(sections[-1], para)
        else:
            para.append(line.rstrip())
    flush(sections[-1], para)
    for s in sections:
        s.heading = [h for h in s.heading if h]
    parsed = titled(sections, stem, "markdown")
    if front_title:
        parsed.title = front_title
    return parsed


def _front_matter(lines: list[str]) -> tuple[str, list[str]]:
    if not lines or lines[0].strip() != "---":
        return "", lines
    for n in range(1, min(len(lines), 200)):
        if lines[n].strip() in ("---", "..."):
            title = next((ln.split(":", 1)[1].strip().strip("'\"") for ln in lines[1:n]
                          if ln.lower().startswith("title:")), "")
            return title, lines[n + 1:]
    return "", lines


def _inline(text: str) -> str:
    """A heading without Markdown emphasis (``*``), code ticks and link targets; underscores
    stay (identifiers such as ``ERR_REQUIRE_ESM`` or ``child_process`` are common there)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*`]+", "", text).strip()
