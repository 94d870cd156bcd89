"""Delivering a user's queued replies: per target in order, never one target behind another.

A step's commit queues its replies in the user's Redis outbox. ``Delivery.flush`` sends what
it can, under the user's lock (one sender per user across replicas):

- before a send the reply is marked in flight; a send after a crash carries ``resend`` so
  the adapter checks the platform for the copy that may have got through (idempotency);
- a temporary failure (429, 5xx, network) keeps the reply with a next-try time, honouring
  the platform's Retry-After; later replies to the same target wait behind it (order),
  replies to other targets go out at once (no head-of-line blocking across channels);
- chunks already posted are recorded; the next try resumes at the failed chunk;
- a permanent failure (no permission, channel gone, text refused) drops the reply, with a
  fallback to the user's DM for a channel reply, else a dead-letter entry;
- a temporary failure that lasts ``delivery_max_attempts`` tries ends as a dead letter.

``flush`` returns when the next try is due (the inbox schedules the user then), so retries
happen in the background, whether or not the user writes again.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import replace
from typing import Any

from bot.config import Settings
from bot.errors import DeliveryError
from bot.events import Reply
from bot.ops.metrics import Metrics
from bot.runtime.router import Router
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)

RATE_LIMIT_FACTOR = 5  # a reply only rate-limited gets this many times DELIVERY_MAX_ATTEMPTS
DM_FALLBACK = "I couldn't post my answer where you asked, so here it is:\n\n"


def backoff(base_s: float, cap_s: float, attempt: int) -> float:
    """Exponential backoff: base, 2 base, 4 base ... capped."""
    return float(min(cap_s, base_s * 2 ** max(attempt - 1, 0)))


def dead_letter(kind: str, user: str, raw: str, error: str, attempts: int) -> str:
    """One dead-letter entry (JSON) an operator lists, retries or drops."""
    return json.dumps({"id": uuid.uuid4().hex[:12], "kind": kind, "user": user, "raw": raw,
                       "error": error[:500], "attempts": attempts, "at": time.time()})


class Delivery:
    def __init__(self, settings: Settings, redis: RedisStore, router: Router,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.router = router
        self.metrics = metrics

    async def flush(self, user: str) -> float | None:
        """Send every reply that is due. Returns the time the next try is due (None when the
        outbox is empty)."""
        raws = await self.redis.outbox_all(user)
        if not raws:
            return None
        states = await self.redis.outbox_states(user)
        blocked: set[str] = set()  # targets with an earlier reply still undelivered
        due: float | None = None
        now = time.time()
        for raw in raws:
            try:
                reply = Reply.from_json(raw)
            except (ValueError, KeyError, TypeError):
                log.error("dropping an unreadable outbox entry of %s", user)
                await self.redis.outbox_remove(user, raw, "")
                continue
            target = reply.reply_to or "dm"
            if target in blocked:
                continue
            record = states.get(reply.id, {})
            next_at = float(record.get("next_at", 0.0))
            if next_at > now:
                blocked.add(target)
                due = next_at if due is None else min(due, next_at)
                continue
            retry_at = await self._send(user, raw, reply, record)
            if retry_at is not None:
                blocked.add(target)
                due = retry_at if due is None else min(due, retry_at)
        return due

    async def _send(self, user: str, raw: str, reply: Reply, record: dict[str, Any]) -> float | None:
        """Deliver one reply; the next-try time when it stays queued."""
        part = int(record.get("part", 0))
        attempts = int(record.get("attempts", 0))
        resend = bool(record.get("inflight")) or attempts > 0  # a failed send may have landed
        await self.redis.set_outbox_state(user, reply.id, {**record, "inflight": True})
        try:
            await self.router.deliver(replace(reply, part=part, resend=resend))
        except DeliveryError as exc:
            return await self._failed(user, raw, reply, exc, part, attempts + 1)
        await self.redis.outbox_remove(user, raw, reply.id)
        return None

    async def _failed(self, user: str, raw: str, reply: Reply, exc: DeliveryError, part: int,
                      attempts: int) -> float | None:
        platform = reply.user.platform
        cls = "permanent" if exc.permanent else "temporary"
        if self.metrics is not None:
            self.metrics.delivery_failures.labels(platform=platform, cls=cls).inc()
        part = max(part, exc.parts_done)
        if exc.permanent:
            log.warning("reply %s refused permanently: %s", reply.id, exc)
            await self._give_up(user, raw, reply, str(exc), attempts, fallback=True)
            return None
        limited = exc.retry_after is not None  # rate limits get a larger budget (not our fault)
        if (attempts >= self.settings.delivery_max_attempts * (RATE_LIMIT_FACTOR if limited else 1)):
            log.warning("reply %s undeliverable after %d tries: %s", reply.id, attempts, exc)
            await self._give_up(user, raw, reply, str(exc), attempts, fallback=False)
            return None
        s = self.settings
        wait = max(backoff(s.retry_base_s, s.retry_max_s, attempts), exc.retry_after or 0.0)
        next_at = time.time() + wait
        log.info("reply %s: temporary failure (%s); try %d in %.1fs", reply.id, exc, attempts + 1, wait)
        await self.redis.set_outbox_state(user, reply.id, {"part": part, "attempts": attempts,
                                                          "next_at": next_at, "inflight": False})
        return next_at

    async def _give_up(self, user: str, raw: str, reply: Reply, error: str, attempts: int,
                       fallback: bool) -> None:
        if fallback and reply.reply_to and reply.kind != "trace":  # a channel: try the DM
            dm = replace(reply, reply_to="", seq=reply.seq + 1000, part=0,
                         text=DM_FALLBACK + reply.text)
            await self.redis.outbox_remove(user, raw, reply.id, instead=dm.to_json())
            return
        await self.redis.add_dead_letter(dead_letter("reply", user, raw, error, attempts))
        if self.metrics is not None:
            self.metrics.dead_letters.labels(kind="reply").inc()
        await self.redis.outbox_remove(user, raw, reply.id)
