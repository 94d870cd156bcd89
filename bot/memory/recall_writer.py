"""Writes committed messages into recall storage off the reply's critical path.

A step's commit queues its messages in a per-user Redis list (atomically with the
state), and the durable writes its tools staged (archival inserts/deletes, ``{"op": ...}``). This writer drains those lists in batches across users: one embedding call per
batch, one upsert, then trims what was written. Point ids are message ids, so a batch
written twice (crash between upsert and trim) is harmless.

Resets: a batch is read together with the user's generation (bumped by every reset). If
the generation moved while the batch was being written, the batch belongs to a memory
that no longer exists: its points are deleted again and the (new) queue is not trimmed.
This holds on every replica, whichever writer read the batch. Likewise an item forgotten
(``/memory forget``, a platform delete) while its batch was being written is deleted
again: forget marks the ids in Redis before deleting them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from bot.memory.longterm import LongTermMemory
from bot.protocols import MemoryItem
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)


class RecallWriter:
    def __init__(self, redis: RedisStore, memory: LongTermMemory, batch: int = 64) -> None:
        self.redis = redis
        self.memory = memory
        self.batch = batch
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def kick(self, user: str) -> None:
        self._dirty.add(user)
        self._idle.clear()
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        for user in await self.redis.recall_dirty_users():  # leftovers of a previous run
            self.kick(user)
        while not stop.is_set():
            if not self._dirty:
                self._idle.set()
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            try:
                await self.drain_once()
            except Exception:  # keep the writer alive; items stay queued in Redis
                log.exception("recall write failed; will retry")
                await asyncio.sleep(1.0)
        await self.flush()

    async def drain_once(self) -> int:
        """Write one batch gathered across dirty users. Returns items written."""
        users = list(self._dirty)
        self._dirty.clear()
        taken: list[tuple[str, int, str, list[str], list[str]]] = []
        items: list[MemoryItem] = []
        ops: list[dict[str, Any]] = []
        for user in users:
            room = self.batch - len(items)
            if room <= 0:
                self._dirty.add(user)
                continue
            gen, raws = await self.redis.recall_batch(user, room)
            ids: list[str] = []
            archival: list[str] = []
            for r in raws:
                d = json.loads(r)
                if "op" in d:
                    ops.append(d)
                    if d["op"] == "upsert":
                        archival.append(str(d["item"]["id"]))
                else:
                    items.append(MemoryItem(**d))
                    ids.append(items[-1].id)
            taken.append((user, len(raws), gen, ids, archival))
        if items:
            await self.memory.write("recall", items)
        for op in ops:  # staged tool writes (archival), in commit order
            await self.memory.apply(op)
        for user, n, gen, ids, archival in taken:
            remaining = await self.redis.recall_trim(user, n, gen) if n else await self.redis.recall_pending(user)
            if remaining < 0:  # reset meanwhile: what we wrote is a dead memory's
                await self.memory.store.delete("recall", user, ids)
                await self.memory.store.delete("archival", user, archival)
                log.info("dropped a recall batch written across a reset", extra={"user": user})
                remaining = await self.redis.recall_pending(user)
            elif late := await self.redis.forgotten(user, ids):  # forgotten while we wrote
                await self.memory.store.delete("recall", user, sorted(late))
            if remaining:
                self._dirty.add(user)
            else:
                await self.redis.recall_clean(user)
                if await self.redis.recall_pending(user):  # a commit raced the clean-up
                    self._dirty.add(user)
        return len(items)

    async def flush(self) -> None:
        """Write everything queued now (shutdown, tests, benchmarks)."""
        for user in await self.redis.recall_dirty_users():
            self._dirty.add(user)
        while self._dirty:
            await self.drain_once()
        self._idle.set()

    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout_s)
