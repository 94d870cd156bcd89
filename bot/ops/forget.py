"""``/memory forget TEXT``: find a fact everywhere it is kept, show what will go, remove it.

A fact is found by its words: every significant word of the query (case-insensitive, at a
word start) must occur in the text. Searched: the core-memory lines, the summary
sentences (the person's and each server's), the FIFO (message text and the arguments of
memory tool calls), and every recall message and archival note of the person (scanned in
full, not only the best search hits). Applying the plan deletes the recall and archival
points, drops the core lines and summary sentences, and redacts the FIFO messages in place
(a tool call keeps its result, so the conversation stays valid), so the next heartbeat
finds nothing to save again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from bot.errors import AdminError
from bot.memory.core import AgentState
from bot.memory.longterm import words
from bot.messages import Message, ToolCall
from bot.protocols import MemoryItem

REDACTED = "[forgotten at the person's request]"
_STOP = set("""a an and are as at be but by did do for from had has have he her his i in is it
its me my of on or our she so that the their them they this to was we were what when where
which who will with you your""".split())
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def terms(query: str) -> list[str]:
    found = [w for w in re.findall(r"\w+", query.lower()) if w not in _STOP]
    if not found:
        raise AdminError("say what to forget (a few words of the fact)")
    return found


def matches(text: str, ts: list[str]) -> bool:
    low = text.lower()
    return all(re.search(rf"\b{re.escape(t)}", low) for t in ts)


def message_text(m: Message) -> str:
    return " ".join([m.content, *(c.arguments for c in m.tool_calls)])


def item_text(item: MemoryItem) -> str:
    return f"{item.text} {words(item, calls=True)} {json.dumps(item.meta.get('tool_calls') or [])}"


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


@dataclass
class ForgetPlan:
    query: str
    core: list[tuple[str, str]] = field(default_factory=list)  # (block label, line)
    summary: list[str] = field(default_factory=list)  # sentences, of any summary
    fifo: list[str] = field(default_factory=list)  # ids of FIFO messages to redact
    recall: list[MemoryItem] = field(default_factory=list)
    archival: list[MemoryItem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        recall = {i.id for i in self.recall} | set(self.fifo)
        return {"core_lines": len(self.core), "summary_sentences": len(self.summary),
                "fifo_messages": len(self.fifo), "recall": len(recall),
                "archival": len(self.archival)}

    @property
    def empty(self) -> bool:
        return not any(self.counts().values())

    def preview(self, limit: int = 12) -> list[str]:
        """One line per thing that will go (the first ``limit``)."""
        shown = [f"core memory ({label}): {line}" for label, line in self.core]
        shown += [f"summary: {s}" for s in self.summary]
        shown += [f"note: {i.text}" for i in self.archival]
        shown += [f"message: {words(i) or i.text}" for i in self.recall]
        return shown[:limit]


def plan(state: AgentState, query: str, recall: list[MemoryItem],
         archival: list[MemoryItem]) -> ForgetPlan:
    """What matches ``query`` in ``state`` and in the given items (all of the person's)."""
    ts = terms(query)
    p = ForgetPlan(query)
    p.core = [(b.label, ln) for b in (state.persona, state.human) for ln in b.lines()
              if matches(ln, ts)]
    for text in [state.summary, *state.summaries.values()]:
        p.summary += [s for s in sentences(text) if matches(s, ts) and s not in p.summary]
    p.fifo = [m.id for m in state.fifo if matches(message_text(m), ts)]
    p.recall = [i for i in recall if matches(item_text(i), ts)]
    p.archival = [i for i in archival if matches(item_text(i), ts)]
    return p


def apply(state: AgentState, p: ForgetPlan) -> None:
    """Remove the plan's core lines and summary sentences and redact its FIFO messages
    (the caller deletes the recall and archival points)."""
    ts = terms(p.query)
    for label, line in p.core:
        state.block(label).drop_lines({line})
    gone = set(p.summary)
    state.summary = " ".join(s for s in sentences(state.summary) if s not in gone)
    state.summaries = {v: " ".join(s for s in sentences(t) if s not in gone)
                       for v, t in state.summaries.items()}
    ids = set(p.fifo)
    for m in state.fifo:
        if m.id in ids:
            m.content = REDACTED if m.content else m.content
            m.tool_calls = [c if not matches(c.arguments, ts) else ToolCall(c.id, c.name, "{}")
                            for c in m.tool_calls]


def recall_ids(p: ForgetPlan) -> list[str]:
    """Recall points to delete: the matching items and the redacted FIFO messages."""
    return sorted({i.id for i in p.recall} | set(p.fifo))
