"""The typed context a tool executor receives: this user's state and long-term memory.

Durable writes a tool makes (archival inserts and deletes) are staged in ``staged`` and go
out with the step's atomic commit (queued for the recall writer), so a step abandoned
after the tool ran leaves nothing behind.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.config import Settings
from bot.events import Event
from bot.knowledge.base import KnowledgeBase
from bot.memory import visibility
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory
from bot.protocols import MemoryItem


@dataclass
class ToolContext:
    """What a tool may touch: this user's state and long-term memory, nothing global."""

    state: AgentState
    memory: LongTermMemory
    settings: Settings
    event: Event
    vis: str = "dm"  # origin of this event = the view its prompt and tools see
    replies: list[str] = field(default_factory=list)
    core_changed: bool = False
    knowledge: KnowledgeBase | None = None  # documents of the event's place (bot.knowledge)
    now: float = field(default_factory=time.time)
    staged: list[dict[str, Any]] = field(default_factory=list)  # durable writes for the commit

    def stage_archival(self, item: MemoryItem) -> None:
        self.staged.append({"op": "upsert", "collection": "archival", "item": asdict(item)})

    def stage_archival_delete(self, ids: list[str]) -> None:
        self.staged.append({"op": "delete", "collection": "archival", "user": self.state.user,
                            "ids": list(ids)})

    @property
    def allowed(self) -> list[str] | None:
        """Origins the tools may read for this event (None: all, the person's own DM)."""
        return visibility.allowed(self.vis)
