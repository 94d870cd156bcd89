"""Inbound events: deduplicated, journaled durably in Redis, processed one step at a time
per user (many users in parallel, across replicas), committed atomically.

Crash safety: an event leaves the journal only in the same atomic commit that stores the
step's state and queues its replies. A crash before the commit replays the event (the
user saw nothing of it); a crash after it only re-delivers queued replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

from bot.agent.loop import Agent, StepResult
from bot.config import Settings
from bot.errors import StoreError
from bot.events import Event, Reply
from bot.memory.core import AgentState
from bot.memory.longterm import recall_item
from bot.memory.recall_writer import RecallWriter
from bot.memory.states import StateRepo
from bot.ops.logs import event_context
from bot.runtime.router import Router
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)

Submitted = Literal["accepted", "duplicate", "rate_limited", "closed"]
RATE_NOTICE = "You're sending messages faster than I can keep up. Please wait a minute and try again."
StepHook = Callable[[Event, AgentState, StepResult, float], Awaitable[None]]


class Inbox:
    def __init__(self, settings: Settings, redis: RedisStore, states: StateRepo, agent: Agent,
                 router: Router, writer: RecallWriter) -> None:
        self.settings = settings
        self.redis = redis
        self.states = states
        self.agent = agent
        self.router = router
        self.writer = writer
        self.accepting = True  # False once the service is stopped: submit refuses
        self.draining = False  # True while shutting down: journal, but start no new steps
        self.on_step: list[StepHook] = []
        self._busy = 0

    # --- intake -----------------------------------------------------------------------------
    async def resolve(self, event: Event) -> Event:
        """Apply identity links: several platform identities may share one memory."""
        target = await self.redis.get_alias(event.user.key)
        if target and target != event.key:
            return replace(event, memory_key=target)
        return event

    async def submit(self, event: Event) -> Submitted:
        """Journal an event durably. Call before acknowledging the platform."""
        if not self.accepting:
            return "closed"
        if not await self.redis.dedupe(event.event_id):
            return "duplicate"
        event = await self.resolve(event)
        limit = self.settings.rate_limit_per_minute
        if event.kind == "user_message" and limit and await self.redis.hit_rate(event.key) > limit:
            await self.router.deliver(Reply(user=event.user, text=RATE_NOTICE,
                                            reply_to=event.reply_to, event_id=event.event_id,
                                            kind="notice"))
            await self.router.completed(event)
            return "rate_limited"
        try:
            await self.redis.journal(event.key, event.to_json())
        except StoreError:  # not journaled: let the platform's retry through again
            with contextlib.suppress(StoreError):
                await self.redis.forget_dedupe(event.event_id)
            raise
        return "accepted"

    # --- workers ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker pool until ``stop`` is set, then finish in-flight steps."""
        for user in await self.redis.active_users():  # journaled before a crash/restart
            await self.redis.mark_ready(user)
        workers = [asyncio.create_task(self._worker(stop), name=f"inbox-worker-{i}")
                   for i in range(self.settings.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                user = await self.redis.next_ready(0.5)
                if user is not None:
                    await self.process_user(user)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker error; continuing")
                await asyncio.sleep(0.5)

    async def process_user(self, user: str) -> int:
        """Drain one user's journal under the user's lock. Returns events processed."""
        ttl = self.settings.step_timeout_s + 30
        token = await self.redis.acquire(user, ttl)
        if token is None:
            return 0  # another worker/replica holds this user; it drains the journal
        done = 0
        self._busy += 1
        try:
            await self.deliver_outbox(user)
            while not self.draining and (raw := await self.redis.inbox_head(user)) is not None:
                if not await self._process(user, token, raw):
                    break
                done += 1
        finally:
            self._busy -= 1
            await self.redis.release(user, token)
            if await self.redis.inbox_len(user):
                await self.redis.mark_ready(user)  # this or another replica picks it up
            else:
                await self.redis.deactivate_if_empty(user)
        return done

    async def _process(self, user: str, token: str, raw: str) -> bool:
        try:
            event = Event.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.error("dropping unreadable journal entry for %s", user)
            await self.redis.drop_inbox_head(user, raw)
            return True
        with event_context(user=user, platform=event.user.platform, event_id=event.event_id):
            return await self._step(user, token, raw, event)

    async def _step(self, user: str, token: str, raw: str, event: Event) -> bool:
        state = await self.states.load(user)
        if event.event_id in state.processed:  # committed before; only replies may be left
            await self.redis.drop_inbox_head(user, raw)
            return True
        started = time.perf_counter()
        renewer = asyncio.create_task(self._keep_lock(user, token, self.settings.step_timeout_s + 30))
        try:
            result = await asyncio.wait_for(self.agent.step(state, event), self.settings.step_timeout_s)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if not await self._commit(user, token, state, event, result):
            log.warning("lost the lock of %s during a step; another worker will redo it", user)
            return False
        for hook in self.on_step:
            await hook(event, state, result, time.perf_counter() - started)
        await self.deliver_outbox(user)
        await self.router.completed(event)
        return True

    async def _commit(self, user: str, token: str, state: AgentState, event: Event,
                      result: StepResult) -> bool:
        state.mark_processed(event.event_id)
        state.n_recall += len(result.new_messages)
        state.version += 1
        await self.states.snapshot(state, force=False)  # durable core + summary, before commit
        ok = await self.redis.commit(
            user, token, json.dumps(state.to_dict()), event_id=event.event_id,
            replies=[r.to_json() for r in result.replies],
            recall=[json.dumps(recall_item(user, m).__dict__) for m in result.new_messages],
        )
        if ok and result.new_messages:
            self.writer.kick(user)
        return ok

    async def _keep_lock(self, user: str, token: str, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            await self.redis.renew(user, token, ttl)

    async def deliver_outbox(self, user: str) -> bool:
        """Deliver queued replies in order. A reply that cannot be delivered stays queued
        (tried again the next time this user is processed); returns False then."""
        while (raw := await self.redis.outbox_head(user)) is not None:
            if not await self.router.deliver(Reply.from_json(raw)):
                return False
            await self.redis.outbox_pop(user)
        return True

    @property
    def busy(self) -> int:
        return self._busy
