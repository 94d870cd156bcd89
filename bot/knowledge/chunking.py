"""Sections to chunks: a chunk never crosses a heading; inside a section, paragraphs are
packed up to ``max_chars`` and split only at paragraph boundaries, except a paragraph
longer than ``max_chars``, which is split at sentences (then at words). Every chunk keeps
its section path and position, and a content hash (section + text) that tells which
chunks a new version of the document changed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.knowledge.document import Parsed

SECTION_SEP = " > "
_SENTENCE = re.compile(r"(?<=[.!?。])\s+(?=\S)")
_LINES = re.compile(r"^(\s{0,3}(```|~~~)|    |\t|\s*([-*+|]|\d+[.)])\s)", re.M)


@dataclass(frozen=True)
class Chunk:
    position: int  # 0-based order in the document
    section: str  # heading path, "Install > Linux" ("" before the first heading)
    text: str
    hash: str  # of section and text: the same content at another position is unchanged

    def index_text(self, title: str) -> str:
        """What is embedded and BM25-indexed: the title and section give a chunk its topic."""
        head = f"{title} — {self.section}" if self.section else title
        return f"{head}\n{self.text}"


def chunk_hash(section: str, text: str) -> str:
    return hashlib.sha256(f"{section}\x00{text}".encode()).hexdigest()[:16]


def chunks(parsed: Parsed, max_chars: int = 1_000) -> list[Chunk]:
    """The chunks of a parsed document, in order."""
    out: list[Chunk] = []
    for section in parsed.sections:
        label = SECTION_SEP.join(section.heading)
        for text in _pack(section.paragraphs, max_chars):
            out.append(Chunk(len(out), label, text, chunk_hash(label, text)))
    return out


def _pack(paragraphs: list[str], max_chars: int) -> Iterator[str]:
    """Paragraphs joined up to ``max_chars``; long ones split in pieces below it."""
    buf: list[str] = []
    size = 0
    for para in paragraphs:
        for piece in _split(para, max_chars):
            if buf and size + 2 + len(piece) > max_chars:
                yield "\n\n".join(buf)
                buf, size = [], 0
            buf.append(piece)
            size += len(piece) + (2 if size else 0)
    if buf:
        yield "\n\n".join(buf)


def _split(para: str, max_chars: int) -> Iterator[str]:
    if len(para) <= max_chars:
        yield para
        return
    if _LINES.search(para):  # code, lists, tables: split at lines, keep them
        parts, sep = para.split("\n"), "\n"
    else:  # prose (hard-wrapped or not): split at sentences
        parts, sep = _SENTENCE.split(" ".join(para.split())), " "
    buf = ""
    for part in parts:
        for piece in _words(part, max_chars):
            joined = f"{buf}{sep}{piece}" if buf else piece
            if len(joined) <= max_chars:
                buf = joined
            else:
                yield buf
                buf = piece
    if buf:
        yield buf


def _words(text: str, max_chars: int) -> Iterator[str]:
    """A sentence cut at spaces (a word longer than the limit is cut where it must)."""
    if len(text) <= max_chars:
        yield text
        return
    line = ""
    for word in text.split():
        while len(word) > max_chars:
            if line:
                yield line
                line = ""
            yield word[:max_chars]
            word = word[max_chars:]
        if line and len(line) + 1 + len(word) > max_chars:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line
