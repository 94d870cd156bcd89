"""A user's working memory: core blocks, the recursive summary and the FIFO queue.

``AgentState`` is what Redis holds per user (one JSON document) and what each agent step
reads and commits. Core blocks and the summary are also snapshotted to the vector store
so the hot state can be rebuilt when Redis loses it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ToolError
from bot.memory.visibility import DM, PUBLIC, visible
from bot.messages import Message

DEFAULT_PERSONA = (
    "I am Mem, a warm, concise assistant who remembers the people I talk with. "
    "I speak naturally, ask follow-up questions when useful, and never pretend to know "
    "something I have not been told."
)


@dataclass
class Block:
    """A fixed-size text block of core memory, edited only through tools.

    Each line remembers where it was written (``tags``: line -> origin label, see
    bot.memory.visibility; an untagged line is ``dm``). A prompt for a channel shows only
    the lines visible there, and an edit made there sees and changes only those lines.
    """

    label: str
    value: str
    limit: int
    tags: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [line for line in self.value.split("\n") if line.strip()]

    def origin(self, line: str) -> str:
        return self.tags.get(line, DM)

    def view(self, view: str = DM) -> str:
        """The block as a prompt for ``view`` shows it."""
        if view == DM:
            return self.value
        return "\n".join(line for line in self.lines() if visible(self.origin(line), view))

    def append(self, text: str, vis: str = DM) -> None:
        new = (self.value + "\n" + text).strip() if self.value else text.strip()
        self._set(new, vis)

    def replace(self, old: str, new: str, vis: str = DM, view: str = DM) -> None:
        """Replace ``old`` in the lines ``view`` can see; the others stay as they are."""
        if not old:
            raise ToolError("old_content must not be empty")
        shown = self.view(view)
        hidden = [] if view == DM else [ln for ln in self.lines() if not visible(self.origin(ln), view)]
        count = shown.count(old)
        if count == 0:
            raise ToolError(f"'{old}' is not in the {self.label} block; nothing changed")
        if count > 1:
            raise ToolError(
                f"'{old}' occurs {count} times in the {self.label} block; quote more of it"
            )
        changed = shown.replace(old, new).strip()
        self._set("\n".join([*hidden, changed] if changed else hidden), vis)

    def _set(self, value: str, vis: str = DM) -> None:
        if len(value) > self.limit:
            raise ToolError(
                f"the {self.label} block would hold {len(value)} characters, over its limit of "
                f"{self.limit}; shorten it (core_memory_replace) or move details to archival memory"
            )
        before = set(self.lines())
        self.value = value
        self.tags = {ln: self.origin(ln) if ln in before else vis for ln in self.lines()}

    def drop_lines(self, lines: set[str]) -> int:
        """Delete these lines (forget); returns how many went."""
        keep = [ln for ln in self.value.split("\n") if ln not in lines]
        gone = len(self.value.split("\n")) - len(keep) if self.value else 0
        if gone:
            self._set("\n".join(keep).strip())
        return gone

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value, "limit": self.limit}
        if self.tags:
            d["tags"] = dict(self.tags)
        return d

    @classmethod
    def from_dict(cls, label: str, d: dict[str, Any]) -> Block:
        return cls(label, d["value"], int(d["limit"]), dict(d.get("tags") or {}))


@dataclass
class AgentState:
    """Everything of one user's main context that persists between steps."""

    user: str
    persona: Block
    human: Block
    summary: str = ""  # of everything evicted (the person's own view)
    summaries: dict[str, str] = field(default_factory=dict)  # view -> summary of what was said there
    fifo: list[Message] = field(default_factory=list)
    last_edit: float = field(default_factory=time.time)
    warned: bool = False  # a memory-pressure alert is outstanding in this pressure period
    processed: list[str] = field(default_factory=list)  # recent event ids already committed
    last_seen: float = 0.0  # last user message time (for login events)
    paused_until: float = 0.0  # pause_heartbeats
    memory_paused: bool = False  # /memory pause: answer, but store nothing beyond the FIFO
    n_recall: int = 0  # messages in recall storage (metadata shown to the agent)
    n_archival: int = 0
    version: int = 0
    snap_digest: str = ""  # digest of what the last durable snapshot held

    def block(self, label: str) -> Block:
        if label == "persona":
            return self.persona
        if label == "human":
            return self.human
        raise ToolError(f"unknown block '{label}'; use 'persona' or 'human'")

    def resume_memory(self) -> int:
        """End a memory pause: what was said meanwhile leaves the FIFO too (it was never
        stored elsewhere). Returns how many messages went."""
        before = len(self.fifo)
        self.memory_paused = False
        self.fifo = [m for m in self.fifo if m.keep]
        return before - len(self.fifo)

    def mark_processed(self, event_id: str, keep: int = 64) -> None:
        self.processed.append(event_id)
        del self.processed[:-keep]

    # --- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "persona": self.persona.to_dict(),
            "human": self.human.to_dict(),
            "summary": self.summary,
            "summaries": dict(self.summaries),
            "fifo": [m.to_dict() for m in self.fifo],
            "last_edit": self.last_edit,
            "warned": self.warned,
            "processed": self.processed,
            "last_seen": self.last_seen,
            "paused_until": self.paused_until,
            "memory_paused": self.memory_paused,
            "n_recall": self.n_recall,
            "n_archival": self.n_archival,
            "version": self.version,
            "snap_digest": self.snap_digest,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentState:
        return cls(
            user=d["user"],
            persona=Block.from_dict("persona", d["persona"]),
            human=Block.from_dict("human", d["human"]),
            summary=d.get("summary", ""),
            summaries=dict(d.get("summaries") or {}),
            fifo=[Message.from_dict(m) for m in d.get("fifo", [])],
            last_edit=float(d.get("last_edit", 0.0)),
            warned=bool(d.get("warned", False)),
            processed=list(d.get("processed", [])),
            last_seen=float(d.get("last_seen", 0.0)),
            paused_until=float(d.get("paused_until", 0.0)),
            memory_paused=bool(d.get("memory_paused", False)),
            n_recall=int(d.get("n_recall", 0)),
            n_archival=int(d.get("n_archival", 0)),
            version=int(d.get("version", 0)),
            snap_digest=str(d.get("snap_digest", "")),
        )

    def snapshot(self) -> dict[str, Any]:
        """What the vector store keeps durably besides recall (no FIFO: rebuilt from recall)."""
        d = self.to_dict()
        d.pop("fifo")
        return d

    def durable_digest(self) -> str:
        """Changes whenever something a rebuild could not recover from recall changes."""
        key = json.dumps([self.persona.to_dict(), self.human.to_dict(), self.summary,
                          self.summaries, self.paused_until, self.last_edit,
                          self.memory_paused], sort_keys=True)
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    @classmethod
    def new(cls, user: str, persona: str, persona_limit: int, human_limit: int) -> AgentState:
        text = (persona or DEFAULT_PERSONA)[:persona_limit]
        initial = Block("persona", text, persona_limit)
        initial.tags = {line: PUBLIC for line in initial.lines()}  # configured: visible everywhere
        return cls(user=user, persona=initial, human=Block("human", "", human_limit))

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any], fifo: list[Message]) -> AgentState:
        state = cls.from_dict({**snap, "fifo": []})
        state.fifo = fifo
        return state
