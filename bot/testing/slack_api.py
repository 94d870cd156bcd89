"""A fake Slack Web API over HTTP (aiohttp) that records every call, checks what it is sent
the way Slack does, and fails on request.

Point the real ``AsyncWebClient(base_url=fake.api_url)`` at it. Emulated:

- auth: every method needs ``Authorization: Bearer xoxb-...`` (``not_authed`` /
  ``invalid_auth``); ``apps.connections.open`` needs the app-level ``xapp-`` token
  (``not_allowed_token_type``), see ``bot.testing.slack_socket``.
- ``chat.postMessage``: the channel must exist (``channel_not_found``) and have the bot as a
  member (``not_in_channel``); a user id means the app DM. It needs text, markdown_text or
  blocks (``no_text``); ``markdown_text`` goes alone (``markdown_text_conflict``); text over
  40,000 or markdown_text over 12,000 characters is ``msg_too_long``; ``thread_ts`` must be a
  Slack timestamp (``invalid_thread_ts``); blocks are checked by ``check_blocks``.
- response_url posts (slash commands, buttons): the same text/block checks, at most 5 posts
  per URL, answered ``400`` with the error like Slack's webhook endpoint.
- ``users.info`` (admins from ``admins``), ``conversations.info/open``, ``auth.test``, the
  three-step ``files_upload_v2`` (``getUploadURLExternal``, the upload, ``complete``).
- errors on request: ``fail(method, "ratelimited", retry_after=2)`` answers 429 with a
  ``Retry-After`` header, and every call of that method inside those seconds is limited
  too (as Slack does: retrying early does not help); any other error answers ``{"ok": false, "error": ...}``.

- ``conversations.history`` / ``conversations.replies``: the accepted posts of a channel or
  thread, newest first, with their ``metadata`` when ``include_all_metadata`` is set.

Not emulated: Slack's per-method rate tiers (only injected 429s), edits/deletes, scopes, Enterprise Grid, the legacy ``files.upload``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

TEAM = "T1"
BOT_USER = "UBOT"
TEXT_LIMIT = 40_000
MARKDOWN_LIMIT = 12_000
SECTION_LIMIT = 3_000
MAX_BLOCKS = 50
RESPONSE_URL_POSTS = 5
_TS = re.compile(r"^\d{9,11}\.\d{6}$")
_TEXT_TYPES = {"plain_text", "mrkdwn"}


@dataclass
class Failure:
    error: str
    retry_after: int | None = None
    status: int = 200  # an HTTP 5xx for server trouble (internal_error, service_unavailable)
    window: bool = False  # answered from a running limit window (does not extend it)


class SlackApiProblem(Exception):
    """What Slack would answer instead of ok (the error code, and extra fields)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def check_blocks(blocks: Any) -> None:
    """Raise ``invalid_blocks`` for a payload Slack's Block Kit validation rejects (the parts
    membot uses: section, actions with buttons, context, divider, header, markdown)."""
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackApiProblem("invalid_blocks_format") from None
    problems: list[str] = []
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise SlackApiProblem("invalid_blocks", errors=["must be a list of at most 50 blocks"])
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"[{i}] not an object")
            continue
        if block.get("block_id"):
            if block["block_id"] in ids:
                problems.append(f"[{i}] duplicate block_id")
            ids.add(block["block_id"])
        problems += [f"[{i}] {p}" for p in _block_problems(block)]
    if problems:
        raise SlackApiProblem("invalid_blocks", errors=problems)


def _text_problems(obj: Any, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
        return ["text must be a plain_text or mrkdwn object"]
    if plain_only and obj["type"] != "plain_text":
        return ["text must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return ["text must be a non-empty string"]
    return [f"text longer than {limit}"] if len(text) > limit else []


def _block_problems(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            return ["section needs text or fields"]
        return _text_problems(block["text"], SECTION_LIMIT) if "text" in block else []
    if kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= 25:
            return ["actions needs 1 to 25 elements"]
        return [p for el in elements for p in _button_problems(el)]
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= 10:
            return ["context needs 1 to 10 elements"]
        return [p for el in elements for p in _text_problems(el, SECTION_LIMIT)]
    if kind == "header":
        return _text_problems(block.get("text"), 150, plain_only=True)
    if kind == "markdown":
        text = block.get("text")
        return [] if isinstance(text, str) and 0 < len(text) <= MARKDOWN_LIMIT else ["markdown text"]
    if kind == "divider":
        return []
    return [f"unsupported block type {kind!r}"]


def _button_problems(el: Any) -> list[str]:
    if not isinstance(el, dict) or el.get("type") != "button":
        return ["only buttons are emulated in actions"]
    out = _text_problems(el.get("text"), 75, plain_only=True)
    if not 0 < len(str(el.get("action_id", ""))) <= 255:
        out.append("button action_id must be 1-255 chars")
    if len(str(el.get("value", ""))) > 2_000:
        out.append("button value longer than 2000")
    if el.get("style") not in (None, "primary", "danger"):
        out.append("button style must be primary or danger")
    return out


def check_message(params: dict[str, Any]) -> None:
    """The content rules shared by chat.postMessage and response_url posts."""
    text, md, blocks = params.get("text"), params.get("markdown_text"), params.get("blocks")
    if md is not None and (text or blocks):
        raise SlackApiProblem("markdown_text_conflict")
    if not (text or md or blocks):
        raise SlackApiProblem("no_text")
    if (text and len(str(text)) > TEXT_LIMIT) or (md and len(str(md)) > MARKDOWN_LIMIT):
        raise SlackApiProblem("msg_too_long")
    if blocks:
        check_blocks(blocks)
    thread_ts = params.get("thread_ts")
    if thread_ts and not _TS.match(str(thread_ts)):
        raise SlackApiProblem("invalid_thread_ts")


class FakeSlack:
    """The Web API on 127.0.0.1 (``async with FakeSlack() as api``); see the module docstring."""

    def __init__(self, admins: set[str] | None = None, channels: dict[str, str] | None = None) -> None:
        self.admins = admins or set()
        self.channels = {"C1": "general"} if channels is None else dict(channels)  # bot is in these
        self.outside: dict[str, str] = {}  # channels that exist without the bot in them
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[tuple[str, str]] = []  # (method, error) answered instead of ok
        self.responses: list[dict[str, Any]] = []  # accepted posts to response_url
        self.uploads: list[bytes] = []
        self.url = ""
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._response_posts: dict[str, int] = defaultdict(int)
        self._limited_until: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self._ts = 0

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{id}", self._upload)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()

    def add_routes(self, app: web.Application) -> None:
        """Subclasses add endpoints (the Socket Mode websocket)."""

    async def shutdown(self) -> None:
        """Subclasses close what they hold before the server stops."""

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "1") -> str:
        return f"{self.url}/respond/{name}"

    def fail(self, method: str, error: str, times: int = 1, retry_after: int | None = None,
             status: int = 200) -> None:
        """Answer the next ``times`` calls of ``method`` with ``error`` (429 for ratelimited,
        ``status`` for others, e.g. 500)."""
        for _ in range(times):
            self._failures[method].append(Failure(error, retry_after, status))

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

    def posts(self) -> list[dict[str, Any]]:
        """chat.postMessage calls Slack accepted."""
        return [p for p in self.calls_to("chat.postMessage") if p.get("_ok")]

    async def wait(self, pred: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; calls={[m for m, _ in self.calls]}")
            await asyncio.sleep(0.02)

    # --- handlers ---------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(dict(await request.post()))
        self.calls.append((method, params))
        try:
            self._check_token(method, request.headers.get("Authorization", ""), params)
            failure = self._failures[method].popleft() if self._failures[method] else None
            wait_s = self._limited_until.get(method, 0.0) - time.monotonic()
            if failure is None and wait_s > 0:  # calling again inside Retry-After: still limited
                failure = Failure("ratelimited", max(1, round(wait_s)), window=True)
            if failure is not None:
                return self._failed(method, failure)
            answer = self.answer(method, params)
        except SlackApiProblem as problem:
            self.errors.append((method, problem.error))
            return web.json_response({"ok": False, "error": problem.error, **problem.extra})
        params["_ok"] = True
        return web.json_response({"ok": True, **answer})

    def _failed(self, method: str, failure: Failure) -> web.Response:
        self.errors.append((method, failure.error))
        body = {"ok": False, "error": failure.error}
        if failure.error == "ratelimited":
            retry_after = failure.retry_after or 1
            if not failure.window:  # an early retry is refused, not punished with a longer wait
                self._limited_until[method] = max(self._limited_until.get(method, 0.0),
                                                  time.monotonic() + retry_after)
            return web.json_response(body, status=429,
                                     headers={"Retry-After": str(retry_after)})
        return web.json_response(body, status=failure.status)

    def _check_token(self, method: str, auth: str, params: dict[str, Any]) -> None:
        token = auth.removeprefix("Bearer ").strip() or str(params.get("token") or "")
        if not token:
            raise SlackApiProblem("not_authed")
        wanted = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not token.startswith(("xapp-", "xoxb-")):
            raise SlackApiProblem("invalid_auth")
        if not token.startswith(wanted):
            raise SlackApiProblem("not_allowed_token_type")

    def _channel(self, channel: Any) -> str:
        ch = str(channel or "")
        if ch.startswith(("D", "U", "W")) or ch in self.channels:
            return ch
        if ch in self.outside:
            raise SlackApiProblem("not_in_channel")
        raise SlackApiProblem("channel_not_found")

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"user_id": BOT_USER, "bot_id": "BBOT", "team_id": TEAM, "user": "membot"}
        if method == "chat.postMessage":
            channel = self._channel(params.get("channel"))
            check_message(params)
            self._ts += 1
            return {"channel": channel, "ts": f"1800000000.{self._ts:06d}"}
        if method == "users.info":
            uid = params.get("user")
            return {"user": {"id": uid, "is_admin": uid in self.admins, "is_owner": False}}
        if method == "conversations.info":
            ch = self._channel(params.get("channel"))
            return {"channel": {"id": ch, "name": self.channels.get(ch, ""), "is_im": ch[0] == "D"}}
        if method in ("conversations.history", "conversations.replies"):
            return {"messages": self.history(params), "has_more": False}
        if method == "conversations.open":
            return {"channel": {"id": f"D{params.get('users')}"}}
        if method == "files.getUploadURLExternal":
            return {"upload_url": f"{self.url}/upload/F1", "file_id": "F1"}
        if method == "files.completeUploadExternal":
            self._channel(params.get("channel_id"))
            return {"files": [{"id": "F1", "title": "file"}]}
        return {}

    def history(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Accepted posts of a conversation (or of one thread), newest first, with their
        ``metadata`` when ``include_all_metadata`` is asked for."""
        channel, thread = str(params.get("channel") or ""), params.get("ts")
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        out = []
        for p in reversed(self.posts()):
            ch = str(p.get("channel") or "")
            ch = f"D{ch}" if ch.startswith(("U", "W")) else ch  # a user id posts to the app DM
            if ch != channel or (thread and p.get("thread_ts") != thread):
                continue
            msg: dict[str, Any] = {"type": "message", "text": p.get("markdown_text") or p.get("text")}
            meta = p.get("metadata")
            if with_meta and meta:
                msg["metadata"] = json.loads(meta) if isinstance(meta, str) else meta
            out.append(msg)
        return out[: int(params.get("limit") or 100)]

    async def _respond(self, request: web.Request) -> web.Response:
        name = request.match_info["id"]
        body = await request.json()
        self._response_posts[name] += 1
        try:
            if self._response_posts[name] > RESPONSE_URL_POSTS:
                raise SlackApiProblem("used_url")
            if body.get("response_type") not in (None, "ephemeral", "in_channel"):
                raise SlackApiProblem("invalid_response_type")
            check_message(body)
        except SlackApiProblem as problem:
            self.errors.append(("response_url", problem.error))
            return web.Response(status=400 if problem.error != "used_url" else 404, text=problem.error)
        self.responses.append(body)
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads.append(await request.read())
        return web.Response(text="OK - 1")
