"""A recording outbox: collects replies and lets callers await a step's completion."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.errors import DeliveryError
from bot.events import Event, Reply


@dataclass
class RecordingOutbox:
    replies: list[Reply] = field(default_factory=list)
    completed_ids: list[str] = field(default_factory=list)
    _waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def expect(self, event_id: str) -> asyncio.Event:
        return self._waiters.setdefault(event_id, asyncio.Event())

    async def deliver(self, reply: Reply) -> None:
        self.replies.append(reply)

    async def completed(self, event: Event) -> None:
        self.completed_ids.append(event.event_id)
        self.expect(event.event_id).set()

    async def wait(self, event_id: str, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self.expect(event_id).wait(), timeout_s)

    def texts(self, event_id: str | None = None, kind: str = "message") -> list[str]:
        return [r.text for r in self.replies if r.kind == kind and (event_id is None or r.event_id == event_id)]


@dataclass
class FlakyOutbox(RecordingOutbox):
    """A recording outbox that fails on cue: ``fail(target, *errors)`` queues errors raised by
    the next deliveries to that ``reply_to`` ("" = the DM); ``down_until`` fails everything
    temporarily until that monotonic time. Records every attempt in ``attempts``."""

    attempts: list[Reply] = field(default_factory=list)
    down_until: float = 0.0
    _script: dict[str, list[DeliveryError]] = field(default_factory=dict)

    def fail(self, target: str, *errors: DeliveryError) -> None:
        self._script.setdefault(target, []).extend(errors)

    async def deliver(self, reply: Reply) -> None:
        self.attempts.append(reply)
        if time.monotonic() < self.down_until:
            raise DeliveryError("platform down (500)")
        queued = self._script.get(reply.reply_to)
        if queued:
            raise queued.pop(0)
        await super().deliver(reply)
