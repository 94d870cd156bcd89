"""Loading, saving and rebuilding a user's hot state.

Redis holds the live ``AgentState``. The vector store keeps a durable snapshot of core
memory and summary (written when they change) and every message in recall, so a state
missing from Redis is rebuilt from there: nothing is lost when Redis is flushed.
"""

from __future__ import annotations

import json
import logging

from bot.config import Settings
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)
SNAPSHOT = "core"
REBUILD_MESSAGES = 40


class StateRepo:
    def __init__(self, settings: Settings, redis: RedisStore, memory: LongTermMemory) -> None:
        self.settings = settings
        self.redis = redis
        self.memory = memory

    def new(self, user: str) -> AgentState:
        s = self.settings
        return AgentState.new(user, s.persona, s.core_persona_limit, s.core_human_limit)

    async def load(self, user: str) -> AgentState:
        raw = await self.redis.get_state(user)
        if raw is not None:
            return AgentState.from_dict(json.loads(raw))
        return await self.rebuild(user)

    async def rebuild(self, user: str) -> AgentState:
        """State from the durable snapshot plus the most recent recall messages."""
        snap = await self.memory.store.get_doc(user, SNAPSHOT)
        fifo = await self.memory.recent_messages(user, REBUILD_MESSAGES)
        while fifo and fifo[0].role == "tool":  # never start with a result without its call
            fifo.pop(0)
        if snap is None and not fifo:
            return self.new(user)
        state = AgentState.from_snapshot(snap, fifo) if snap else self.new(user)
        state.fifo = fifo
        state.n_recall, state.n_archival = await self.memory.counts(user)
        seen = [m.ts for m in fifo if m.kind == "user_message"]  # the snapshot may be older
        state.last_seen = max([state.last_seen, *seen])
        log.info("rebuilt hot state from durable storage", extra={"user": user})
        return state

    async def save(self, state: AgentState) -> None:
        """Write state outside a step (admin edits, import). Steps commit via the inbox."""
        await self.snapshot(state)
        await self.redis.set_state(state.user, json.dumps(state.to_dict()))

    async def snapshot(self, state: AgentState, force: bool = True) -> None:
        """Write the durable snapshot; with ``force=False`` only when it would change."""
        digest = state.durable_digest()
        if not force and digest == state.snap_digest:
            return
        state.snap_digest = digest
        await self.memory.store.put_doc(state.user, SNAPSHOT, state.snapshot())
