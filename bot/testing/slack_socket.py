"""A local Slack Socket Mode server, on top of the fake Web API (``bot.testing.slack_api``).

The real ``AsyncSocketModeHandler`` connects to it unmodified: its ``AsyncWebClient``
(``base_url=emu.api_url``) calls ``apps.connections.open`` with the ``xapp-`` token and
gets ``ws://127.0.0.1:PORT/link/?ticket=...``. Emulated, as Slack documents it:

- each connection starts with ``hello`` (``num_connections``, ``connection_info.app_id``);
  a ticket not issued by ``apps.connections.open`` is refused.
- ``events_api``, ``slash_commands`` and ``interactive`` envelopes, spread round-robin over
  the open connections (Slack allows up to 10 per app).
- acks: ``{"envelope_id": ...}`` within ``ack_timeout_s`` (3 s) of the last delivery; a
  payload in the ack only where ``accepts_response_payload``.
  Breaches land in ``violations``. An ``events_api`` envelope not acked in time is sent
  again (``retry_attempt`` 1..3, ``retry_reason: "timeout"``) on any open connection;
  slash commands and actions are not retried (the user sees an error) — ``timeouts``.
- ``disconnect`` messages: ``refresh(conn)`` sends ``warning`` (optional) then
  ``refresh_requested`` and closes the socket after ``grace_s``; ``drop(conn)`` closes it
  without a word (a network failure); ``lose_acks = n`` loses the next n acks on the way.
  Envelopes wait for a connection while none is open.

Not emulated: the real retry delays (1 min, 5 min; here ``retry_delays``), ``link_disabled``,
``too_many_websockets``, debug_info contents, server-initiated pings (the client pings us;
aiohttp answers), Events API rate limiting and event batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.testing.slack_api import FakeSlack, SlackApiProblem
from bot.testing.slack_payloads import event_callback

APP_ID = "A1"
RETRY_TYPES = {"events_api"}
ANSWERS_PAYLOAD = {"slash_commands"}


@dataclass
class Connection:
    id: int
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.monotonic)
    refreshing: bool = False

    @property
    def open(self) -> bool:
        return not self.ws.closed and not self.refreshing


@dataclass
class Envelope:
    id: str
    type: str
    payload: dict[str, Any]
    sent: list[tuple[int, float]] = field(default_factory=list)  # (connection id, when)
    acked_at: float | None = None
    acked_on: int | None = None
    ack_payload: dict[str, Any] | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ack_delay_s(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent[-1][1]


class SlackEmulator(FakeSlack):
    """``async with SlackEmulator() as slack``: Web API + Socket Mode (module docstring)."""

    def __init__(self, *, ack_timeout_s: float = 3.0, retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0),
                 grace_s: float = 0.5, **kw: Any) -> None:
        super().__init__(**kw)
        self.ack_timeout_s = ack_timeout_s
        self.retry_delays = retry_delays
        self.grace_s = grace_s
        self.connections: list[Connection] = []
        self.envelopes: list[Envelope] = []
        self.violations: list[str] = []
        self.timeouts: list[Envelope] = []
        self.lose_acks = 0  # the next N acks are lost on the way (a flaky network)
        self.lost: list[str] = []
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._rr = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/link/", self._link)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self.connections:
            await conn.ws.close()

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            ticket = uuid.uuid4().hex
            self._tickets.add(ticket)
            return {"url": f"ws://127.0.0.1:{self.url.rsplit(':', 1)[1]}/link/?ticket={ticket}&app_id={APP_ID}"}
        return super().answer(method, params)

    # --- connections --------------------------------------------------------------------------
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    async def wait_connections(self, n: int, timeout_s: float = 10.0) -> list[Connection]:
        await self.wait(lambda: len(self.open_connections()) >= n, timeout_s)
        return self.open_connections()

    async def _link(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws)
        self.connections.append(conn)
        await ws.send_json({"type": "hello", "num_connections": len(self.open_connections()),
                            "debug_info": {"host": "membot-emulator", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": APP_ID}})
        self._changed.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self._on_ack(conn, msg.data)
        self._changed.set()
        return ws

    def _on_ack(self, conn: Connection, raw: str) -> None:
        try:
            data = json.loads(raw)
            env = next(e for e in self.envelopes if e.id == data["envelope_id"])
        except (ValueError, KeyError, StopIteration):
            self.violations.append(f"connection {conn.id}: not an ack of a known envelope: {raw[:200]}")
            return
        if self.lose_acks > 0:
            self.lose_acks -= 1
            self.lost.append(env.id)
            return
        if env.acked_at is not None:
            return  # a second ack of a redelivered envelope: Slack keeps the first
        if data.get("payload") and env.type not in ANSWERS_PAYLOAD:
            self.violations.append(f"{env.id}: {env.type} ack carries a payload")
        if time.monotonic() - env.sent[-1][1] > self.ack_timeout_s:
            self.violations.append(f"{env.id}: acked after {self.ack_timeout_s}s")
            return
        env.acked_at, env.acked_on, env.ack_payload = time.monotonic(), conn.id, data.get("payload")
        env.acked.set()

    async def refresh(self, conn: Connection, warn: bool = False) -> None:
        """Slack's rotation: (warning,) refresh_requested, then the socket closes."""
        if warn:
            await conn.ws.send_json({"type": "disconnect", "reason": "warning",
                                     "debug_info": {"host": "membot-emulator"}})
        conn.refreshing = True
        await conn.ws.send_json({"type": "disconnect", "reason": "refresh_requested",
                                 "debug_info": {"host": "membot-emulator"}})
        self._spawn(self._close_later(conn))

    async def _close_later(self, conn: Connection) -> None:
        await asyncio.sleep(self.grace_s)
        await conn.ws.close()

    async def drop(self, conn: Connection) -> None:
        """The connection dies without a disconnect message."""
        conn.refreshing = True
        await conn.ws.close(code=1006)

    # --- envelopes -----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, kind: str, payload: dict[str, Any]) -> Envelope:
        """Queue one envelope; returns once it went out on a connection (not once acked)."""
        env = Envelope(id=str(uuid.uuid4()), type=kind, payload=payload)
        self.envelopes.append(env)
        await self._send_once(env, 0)
        self._spawn(self._watch(env))
        return env

    async def event(self, event: dict[str, Any], event_id: str | None = None) -> Envelope:
        """An Events API envelope around ``event`` (see ``slack_payloads.dm``/``mention``)."""
        return await self.send("events_api", event_callback(event, event_id or f"Ev{uuid.uuid4().hex[:10]}"))

    async def _send_once(self, env: Envelope, attempt: int) -> None:
        conn = await self._pick()
        message: dict[str, Any] = {"envelope_id": env.id, "type": env.type, "payload": env.payload,
                                   "accepts_response_payload": env.type in ANSWERS_PAYLOAD}
        if env.type in RETRY_TYPES:
            message |= {"retry_attempt": attempt, "retry_reason": "timeout" if attempt else ""}
        env.sent.append((conn.id, time.monotonic()))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_json(message)

    async def _pick(self, timeout_s: float = 10.0) -> Connection:
        deadline = time.monotonic() + timeout_s
        while not (conns := self.open_connections()):
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode connection to deliver to")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)
        return conns[next(self._rr) % len(conns)]

    async def _watch(self, env: Envelope) -> None:
        retries = self.retry_delays if env.type in RETRY_TYPES else ()
        for attempt in range(len(retries) + 1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(env.acked.wait(), self.ack_timeout_s)
                return
            if attempt == len(retries):
                break
            await asyncio.sleep(retries[attempt])
            await self._send_once(env, attempt + 1)
        self.timeouts.append(env)

    async def acked(self, env: Envelope, timeout_s: float = 10.0) -> Envelope:
        await asyncio.wait_for(env.acked.wait(), timeout_s)
        return env


__all__ = ["Connection", "Envelope", "SlackApiProblem", "SlackEmulator"]
