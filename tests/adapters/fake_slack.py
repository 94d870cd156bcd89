"""A fake Slack Web API over HTTP (aiohttp) that records every call, plus helpers that
build signed Events API, slash command and interactivity requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web

SECRET = "test-signing-secret"
TEAM = "T1"
BOT_USER = "UBOT"


class FakeSlack:
    def __init__(self, admins: set[str] | None = None) -> None:
        self.admins = admins or set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.responses: list[dict[str, Any]] = []  # posts to response_url
        self.uploads: list[bytes] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._ts = 0

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "1") -> str:
        return f"{self.url}/respond/{name}"

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

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
        return web.json_response({"ok": True, **self._answer(method, params)})

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"user_id": BOT_USER, "bot_id": "BBOT", "team_id": TEAM, "user": "membot"}
        if method == "chat.postMessage":
            self._ts += 1
            return {"channel": params.get("channel"), "ts": f"1800000000.{self._ts:06d}"}
        if method == "users.info":
            uid = params.get("user")
            return {"user": {"id": uid, "is_admin": uid in self.admins, "is_owner": False}}
        if method == "conversations.info":
            return {"channel": {"id": params.get("channel"), "name": "general"}}
        if method == "conversations.open":
            return {"channel": {"id": f"D{params.get('users')}"}}
        if method == "files.getUploadURLExternal":
            return {"upload_url": f"{self.url}/upload/F1", "file_id": "F1"}
        if method == "files.completeUploadExternal":
            return {"files": [{"id": "F1", "title": "file"}]}
        return {}

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads.append(await request.read())
        return web.Response(text="OK - 1")


# --- signed requests ----------------------------------------------------------------------------
def signed_headers(body: str, content_type: str, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": content_type}


def event_body(event: dict[str, Any], event_id: str = "Ev1") -> str:
    return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A1",
                       "type": "event_callback", "event_id": event_id,
                       "event_time": int(time.time()), "event": event})


def dm(text: str, ts: str = "1700000000.000100", user: str = "U1", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "channel": "D1", "user": user,
            "text": text, "ts": ts, "event_ts": ts, **extra}


def mention(text: str, ts: str = "1700000001.000200", user: str = "U1", **extra: Any) -> dict[str, Any]:
    return {"type": "app_mention", "channel": "C1", "user": user, "text": text, "ts": ts,
            "event_ts": ts, **extra}


def command_body(text: str, user: str, response_url: str) -> str:
    return urllib.parse.urlencode({
        "token": "legacy", "team_id": TEAM, "team_domain": "test", "channel_id": "C1",
        "channel_name": "general", "user_id": user, "user_name": user.lower(),
        "command": "/memory", "text": text, "api_app_id": "A1",
        "response_url": response_url, "trigger_id": "1.2.3"})


def action_body(action_id: str, value: str, user: str, response_url: str) -> str:
    payload = {"type": "block_actions", "team": {"id": TEAM, "domain": "test"},
               "user": {"id": user, "team_id": TEAM}, "api_app_id": "A1", "token": "legacy",
               "trigger_id": "1.2.4", "response_url": response_url,
               "container": {"type": "message", "is_ephemeral": True},
               "actions": [{"action_id": action_id, "block_id": "b1", "value": value,
                            "type": "button", "action_ts": str(time.time())}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})
