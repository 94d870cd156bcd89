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
from bot.messages import Message

DEFAULT_PERSONA = (
    "I am Mem, a warm, concise assistant who remembers the people I talk with. "
    "I speak naturally, ask follow-up questions when useful, and never pretend to know "
    "something I have not been told."
)


@dataclass
class Block:
    """A fixed-size text block of core memory, edited only through tools."""

    label: str
    value: str
    limit: int

    def append(self, text: str) -> None:
        new = (self.value + "\n" + text).strip() if self.value else text.strip()
        self._set(new)

    def replace(self, old: str, new: str) -> None:
        if not old:
            raise ToolError("old_content must not be empty")
        count = self.value.count(old)
        if count == 0:
            raise ToolError(f"'{old}' is not in the {self.label} block; nothing changed")
        if count > 1:
            raise ToolError(
                f"'{old}' occurs {count} times in the {self.label} block; quote more of it"
            )
        self._set(self.value.replace(old, new).strip())

    def _set(self, value: str) -> None:
        if len(value) > self.limit:
            raise ToolError(
                f"the {self.label} block would hold {len(value)} characters, over its limit of "
                f"{self.limit}; shorten it (core_memory_replace) or move details to archival memory"
            )
        self.value = value


@dataclass
class AgentState:
    """Everything of one user's main context that persists between steps."""

    user: str
    persona: Block
    human: Block
    summary: str = ""
    fifo: list[Message] = field(default_factory=list)
    last_edit: float = field(default_factory=time.time)
    warned: bool = False  # a memory-pressure alert is outstanding in this pressure period
    processed: list[str] = field(default_factory=list)  # recent event ids already committed
    last_seen: float = 0.0  # last user message time (for login events)
    paused_until: float = 0.0  # pause_heartbeats
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

    def mark_processed(self, event_id: str, keep: int = 64) -> None:
        self.processed.append(event_id)
        del self.processed[:-keep]

    # --- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "persona": {"value": self.persona.value, "limit": self.persona.limit},
            "human": {"value": self.human.value, "limit": self.human.limit},
            "summary": self.summary,
            "fifo": [m.to_dict() for m in self.fifo],
            "last_edit": self.last_edit,
            "warned": self.warned,
            "processed": self.processed,
            "last_seen": self.last_seen,
            "paused_until": self.paused_until,
            "n_recall": self.n_recall,
            "n_archival": self.n_archival,
            "version": self.version,
            "snap_digest": self.snap_digest,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentState:
        return cls(
            user=d["user"],
            persona=Block("persona", d["persona"]["value"], int(d["persona"]["limit"])),
            human=Block("human", d["human"]["value"], int(d["human"]["limit"])),
            summary=d.get("summary", ""),
            fifo=[Message.from_dict(m) for m in d.get("fifo", [])],
            last_edit=float(d.get("last_edit", 0.0)),
            warned=bool(d.get("warned", False)),
            processed=list(d.get("processed", [])),
            last_seen=float(d.get("last_seen", 0.0)),
            paused_until=float(d.get("paused_until", 0.0)),
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
        key = json.dumps([self.persona.value, self.human.value, self.persona.limit,
                          self.human.limit, self.summary, self.paused_until, self.last_edit])
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    @classmethod
    def new(cls, user: str, persona: str, persona_limit: int, human_limit: int) -> AgentState:
        return cls(
            user=user,
            persona=Block("persona", (persona or DEFAULT_PERSONA)[:persona_limit], persona_limit),
            human=Block("human", "", human_limit),
        )

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any], fifo: list[Message]) -> AgentState:
        state = cls.from_dict({**snap, "fifo": []})
        state.fifo = fifo
        return state
