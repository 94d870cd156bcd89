"""Splitting long replies into platform-sized messages (Discord 2,000, Slack ~3,500 chars).

Cuts at the latest good boundary that fits — paragraph, line, sentence, word — and only
cuts inside a word when one word alone is longer than the limit. A fenced code block
(```lang) cut across messages is closed at the end of one chunk and reopened with the
same info string at the start of the next, so every chunk renders on its own.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_SENTENCE = re.compile(r"[.!?…][\"')\]]*\s+")
_MIN_SHARE = 0.3  # a coarse boundary must leave at least this share of the budget used
_RESERVE = 8  # room kept for a closing fence line


def split_message(text: str, limit: int) -> list[str]:
    """Chunks of at most ``limit`` characters whose concatenation reads as ``text``."""
    if limit < 40:
        raise ValueError("limit must be at least 40 characters")
    text = text.strip("\n")
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    fence = ""  # the opening fence line carried into the next chunk, "" outside code
    rest = text
    while rest:
        prefix = f"{fence}\n" if fence and len(fence) < limit // 4 else "```\n" if fence else ""
        if len(prefix) + len(rest) <= limit:
            chunks.append(prefix + rest)
            break
        end, start = _before_trailing_opener(rest, fence, *best_cut(rest, limit - len(prefix) - _RESERVE))
        piece = rest[:end].rstrip()
        fence = fence_after(piece, fence)
        chunks.append(prefix + piece + (closing(fence) if fence else ""))
        rest, fence = _skip_leading_closer(rest[start:].lstrip(" \t") if not fence else rest[start:], fence)
    return [c for c in chunks if c.strip()]


def _before_trailing_opener(text: str, fence: str, end: int, start: int) -> tuple[int, int]:
    """Move a cut that would leave a code block's opening line alone at a chunk's end."""
    head = text[:end].rstrip()
    line_start = head.rfind("\n") + 1
    if line_start > 1 and not fence_after(head[:line_start], fence) and fence_after(head, fence):
        return line_start - 1, line_start
    return end, start


def _skip_leading_closer(rest: str, fence: str) -> tuple[str, str]:
    """A block whose closing line starts the next chunk is already closed: drop that line."""
    first, _, after = rest.partition("\n")
    if fence and fence_after(first, fence) == "" and FENCE.match(first):
        return after.lstrip("\n"), ""
    return rest, fence


def closing(opener: str) -> str:
    """The line that closes a block opened by ``opener`` (same fence characters)."""
    m = FENCE.match(opener)
    return "\n" + (m.group(1) if m else "```")


def fence_after(text: str, fence: str) -> str:
    """The fence still open after ``text`` when ``fence`` was open before it ("" if none)."""
    for line in text.split("\n"):
        m = FENCE.match(line)
        if m is None:
            continue
        if not fence:
            fence = line.strip()
        elif m.group(1)[0] == fence.lstrip()[0] and not m.group(2).strip():
            fence = ""
    return fence


def best_cut(text: str, budget: int) -> tuple[int, int]:
    """(end of this chunk, start of the next) for the best boundary within ``budget``."""
    window = text[: budget + 1]
    floor = int(budget * _MIN_SHARE)
    for finder in (_paragraph, _line, _sentence):
        cut = finder(window, budget)
        if cut is not None and cut[0] >= floor:
            return cut
    word = _word(window, budget)
    if word is not None:
        return word
    return budget, budget  # a single word longer than the limit: nothing else to do


def _paragraph(window: str, budget: int) -> tuple[int, int] | None:
    i = window.rfind("\n\n", 0, budget)
    return None if i <= 0 else (i, _skip(window, i, "\n"))


def _line(window: str, budget: int) -> tuple[int, int] | None:
    i = window.rfind("\n", 0, budget)
    return None if i <= 0 else (i, i + 1)


def _sentence(window: str, budget: int) -> tuple[int, int] | None:
    best = None
    for m in _SENTENCE.finditer(window):
        if m.end() - len(m.group(0)) + len(m.group(0).rstrip()) <= budget:
            best = m
    if best is None:
        return None
    end = best.start() + len(best.group(0).rstrip())
    return end, best.end()


def _word(window: str, budget: int) -> tuple[int, int] | None:
    for i in range(min(budget, len(window) - 1), 0, -1):
        if window[i].isspace():
            return i, _skip(window, i, " \t\n")
    return None


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i
