"""The REST side of the Discord emulator (``/api/v10``), as the real discord.py client uses it.

Emulated endpoints: ``GET /gateway/bot``, ``GET /users/@me`` (401 for a wrong token),
``GET /oauth2/applications/@me``, ``PUT /applications/{app}/commands`` and the guild
variant (bulk overwrite; names, descriptions and option counts checked), ``GET/POST
/channels/{id}(/messages)``, ``PATCH/DELETE`` of a message, ``POST .../typing``,
``POST /users/@me/channels`` (DM), ``GET /users/{id}``, ``POST /interactions/{id}/{token}
/callback``, follow-ups and edits under ``/webhooks/{app}/{token}`` (``@original`` too).
JSON and multipart (``payload_json`` + ``files[n]``) bodies.

Rules Discord enforces that are checked here: content at most 2,000 characters and not
empty without files/components (50035); a channel the bot cannot see is 403 50001, one it
cannot write to 403 50013; an unknown channel 404 10003; an interaction answered once
(40060), within 3 s of its creation (10062 after that), follow-ups within 15 minutes
(50027). ``fail()`` injects 429 (``retry_after`` in the body and headers, ``Via`` set like
Discord's edge, early retries still limited), 403 with a code, or 5xx; ``delay_s`` slows
a route down.

Not emulated: real per-route buckets and the global limit (only injected 429s), embeds and
stickers beyond pass-through, audit-log reasons, attachments' CDN, channel overwrites.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.testing.discord_models import DM, EPHEMERAL, Channel, User, message_payload, snowflake

CONTENT_LIMIT = 2_000
ACK_WINDOW_S = 3.0
FOLLOWUP_WINDOW_S = 15 * 60
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    code: int = 0
    retry_after: float = 0.0
    times: int = 1
    delay_s: float = 0.0


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Interaction:
    id: int
    token: str
    payload: dict[str, Any]
    created: float
    responded: dict[str, Any] | None = None
    responded_at: float | None = None
    original: dict[str, Any] | None = None  # the response message (after defer + edit)
    followups: list[dict[str, Any]] | None = None


async def read_body(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """JSON or multipart (payload_json + files) -> (payload, [(filename, data)])."""
    if not request.can_read_body:
        return {}, []
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        files: list[tuple[str, bytes]] = []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":  # type: ignore[union-attr]
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            else:
                files.append((part.filename or "file", bytes(await part.read())))  # type: ignore[union-attr]
        return payload, files
    return await request.json(), []


def check_content(payload: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
    content = payload.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        raise ApiError(400, 50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
    if not (content or files or payload.get("embeds") or payload.get("components")
            or payload.get("attachments")):
        raise ApiError(400, 50006, "Cannot send an empty message")


def check_commands(commands: Any) -> None:
    if not isinstance(commands, list) or len(commands) > 100:
        raise ApiError(400, 50035, "Invalid Form Body: at most 100 commands")
    for cmd in commands:
        _check_command(cmd, depth=0)


def _check_command(cmd: dict[str, Any], depth: int) -> None:
    name, desc = str(cmd.get("name", "")), str(cmd.get("description", ""))
    if not _NAME.match(name):
        raise ApiError(400, 50035, f"Invalid Form Body: name {name!r}")
    context_menu = depth == 0 and cmd.get("type", 1) != 1
    if not context_menu and not 1 <= len(desc) <= 100:
        raise ApiError(400, 50035, f"Invalid Form Body: description of {name!r} must be 1-100")
    options = cmd.get("options") or []
    if len(options) > 25:
        raise ApiError(400, 50035, f"Invalid Form Body: {name!r} has more than 25 options")
    for opt in options:
        if opt.get("type") in (1, 2) and depth >= 2:
            raise ApiError(400, 50035, "Invalid Form Body: subcommands nested too deep")
        _check_command(opt, depth + 1)


class Rest:
    """The REST handlers; ``world`` is the emulator (users, channels, gateway)."""

    def __init__(self, world: Any) -> None:
        self.w = world
        self.faults: deque[Fault] = deque()
        self.limited_until: dict[str, float] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.refused: list[tuple[str, str, int, int]] = []  # (method, path, status, code)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v10/{path:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, "/" + request.match_info["path"]
        self.requests.append((method, path))
        try:
            if request.headers.get("Authorization") != f"Bot {self.w.token}" and not path.startswith(
                    ("/interactions/", "/webhooks/")):
                raise ApiError(401, 0, "401: Unauthorized")
            fault = self._fault(method, path)
            if isinstance(fault, web.Response):
                return fault
            payload, files = await read_body(request)
            result = await self.w.route(method, path, payload, files, dict(request.query))
            if fault:
                await asyncio.sleep(fault)  # a slow Discord: done, but the answer comes late
        except ApiError as err:
            self.refused.append((method, path, err.status, err.code))
            return as_json({"message": err.message, "code": err.code}, status=err.status)
        if result is None:
            return web.Response(status=204)
        return as_json(result)

    def _fault(self, method: str, path: str) -> web.Response | float:
        """A 429 response, a delay in seconds (0: none); raises ApiError for other faults."""
        key = f"{method} {path}"
        wait = self.limited_until.get(key, 0.0) - time.monotonic()
        if wait > 0:  # retrying inside retry_after: still limited
            return self._rate_limited(key, wait)
        for fault in list(self.faults):
            if fault.method in (method, "*") and fault.path.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                if fault.status == 429:
                    self.limited_until[key] = time.monotonic() + fault.retry_after
                    return self._rate_limited(key, fault.retry_after)
                if fault.status < 400:
                    return fault.delay_s
                raise ApiError(fault.status, fault.code, _MESSAGES.get(fault.code, f"{fault.status} error"))
        return 0.0

    def _rate_limited(self, key: str, retry_after: float) -> web.Response:
        self.refused.append((*key.split(" ", 1), 429, 0))  # type: ignore[arg-type]
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                   "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset-After": f"{retry_after:.3f}", "X-RateLimit-Bucket": "emulated",
                   "X-RateLimit-Scope": "user"}
        return as_json({"message": "You are being rate limited.", "retry_after": retry_after,
                        "global": False}, status=429, headers=headers)


_MESSAGES = {50001: "Missing Access", 50013: "Missing Permissions", 10003: "Unknown Channel",
             10008: "Unknown Message", 10062: "Unknown interaction",
             40060: "Interaction has already been acknowledged."}


def new_message(channel: Channel, author: User, payload: dict[str, Any], files: list[tuple[str, bytes]],
                guild: Any = None, flags: int = 0) -> dict[str, Any]:
    attachments = [{"id": str(snowflake()), "filename": name, "size": len(data),
                    "url": f"http://127.0.0.1/attachments/{name}", "proxy_url": "", "content_type": None}
                   for name, data in files]
    msg = message_payload(snowflake(), channel, author, payload.get("content") or "", guild=guild,
                          reference=payload.get("message_reference"), attachments=attachments,
                          flags=flags | (int(payload.get("flags") or 0) & EPHEMERAL),
                          components=payload.get("components"))
    msg["_files"] = [data for _, data in files]
    msg["_allowed_mentions"] = payload.get("allowed_mentions")
    return msg


def as_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's exact content type (discord.py compares it verbatim: no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def public(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if not k.startswith("_")}


__all__ = ["ACK_WINDOW_S", "DM", "FOLLOWUP_WINDOW_S", "ApiError", "Fault", "Interaction", "Rest",
           "check_commands", "check_content", "new_message", "public"]
