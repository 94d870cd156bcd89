"""The ops HTTP server: /healthz, /readyz with timed checks, /metrics from a private registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.ops.metrics import Metrics
from bot.ops.server import Check, OpsServer


@asynccontextmanager
async def running(
    checks: Mapping[str, Check] | None = None,
    metrics: Metrics | None = None,
    check_timeout_s: float = 2.0,
) -> AsyncIterator[str]:
    server = OpsServer(
        "127.0.0.1", 0, metrics or Metrics(), checks, check_timeout_s=check_timeout_s
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def get(url: str) -> tuple[int, str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        text = await resp.text()
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, text, body


async def ok() -> bool:
    return True


async def false() -> bool:
    return False


async def test_port_zero_binds_a_free_port_and_stop_releases_it() -> None:
    """Port 0 picks a free port exposed as .port; after stop() nothing listens there."""
    server = OpsServer("127.0.0.1", 0, Metrics())
    await server.start()
    port = server.port
    assert port > 0
    await server.stop()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()


async def test_healthz_is_ok_while_running() -> None:
    """/healthz answers 200 {"status": "ok"} whatever the readiness checks say."""
    async with running({"redis": false}) as base:
        status, _, body = await get(base + "/healthz")
    assert status == 200
    assert body == {"status": "ok"}


async def test_readyz_200_when_all_checks_pass() -> None:
    """/readyz is 200 and lists every check as ok when all pass."""
    async with running({"redis": ok, "qdrant": ok}) as base:
        status, _, body = await get(base + "/readyz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["checks"] == {"redis": {"ok": True}, "qdrant": {"ok": True}}


async def test_readyz_503_names_the_failing_check() -> None:
    """/readyz is 503 when one check returns False, and names that check only."""
    async with running({"redis": ok, "qdrant": false}) as base:
        status, _, body = await get(base + "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["qdrant"]["ok"] is False


async def test_readyz_reports_exceptions_without_secrets() -> None:
    """A raising check fails readiness; its error text keeps the type but not credentials."""

    async def broken() -> bool:
        raise ConnectionError("cannot reach redis://:hunter2hunter2@redis:6379/0")

    async with running({"redis": broken}) as base:
        status, text, body = await get(base + "/readyz")
    assert status == 503
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert "hunter2hunter2" not in text


async def test_readyz_times_out_a_hanging_check() -> None:
    """A check that never answers fails after the check timeout instead of hanging /readyz."""

    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    async with running({"slow": hangs, "redis": ok}, check_timeout_s=0.2) as base:
        started = time.monotonic()
        status, _, body = await get(base + "/readyz")
        elapsed = time.monotonic() - started
    assert status == 503
    assert "timed out" in body["checks"]["slow"]["error"]
    assert body["checks"]["redis"] == {"ok": True}
    assert elapsed < 2.0


async def test_readyz_without_checks_is_ready() -> None:
    """With no checks configured /readyz is 200."""
    async with running() as base:
        status, _, _ = await get(base + "/readyz")
    assert status == 200


async def test_metrics_exposes_incremented_counter() -> None:
    """/metrics serves the Metrics registry in Prometheus text format, counts included."""
    metrics = Metrics()
    metrics.messages.labels(platform="discord", kind="message").inc()
    metrics.record_llm_call("chat", "ok", prompt_tokens=120, completion_tokens=30)
    async with running(metrics=metrics) as base:
        status, text, _ = await get(base + "/metrics")
    assert status == 200
    assert 'membot_messages_total{kind="message",platform="discord"} 1.0' in text
    assert 'membot_llm_tokens_total{direction="prompt",purpose="chat"} 120.0' in text
    assert "membot_step_latency_seconds_bucket" in text


def test_metrics_instances_do_not_collide() -> None:
    """Two Metrics objects coexist: each has its own registry, not the global one."""
    a, b = Metrics(), Metrics()
    a.summaries.inc()
    assert b"membot_summaries_total 1.0" in a.render()
    assert b"membot_summaries_total 0.0" in b.render()


def test_record_tool_folds_unknown_names() -> None:
    """Tool names outside the known set are counted as "unknown" (bounded label values)."""
    m = Metrics()
    m.record_tool("archival_memory_search", ok=True, known={"archival_memory_search"})
    m.record_tool("made_up_tool", ok=False, known={"archival_memory_search"})
    text = m.render().decode()
    assert 'tool="archival_memory_search"' in text
    assert 'membot_tool_calls_total{outcome="error",tool="unknown"} 1.0' in text
    assert "made_up_tool" not in text
