"""A recording HTTP proxy in front of a real OpenAI-compatible server.

The real-server test lane and ``bench/real_llm.py`` put it between membot and the server to
see exactly what membot sent and what the server answered::

    async with RecordingProxy("http://127.0.0.1:8080") as proxy:
        settings = Settings(llm_base_url=proxy.base_url, ...)
        ...
        proxy.exchanges[0].request["messages"], proxy.exchanges[0].status

Every request is forwarded as is (method, path, body, the Authorization header); the
answer is returned as is. A client that disconnects mid-request closes the upstream
request too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Exchange:
    path: str
    request: dict[str, Any]  # the JSON body membot sent ({} for a GET)
    status: int = 0  # 0: no answer (server gone, client gave up)
    response: Any = None
    seconds: float = 0.0


class RecordingProxy:
    def __init__(self, upstream: str, *, timeout_s: float = 600.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.exchanges: list[Exchange] = []
        self.base_url = ""
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def chats(self) -> list[Exchange]:
        """The chat completion exchanges, in order."""
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]

    async def __aenter__(self) -> RecordingProxy:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        raw = await request.read()
        body: dict[str, Any] = {}
        if raw:
            try:
                body = await request.json()
            except ValueError:
                body = {}
        ex = Exchange(path=request.path, request=body)
        self.exchanges.append(ex)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        started = time.perf_counter()
        try:
            async with self._session.request(request.method, self.upstream + request.path_qs,
                                             data=raw or None, headers=headers) as up:
                data = await up.read()
                ex.status = up.status
                ex.seconds = time.perf_counter() - started
                try:
                    ex.response = await up.json(content_type=None)
                except ValueError:
                    ex.response = data[:2000].decode(errors="replace")
                return web.Response(body=data, status=up.status,
                                    content_type=up.content_type or "application/json")
        except aiohttp.ClientError as exc:
            ex.seconds = time.perf_counter() - started
            return web.json_response({"error": {"message": f"proxy: upstream failed: {exc}",
                                                "type": "proxy_error"}}, status=502)
