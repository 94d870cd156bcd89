"""What Slack sends an app, as dicts: Events API callbacks (DMs, mentions), slash command
and block-action payloads — and, for HTTP mode, the same bodies encoded and signed with a
signing secret the way Slack signs requests (``v0`` HMAC-SHA256 over ``v0:ts:body``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from bot.testing.slack_api import TEAM

SECRET = "test-signing-secret"


def event_callback(event: dict[str, Any], event_id: str = "Ev1") -> dict[str, Any]:
    return {"token": "legacy", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]}


def dm(text: str, ts: str = "1700000000.000100", user: str = "U1", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "channel": "D1", "user": user,
            "text": text, "ts": ts, "event_ts": ts, **extra}


def mention(text: str, ts: str = "1700000001.000200", user: str = "U1", **extra: Any) -> dict[str, Any]:
    return {"type": "app_mention", "channel": "C1", "user": user, "text": text, "ts": ts,
            "event_ts": ts, **extra}


def command(text: str, user: str, response_url: str, channel: str = "C1") -> dict[str, str]:
    return {"token": "legacy", "team_id": TEAM, "team_domain": "test", "channel_id": channel,
            "channel_name": "general", "user_id": user, "user_name": user.lower(),
            "command": "/memory", "text": text, "api_app_id": "A1",
            "response_url": response_url, "trigger_id": "1.2.3"}


def action(action_id: str, value: str, user: str, response_url: str) -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": TEAM, "domain": "test"},
            "user": {"id": user, "team_id": TEAM}, "api_app_id": "A1", "token": "legacy",
            "trigger_id": "1.2.4", "response_url": response_url,
            "container": {"type": "message", "is_ephemeral": True},
            "actions": [{"action_id": action_id, "block_id": "b1", "value": value,
                         "type": "button", "action_ts": str(time.time())}]}


# --- HTTP mode: encoded, signed request bodies --------------------------------------------------
def signed_headers(body: str, content_type: str, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": content_type}


def event_body(event: dict[str, Any], event_id: str = "Ev1") -> str:
    return json.dumps(event_callback(event, event_id))


def command_body(text: str, user: str, response_url: str) -> str:
    return urllib.parse.urlencode(command(text, user, response_url))


def action_body(action_id: str, value: str, user: str, response_url: str) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(action(action_id, value, user, response_url))})
