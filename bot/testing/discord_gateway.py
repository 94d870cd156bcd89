"""The Discord gateway side of the emulator: a websocket that speaks gateway v10 to the real
discord.py client.

Emulated: HELLO with a heartbeat interval; HEARTBEAT answered with HEARTBEAT_ACK;
IDENTIFY checked (token -> close 4004, a second IDENTIFY -> 4005, anything but a heartbeat
before it -> 4003, intents not an integer -> 4013, a privileged intent the application is
not approved for -> 4014, a bad ``shard`` -> 4010), then READY and one GUILD_CREATE per
guild of the shard (``(guild_id >> 22) % num_shards``; DMs go to shard 0). Dispatches
carry sequence numbers and respect intents (GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES; without
MESSAGE_CONTENT a guild message that does not mention the bot arrives with empty content,
as Discord does). RESUME replays what the session missed and sends RESUMED; an unknown or
expired session gets INVALID_SESSION. The server can send RECONNECT, INVALID_SESSION, or
drop the socket. ``zlib-stream`` transport compression is honoured; ``zstd-stream`` and
``etf`` encoding are not (frames then go out as plain JSON text, which discord.py reads).

Not emulated: identify rate limits (max_concurrency), presence and voice, member
chunking (op 8), heartbeat zombie detection, close codes 4007-4009/4012, large guilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15
PRIVILEGED = (1 << 1) | (1 << 8) | MESSAGE_CONTENT  # members, presences, message content
ALL_INTENTS = (1 << 26) - 1
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11


@dataclass
class Session:
    id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for RESUME
    link: Link | None = None
    resumable: bool = True
    resumes: int = 0
    identified_at_seq: int = 0

    @property
    def connected(self) -> bool:
        return self.link is not None and not self.link.ws.closed


@dataclass
class Link:
    """One websocket connection (a session may use several over time)."""

    ws: web.WebSocketResponse
    zlib: Any = None
    session: Session | None = None
    heartbeats: int = 0

    async def send(self, frame: dict[str, Any]) -> None:
        raw = json.dumps(frame)
        with contextlib.suppress(ConnectionError, RuntimeError):
            if self.zlib is not None:
                await self.ws.send_bytes(self.zlib.compress(raw.encode()) + self.zlib.flush(zlib.Z_SYNC_FLUSH))
            else:
                await self.ws.send_str(raw)


class Gateway:
    """Sessions and their sockets. ``world`` supplies READY/GUILD_CREATE and routing."""

    def __init__(self, world: Any, token: str, heartbeat_ms: int = 2_000,
                 privileged: int = 0) -> None:
        self.world = world
        self.token = token
        self.heartbeat_ms = heartbeat_ms
        self.privileged = privileged  # privileged intents the application may use
        self.sessions: dict[str, Session] = {}
        self.links: list[Link] = []
        self.closes: list[int] = []  # close codes the gateway sent
        self.url = ""

    # --- connection ----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        link = Link(ws, zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None)
        self.links.append(link)
        await link.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_ms}, "s": None, "t": None})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            await self._on_frame(link, json.loads(msg.data))
        if link.session is not None and link.session.link is link:
            link.session.link = None
        return ws

    async def _close(self, link: Link, code: int) -> None:
        self.closes.append(code)
        await link.ws.close(code=code)

    async def _on_frame(self, link: Link, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            link.heartbeats += 1
            await link.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(link, data or {})
        elif op == RESUME:
            await self._resume(link, data or {})
        elif link.session is None:
            await self._close(link, 4003)  # not authenticated

    async def _identify(self, link: Link, d: dict[str, Any]) -> None:
        if link.session is not None:
            return await self._close(link, 4005)
        if d.get("token") != self.token:
            return await self._close(link, 4004)
        intents = d.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~ALL_INTENTS:
            return await self._close(link, 4013)
        if intents & PRIVILEGED & ~self.privileged:
            return await self._close(link, 4014)
        shard = d.get("shard") or [0, 1]
        if not (isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]):
            return await self._close(link, 4010)
        session = Session(uuid.uuid4().hex, (int(shard[0]), int(shard[1])), intents)
        self.sessions[session.id] = session
        link.session, session.link = session, link
        ready = {"v": 10, "user": self.world.bot.payload(), "session_id": session.id,
                 "resume_gateway_url": self.url, "shard": list(session.shard),
                 "guilds": [{"id": str(g.id), "unavailable": True} for g in self.world.guilds_of(session.shard)],
                 "application": {"id": str(self.world.app_id), "flags": 0},
                 "private_channels": [], "relationships": [], "user_settings": {}}
        await self._dispatch_to(session, "READY", ready)
        if intents & GUILDS:
            for guild in self.world.guilds_of(session.shard):
                await self._dispatch_to(session, "GUILD_CREATE", guild.create_payload(self.world.users))
        return None

    async def _resume(self, link: Link, d: dict[str, Any]) -> None:
        session = self.sessions.get(str(d.get("session_id")))
        if d.get("token") != self.token:
            return await self._close(link, 4004)
        if session is None or not session.resumable or session.connected:
            await link.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        link.session, session.link = session, link
        session.resumes += 1
        for frame in session.buffer:
            if frame["s"] > int(d.get("seq") or 0):
                await link.send(frame)
        await self._dispatch_to(session, "RESUMED", {})
        return None

    # --- dispatch ------------------------------------------------------------------------
    async def _dispatch_to(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.buffer.append(frame)
        if session.link is not None:
            await session.link.send(frame)

    def live_sessions(self) -> list[Session]:
        """The newest session of each shard still worth sending to (connected or resumable)."""
        newest: dict[tuple[int, int], Session] = {}
        for s in self.sessions.values():
            if s.resumable:
                newest[s.shard] = s
        return list(newest.values())

    async def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None,
                       intent: int, *, bot_mentioned: bool = False) -> int:
        """Send an event to the sessions that should get it; returns how many did."""
        sent = 0
        for session in self.live_sessions():
            shard_id, count = session.shard
            wanted = (guild_id >> 22) % count if guild_id else 0
            if shard_id != wanted or not session.intents & intent:
                continue
            payload = data
            if (guild_id and event.startswith("MESSAGE_") and not session.intents & MESSAGE_CONTENT
                    and not bot_mentioned and data.get("author", {}).get("id") != str(self.world.bot.id)):
                payload = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
            await self._dispatch_to(session, event, payload)
            sent += 1
        return sent

    # --- server actions ------------------------------------------------------------------
    async def reconnect(self, session: Session) -> None:
        """Op 7: the client should reconnect and resume."""
        if session.link is not None:
            await session.link.send({"op": RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate(self, session: Session, resumable: bool = False) -> None:
        """Op 9: the session is gone (``resumable=False``: the client must IDENTIFY anew)."""
        session.resumable = resumable
        if session.link is not None:
            await session.link.send({"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def drop(self, session: Session, code: int = 4000) -> None:
        """The socket closes under the client (4000: unknown error, resumable)."""
        link = session.link
        session.link = None
        if link is not None:
            await self._close(link, code)

    async def close_all(self) -> None:
        for link in self.links:
            await link.ws.close()
        await asyncio.sleep(0)
