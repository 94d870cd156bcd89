"""HTML to sections with the standard library's parser: ``<h1>``-``<h6>`` open sections,
block elements end paragraphs, ``<pre>`` keeps its lines, scripts/styles/navigation are
skipped, ``<title>`` (or a lone ``<h1>``) names the document. The charset is UTF-8 unless
a byte-order mark or ``<meta charset>`` says otherwise."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from bot.knowledge.document import Parsed, Section, decode, titled

_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "svg", "iframe"}
_BLOCK = {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "table", "tr",
          "section", "article", "main", "header", "aside", "figure", "figcaption", "br", "hr",
          "form", "details", "summary", "address"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections = [Section([])]
        self.title = ""
        self._buf: list[str] = []
        self._heading: tuple[int, list[str]] | None = None
        self._skip = 0
        self._pre = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS and not self._skip:
            self._end_paragraph()
            self._heading = (_HEADINGS[tag], [])
        elif tag in _BLOCK:
            self._end_paragraph()
            self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS and self._heading is not None:
            level, words = self._heading
            self._heading = None
            text = " ".join("".join(words).split())
            if text:
                path = self.sections[-1].heading[:level - 1]
                self.sections.append(Section([*path, *[""] * (level - 1 - len(path)), text]))
        elif tag in _BLOCK:
            self._end_paragraph()
            self._pre = max(0, self._pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip:
            return
        elif self._heading is not None:
            self._heading[1].append(data)
        else:
            self._buf.append(data)

    def _end_paragraph(self) -> None:
        raw = "".join(self._buf)
        self._buf.clear()
        text = raw.strip("\n") if self._pre else " ".join(raw.split())
        if text.strip():
            self.sections[-1].paragraphs.append(text)


def read_html(data: bytes, stem: str) -> Parsed:
    declared = _CHARSET.search(data[:4096])
    text = decode(data, declared.group(1).decode("ascii") if declared else None)
    parser = _Parser()
    parser.feed(text)
    parser.close()
    parser._end_paragraph()
    for s in parser.sections:
        s.heading = [h for h in s.heading if h]
    parsed = titled(parser.sections, stem, "html")
    title = " ".join(parser.title.split())
    if title:
        parsed.title = title
    return parsed
