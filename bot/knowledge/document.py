"""A parsed document (title, sections of paragraphs) and the text decoding every reader
shares; the readers are bot.knowledge.readers (Markdown, text), .html and .pdf."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from bot.errors import KnowledgeError


@dataclass
class Section:
    """Paragraphs under one heading path (``[]``: before any heading)."""

    heading: list[str]
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class Parsed:
    title: str
    sections: list[Section]
    kind: str  # markdown | text | html | pdf

    @property
    def text_chars(self) -> int:
        return sum(len(p) for s in self.sections for p in s.paragraphs)


def decode(data: bytes, declared: str | None = None) -> str:
    """Text of a file: UTF-8 (or UTF-16/UTF-8 with a BOM, or a declared charset)."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode(data, enc)
    if b"\x00" in data[:8192]:
        raise KnowledgeError("looks binary (it contains NUL bytes), not text")
    text = _decode(data, declared or "utf-8")
    controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > max(8, len(text[:8192]) // 100):
        raise KnowledgeError("looks binary (many control characters), not text")
    return text


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise KnowledgeError(f"declares an unknown encoding '{encoding}'") from None
    except UnicodeDecodeError as exc:
        raise KnowledgeError(
            f"is not valid {encoding.upper()} text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8") from None


def flush(section: Section, para: list[str]) -> None:
    text = "\n".join(para).strip("\n")
    if text.strip():
        section.paragraphs.append(text)
    para.clear()


def titled(sections: list[Section], stem: str, kind: str) -> Parsed:
    """The document's title: a lone top-level heading (then dropped from section paths),
    else the file name's stem."""
    tops = {s.heading[0] for s in sections if s.heading}
    if len(tops) == 1 and all(s.heading for s in sections if s.paragraphs):
        title = tops.pop()
        for s in sections:
            s.heading = s.heading[1:]
        return Parsed(title, sections, kind)
    return Parsed(stem, sections, kind)
