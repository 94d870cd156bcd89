"""The operations HTTP endpoint: liveness, readiness and Prometheus metrics.

- ``GET /healthz`` — 200 ``{"status": "ok"}`` as long as the process serves requests.
- ``GET /readyz``  — runs every readiness check concurrently, each under a timeout; 200
  when all pass, else 503. The body names each check with ``ok`` and, on failure, a short
  redacted error (exception type and message, never credentials).
- ``GET /metrics`` — ``Metrics.render()`` in Prometheus text format.

This is the only module of ``bot/`` that imports aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from bot.ops.logs import get_logger, redact_text
from bot.ops.metrics import Metrics

Check = Callable[[], Awaitable[bool]]
"""A readiness check: True when the dependency is usable; raising counts as failing."""

_ERROR_MAX_CHARS = 200

log = get_logger(__name__)


class OpsServer:
    """Serves /healthz, /readyz and /metrics on ``host:port`` (port 0 picks a free port)."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        checks: Mapping[str, Check] | None = None,
        *,
        check_timeout_s: float = 2.0,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._metrics = metrics
        self._checks = checks if checks is not None else {}  # live view: adapters add later
        self._check_timeout_s = check_timeout_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound; only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError("OpsServer is not started")
        return self._port

    async def start(self) -> None:
        """Bind and start serving. Raises OSError if the address is taken."""
        if self._runner is not None:
            raise RuntimeError("OpsServer already started")
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        runner = web.AppRunner(app, access_log=None)  # scrapes every few seconds: no access log
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("ops_server_started", host=self._host, port=self._port)

    async def stop(self) -> None:
        """Stop serving and release the port; a no-op when not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("ops_server_stopped")

    # --- handlers -------------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        report = dict(zip(names, results, strict=True))
        ready = all(r["ok"] for r in results)
        if not ready:
            failing = [n for n, r in report.items() if not r["ok"]]
            log.warning("not_ready", failing=failing)
        body = {"status": "ok" if ready else "unavailable", "checks": report}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type}
        )

    async def _run_check(self, check: Check) -> dict[str, Any]:
        try:
            ok = await asyncio.wait_for(check(), timeout=self._check_timeout_s)
        except TimeoutError:
            return {"ok": False, "error": f"timed out after {self._check_timeout_s:g}s"}
        except Exception as exc:  # a failing dependency is a result here, not an error
            text = redact_text(f"{type(exc).__name__}: {exc}")[:_ERROR_MAX_CHARS]
            return {"ok": False, "error": text}
        if not ok:
            return {"ok": False, "error": "check returned false"}
        return {"ok": True}
