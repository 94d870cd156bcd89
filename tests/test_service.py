"""Service operations: graceful shutdown, ops endpoints and metrics on a running app, and
two bot instances sharing Redis (scale-out coordination)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp

from bot.events import Channel, Event, UserRef
from bot.testing.fake_openai import delay, echo, tool_call
from tests.conftest import Harness, make_settings, start_service

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(user: str, text: str) -> Event:
    return Event(kind="user_message", user=UserRef("test", user, "g1"), text=text,
                 channel=Channel(), reply_to="chan")


async def test_shutdown_during_a_step_loses_nothing(settings: Any, embedder: Any, fake_llm: Any) -> None:
    """SIGTERM-style stop mid-step: the step commits and replies; later events stay journaled."""
    svc, outbox = await start_service(settings, embedder)
    fake_llm.push(delay(1.0, tool_call("send_message", message="finished", request_heartbeat=False)))
    first = _event("erin", "first")
    await svc.submit(first)
    await asyncio.sleep(0.3)  # the step is waiting on the LLM
    stopping = asyncio.create_task(svc.drain(grace_s=10))
    await asyncio.sleep(0.1)
    second = _event("erin", "second")
    assert await svc.submit(second) == "accepted"  # still journaled while draining
    await stopping
    assert outbox.texts(first.event_id) == ["finished"]
    assert await svc.redis.inbox_len(first.key) == 1  # the second waits for the next start
    await svc.stop()

    fake_llm.push(tool_call("send_message", message="second answered", request_heartbeat=False))
    svc2, outbox2 = await start_service(settings, embedder)
    try:
        await outbox2.wait(second.event_id, 20)
        assert outbox2.texts() == ["second answered"]
    finally:
        await svc2.redis.delete_prefix()
        await svc2.stop()


async def test_ops_endpoints_and_metrics_move(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """/healthz, /readyz and /metrics answer on a running app; a message moves the counters."""
    settings = make_settings(tmp_path, fake_llm.base_url, ops_port=_free_port())
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    base = f"http://127.0.0.1:{settings.ops_port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 200, body
                assert {"redis", "qdrant", "llm"} <= set(body["checks"])
            fake_llm.push(tool_call("send_message", message="hi", request_heartbeat=False))
            await h.say("hello")
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
        assert 'membot_messages_total{kind="user_message",platform="test"} 1.0' in text
        assert 'membot_tool_calls_total{outcome="ok",tool="send_message"} 1.0' in text
        assert 'membot_llm_calls_total{outcome="ok",purpose="chat"} 1.0' in text
        assert "membot_step_latency_seconds_count 1.0" in text
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_readyz_reports_a_down_llm(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """/readyz is 503 and names the LLM when its endpoint cannot be reached."""
    settings = make_settings(tmp_path, f"http://127.0.0.1:{_free_port()}/v1", ops_port=_free_port())
    svc, _ = await start_service(settings, embedder)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{settings.ops_port}/readyz") as r:
                body = await r.json()
        assert r.status == 503 and body["checks"]["llm"]["ok"] is False
        assert body["checks"]["redis"]["ok"] is True
    finally:
        await svc.stop()


async def test_two_instances_share_redis_without_double_processing(
        settings: Any, embedder: Any, fake_llm: Any) -> None:
    """Two bot instances on one Redis (and one vector store) process every event exactly once,
    one step at a time per user, in order."""
    fake_llm.default = lambda req: delay(0.05, echo(req))
    one_worker = settings.model_copy(update={"workers": 1})
    a, out_a = await start_service(one_worker, embedder)
    b, out_b = await start_service(one_worker, embedder, store=a.store)
    try:
        events = [_event(f"user{i % 3}", f"msg {n}") for n, i in enumerate(range(18))]
        waits = []
        for n, ev in enumerate(events):
            target, out = (a, out_a) if n % 2 == 0 else (b, out_b)
            out_a.expect(ev.event_id)
            out_b.expect(ev.event_id)
            await target.submit(ev)
            waits.append(ev.event_id)
        done = lambda eid: out_a.expect(eid).is_set() or out_b.expect(eid).is_set()  # noqa: E731
        for _ in range(400):
            if all(done(e) for e in waits):
                break
            await asyncio.sleep(0.05)
        replies = out_a.replies + out_b.replies
        assert sorted(r.event_id for r in replies) == sorted(waits)  # each exactly once
        assert len(out_a.replies) and len(out_b.replies)  # both instances worked
        for u in range(3):
            state = await a.states.load(f"test:g1:user{u}")
            said = [m.content.rsplit("] ", 1)[-1] for m in state.fifo if m.kind == "user_message"]
            assert said == [f"msg {n}" for n in range(18) if n % 3 == u]  # per-user order kept
    finally:
        await b.drain()
        await a.redis.delete_prefix()
        await a.stop()
        await b.redis.close()
        await b.llm.close()


async def test_sigterm_to_membot_run_mid_step_loses_nothing(tmp_path: Path, fake_llm: Any) -> None:
    """A real `membot run` process gets SIGTERM mid-step: it commits the step and exits 0."""
    import os
    import signal
    import sys

    from bot.stores.redis_store import RedisStore
    from tests.conftest import REDIS_URL, model_env, new_prefix, wait_until_ready

    prefix = new_prefix()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "DISCORD_", "SLACK_"))}
    env.update(LLM_BASE_URL=fake_llm.base_url, LLM_API_KEY="test", REDIS_URL=REDIS_URL,
               REDIS_PREFIX=prefix, QDRANT_PATH=str(tmp_path / "q"), **model_env(),
               OPS_PORT=str(port), HEARTBEAT_ENABLED="false", ADMIN_SOCKET="off",
               LOG_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "--env-file", "/nonexistent", "run",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
    redis = RedisStore(REDIS_URL, prefix)
    try:
        await wait_until_ready(port)
        fake_llm.push(delay(1.5, tool_call("core_memory_append", label="human",
                                           content="Committed despite SIGTERM", request_heartbeat=False)))
        ev = _event("sig", "remember this")
        await redis.journal(ev.key, ev.to_json())
        for _ in range(100):
            if fake_llm.requests:
                break
            await asyncio.sleep(0.05)
        assert fake_llm.requests, "the step did not start"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert await redis.inbox_len(ev.key) == 0
        import json as _json
        state = _json.loads(await redis.get_state(ev.key) or "{}")
        assert state["human"]["value"] == "Committed despite SIGTERM"
        assert "sk-" not in err.decode() and "test-key" not in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await redis.delete_prefix()
        await redis.close()
