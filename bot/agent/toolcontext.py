"""The typed context a tool executor receives: this user's state and long-term memory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.config import Settings
from bot.events import Event
from bot.knowledge.base import KnowledgeBase
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory


@dataclass
class ToolContext:
    """What a tool may touch: this user's state and long-term memory, nothing global."""

    state: AgentState
    memory: LongTermMemory
    settings: Settings
    event: Event
    replies: list[str] = field(default_factory=list)
    core_changed: bool = False
    knowledge: KnowledgeBase | None = None  # documents of the event's place (bot.knowledge)
    now: float = field(default_factory=time.time)
