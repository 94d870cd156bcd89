"""The Slack HTTP edge: a request is checked before anything parses it beyond the signature.

Order: the signature over the raw bytes (401), then strict UTF-8 (400), then the body's
shape — JSON object for the Events API, form for commands and interactivity, an event
with the fields the bot reads (400). Only a request that passes reaches bolt, so bad
input gets a 4xx without a traceback and unsigned requests cost one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from typing import Any

TS = re.compile(r"^\d{1,12}\.\d{1,9}$")
EVENT_TYPES_READ = {"message", "app_mention"}  # the events whose fields to_event reads


def signed(secret: str, body: bytes, timestamp: str | None, signature: str | None,
           max_age_s: float = 300.0) -> bool:
    """Slack's v0 signature over the raw bytes, with a fresh timestamp (replays refused)."""
    if not secret or not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > max_age_s:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return hmac.compare_digest(f"v0={digest.hexdigest()}", signature)


def check(secret: str, body: bytes, headers: Any, content_type: str) -> tuple[int, str]:
    """(status, reason): 0 when the request may go to bolt, else the 4xx to answer."""
    if not signed(secret, body, headers.get("X-Slack-Request-Timestamp"),
                  headers.get("X-Slack-Signature")):
        return 401, "invalid signature"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "body is not UTF-8"
    if content_type == "application/json":
        return _check_json(text)
    return _check_form(text)


def _check_json(text: str) -> tuple[int, str]:
    try:
        data = json.loads(text)
    except ValueError:
        return 400, "malformed JSON"
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return 400, "not a Slack request"
    if data["type"] != "event_callback":
        return 0, ""
    event = data.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return 400, "event_callback without an event"
    if event["type"] in EVENT_TYPES_READ:
        return _check_event(event)
    return 0, ""


def _check_event(event: dict[str, Any]) -> tuple[int, str]:
    for name in ("channel", "ts"):
        if not isinstance(event.get(name), str) or not event[name]:
            return 400, f"event without {name}"
    if not TS.match(event["ts"]) or ("thread_ts" in event and not TS.match(str(event["thread_ts"]))):
        return 400, "malformed ts"
    for name in ("user", "text", "subtype", "bot_id", "channel_type"):
        if name in event and event[name] is not None and not isinstance(event[name], str):
            return 400, f"malformed {name}"
    if "files" in event and not isinstance(event["files"], list):
        return 400, "malformed files"
    return 0, ""


def _check_form(text: str) -> tuple[int, str]:
    try:
        form = urllib.parse.parse_qs(text, strict_parsing=bool(text), errors="strict")
    except (ValueError, UnicodeDecodeError):
        return 400, "malformed form body"
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return 400, "malformed payload"
        if not isinstance(payload, dict):
            return 400, "malformed payload"
    return 0, ""
