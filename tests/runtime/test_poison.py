"""Poison events: a step that raises is retried with backoff, then dead-lettered with a notice;
the user's later messages are answered; the step's time bound never goes uncaught."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.agent.llm import OpenAIChat
from bot.agent.loop import NOTICE_FAILED, NOTICE_TIMEOUT
from bot.agent.prompts import CHAIN_DEADLINE
from bot.events import Event
from bot.protocols import Completion
from bot.testing.fake_openai import delay, tool_call
from tests.conftest import Harness, make_settings, start_service


class PoisonLLM:
    """The real client, except that a prompt whose last user line says "poison" raises what a
    bug deep in a step would raise (e.g. OverflowError from a date computation)."""

    def __init__(self, inner: OpenAIChat) -> None:
        self.inner = inner
        self.poison_calls = 0

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       *, max_tokens: int | None = None) -> Completion:
        last = next(m for m in reversed(messages)
                    if m["role"] == "user" and str(m.get("content")).startswith("[user"))
        if "poison" in str(last.get("content")):
            self.poison_calls += 1
            raise OverflowError("date value out of range")
        return await self.inner.complete(messages, tools, max_tokens=max_tokens)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
async def poisoned(tmp_path: Path, embedder: Any, fake_llm: Any) -> AsyncIterator[tuple[Harness, PoisonLLM]]:
    settings = make_settings(tmp_path, fake_llm.base_url, max_event_attempts=3, retry_base_s=0.3,
                             retry_max_s=1.0)
    llm = PoisonLLM(OpenAIChat(settings))
    svc, outbox = await start_service(settings, embedder, llm=llm)
    yield Harness(svc, outbox, fake_llm), llm
    await svc.redis.delete_prefix()
    await svc.stop()


async def test_poison_event_is_dead_lettered_and_the_queue_moves_on(
        poisoned: tuple[Harness, PoisonLLM]) -> None:
    """A step that always raises is tried max_event_attempts times with backoff (not in a hot
    loop), then dead-lettered with a notice; the user's next message is answered."""
    h, llm = poisoned
    started = time.monotonic()
    bad = await h.say("poison: what did I say 10000 days ago", wait=False)
    h.fake.push(tool_call("send_message", message="still here", request_heartbeat=False))
    good = await h.say("are you there?", wait=False)
    await h.outbox.wait(bad.event_id, 20)
    await h.outbox.wait(good.event_id, 20)
    assert llm.poison_calls == 3
    assert time.monotonic() - started >= 0.3 + 0.6  # two backoffs between the three tries
    assert h.outbox.texts(bad.event_id, kind="notice") == [NOTICE_FAILED]
    assert h.outbox.texts(good.event_id) == ["still here"]
    letters = [json.loads(x) for x in await h.svc.redis.dead_letters()]
    assert [(d["kind"], d["user"], d["attempts"]) for d in letters] == [("event", bad.key, 3)]
    assert "OverflowError" in letters[0]["error"]
    assert Event.from_json(letters[0]["raw"]).event_id == bad.event_id
    fifo = (await h.state()).fifo
    assert any(m.kind == "user_message" and "10000 days ago" in m.content for m in fifo)
    assert h.svc.metrics.dead_letters.labels(kind="event")._value.get() == 1
    await asyncio.sleep(1.0)
    assert llm.poison_calls == 3  # no more tries, not after a restart either
    assert await h.svc.redis.inbox_len(bad.key) == 0


async def test_restart_does_not_reset_the_attempt_count(tmp_path: Path, embedder: Any,
                                                         fake_llm: Any) -> None:
    """Attempts are kept in Redis with the journal entry: a restart continues the count."""
    settings = make_settings(tmp_path, fake_llm.base_url, max_event_attempts=2, retry_base_s=5.0)
    llm = PoisonLLM(OpenAIChat(settings))
    svc, outbox = await start_service(settings, embedder, llm=llm)
    h = Harness(svc, outbox, fake_llm)
    bad = await h.say("poison pill", wait=False)
    for _ in range(100):
        if llm.poison_calls:
            break
        await asyncio.sleep(0.05)
    await svc.stop()
    record = None
    from bot.stores.redis_store import RedisStore
    r = RedisStore(settings.redis_url, settings.redis_prefix)
    try:
        record = await r.get_attempt(bad.key, bad.event_id)
        assert record is not None and record["n"] == 1
        await r.set_attempt(bad.key, bad.event_id, {**record, "next_at": 0})  # backoff over
    finally:
        await r.close()
    llm2 = PoisonLLM(OpenAIChat(settings))
    svc2, outbox2 = await start_service(settings, embedder, llm=llm2)
    try:
        await outbox2.wait(bad.event_id, 20)
        assert llm2.poison_calls == 1  # the second and last try
        assert outbox2.texts(bad.event_id, kind="notice") == [NOTICE_FAILED]
    finally:
        await svc2.redis.delete_prefix()
        await svc2.stop()


async def test_step_timeout_is_caught_and_the_message_kept(tmp_path: Path, embedder: Any,
                                                          fake_llm: Any) -> None:
    """A step that overruns STEP_TIMEOUT_S gets a timeout notice; the message stays in the
    FIFO; the next message is answered (no uncaught TimeoutError, no endless retry)."""
    settings = make_settings(tmp_path, fake_llm.base_url, step_timeout_s=1.5, llm_timeout_s=5.0,
                             llm_max_retries=0)
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    try:
        fake_llm.push(delay(3.0, tool_call("send_message", message="late", request_heartbeat=False)),
                      tool_call("send_message", message="on time", request_heartbeat=False))
        slow = await h.say("slow one")
        assert outbox.texts(slow.event_id, kind="notice") == [NOTICE_TIMEOUT]
        fast = await h.say("quick one")
        assert outbox.texts(fast.event_id) == ["on time"]
        fifo = (await h.state()).fifo
        assert any(m.kind == "user_message" and m.content.endswith("slow one") for m in fifo)
        assert await svc.redis.dead_letters() == []
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_chain_stops_before_the_step_deadline(tmp_path: Path, embedder: Any,
                                                    fake_llm: Any) -> None:
    """A chain of slow calls stops while one more call still fits in STEP_TIMEOUT_S (LLM
    timeout x chain steps may exceed it): what was said is delivered, the agent is told."""
    settings = make_settings(tmp_path, fake_llm.base_url, step_timeout_s=3.0, llm_timeout_s=1.5,
                             llm_max_retries=0, max_chain_steps=6)
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    try:
        fake_llm.push(*[delay(0.7, tool_call("send_message", message=f"part {i}", request_heartbeat=True))
                        for i in range(6)])
        ev = await h.say("tell me a long story")
        said = outbox.texts(ev.event_id)
        assert 1 <= len(said) < 6 and outbox.texts(ev.event_id, kind="notice") == []
        fifo = (await h.state()).fifo
        assert any(CHAIN_DEADLINE in m.content for m in fifo)
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()
