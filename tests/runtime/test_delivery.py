"""Delivery: permanent vs temporary failures, background retries honouring Retry-After, no
head-of-line blocking across targets, chunked replies resuming, dead letters at the end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import DeliveryError
from bot.events import Channel, Event, UserRef
from bot.runtime.delivery import DM_FALLBACK
from bot.testing.fake_openai import tool_call
from bot.testing.outbox import FlakyOutbox
from tests.conftest import make_settings


class Env:
    def __init__(self, svc: Any, outbox: FlakyOutbox, fake: Any) -> None:
        self.svc, self.outbox, self.fake = svc, outbox, fake

    async def say(self, text: str, reply_to: str, answer: str, user: str = "alice") -> Event:
        self.fake.push(tool_call("send_message", message=answer, request_heartbeat=False))
        ev = Event(kind="user_message", user=UserRef("test", user, "g1"), text=text,
                   channel=Channel(where="channel" if reply_to else "dm"), reply_to=reply_to)
        assert await self.svc.submit(ev) == "accepted"
        return ev

    async def until(self, pred: Any, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            assert time.monotonic() < deadline, f"timed out; delivered={self.outbox.texts()}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def env(tmp_path: Path, embedder: Any, fake_llm: Any) -> AsyncIterator[Env]:
    from bot.service import Service

    settings = make_settings(tmp_path, fake_llm.base_url, retry_base_s=0.2, retry_max_s=2.0,
                             delivery_max_attempts=4)
    svc = Service.build(settings, embedder=embedder)
    outbox = FlakyOutbox()
    svc.router.register("test", outbox)
    await svc.start()
    yield Env(svc, outbox, fake_llm)
    await svc.redis.delete_prefix()
    await svc.stop()


async def test_forbidden_channel_falls_back_to_dm_and_blocks_nothing(env: Env) -> None:
    """A 403 Missing Permissions in a channel: that reply goes to the user's DM instead, and
    later replies (DM and other channels) are delivered — nothing stays stuck."""
    env.outbox.fail("C403:1", DeliveryError("50013 Missing Permissions", permanent=True))
    a = await env.say("in the locked channel", "C403:1", "answer one")
    await env.until(lambda: len(env.outbox.replies) == 1)
    b = await env.say("now in DM", "", "answer two")
    c = await env.say("elsewhere", "C2:1", "answer three")
    await env.until(lambda: len(env.outbox.replies) == 3)
    by_target = {(r.reply_to, r.text) for r in env.outbox.replies}
    assert ("", DM_FALLBACK + "answer one") in by_target
    assert ("", "answer two") in by_target and ("C2:1", "answer three") in by_target
    assert await env.svc.redis.outbox_all(a.key) == []
    assert env.svc.metrics.delivery_failures.labels(platform="test", cls="permanent")._value.get() == 1
    del b, c


async def test_outage_is_retried_in_the_background(env: Env) -> None:
    """During a short platform outage (500s) replies are delivered once it ends, without the
    user writing again."""
    env.outbox.down_until = time.monotonic() + 1.5
    evs = [await env.say(f"q{i}", "", f"a{i}", user=f"u{i}") for i in range(5)]
    await env.until(lambda: len(env.outbox.replies) == 5, timeout_s=15)
    assert sorted(env.outbox.texts()) == [f"a{i}" for i in range(5)]
    assert len(env.outbox.attempts) > 5  # they failed first
    for ev in evs:
        assert await env.svc.redis.outbox_all(ev.key) == []


async def test_retry_after_delays_the_next_try(env: Env) -> None:
    """The next try of a reply waits out Retry-After."""
    stamps: list[float] = []
    original = env.outbox.deliver

    async def timed(reply: Any) -> None:
        stamps.append(time.monotonic())
        await original(reply)

    env.outbox.deliver = timed  # type: ignore[method-assign]
    env.outbox.fail("", DeliveryError("429", retry_after=1.2))
    await env.say("hi", "", "hello")
    await env.until(lambda: len(env.outbox.replies) == 1)
    assert len(stamps) == 2 and stamps[1] - stamps[0] >= 1.1


async def test_later_reply_on_same_target_keeps_order(env: Env) -> None:
    """Replies to one target stay in order: the second waits behind the first's retry."""
    env.outbox.fail("", DeliveryError("500"), DeliveryError("500"))
    await env.say("one", "", "first")
    await env.say("two", "", "second")
    await env.until(lambda: len(env.outbox.replies) == 2)
    assert env.outbox.texts() == ["first", "second"]


async def test_chunked_reply_resumes_at_the_failed_chunk(env: Env) -> None:
    """A failure after part 1 of a chunked reply records progress: the retry starts at part 2."""
    env.outbox.fail("", DeliveryError("500 on part 2", parts_done=1))
    await env.say("long", "", "a long answer")
    await env.until(lambda: len(env.outbox.replies) == 1)
    assert [a.part for a in env.outbox.attempts] == [0, 1]


async def test_resend_after_crash_is_flagged(env: Env) -> None:
    """A reply found in flight (a crash between send and pop) is re-sent with ``resend`` so
    the adapter can look for the copy that got through."""
    from bot.events import Reply

    user = UserRef("test", "zed", "g1")
    key = user.key
    reply = Reply(user=user, text="maybe sent", event_id="e1")
    await env.svc.redis.outbox_push(key, reply.to_json())
    await env.svc.redis.set_outbox_state(key, reply.id, {"inflight": True, "part": 0})
    await env.svc.inbox.process_user(key)
    assert [(a.text, a.resend) for a in env.outbox.attempts] == [("maybe sent", True)]


async def test_endless_temporary_failure_ends_as_dead_letter(env: Env) -> None:
    """A reply that fails temporarily delivery_max_attempts times is dead-lettered."""
    env.outbox.fail("C9:1", *[DeliveryError("503") for _ in range(10)])
    ev = await env.say("x", "C9:1", "never")
    await env.until(lambda: len(env.outbox.attempts) >= 4, timeout_s=20)
    for _ in range(100):
        letters = await env.svc.redis.dead_letters()
        if letters:
            break
        await asyncio.sleep(0.05)
    entry = json.loads(letters[0])
    assert entry["kind"] == "reply" and entry["attempts"] == 4
    assert await env.svc.redis.outbox_all(ev.key) == []
