"""Bad input at the Slack HTTP edge gets a 4xx without a traceback; lone surrogates, mentions,
rate limits and platform errors are handled at the Slack edges."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.chunking import split_message
from adapters.slack_outbox import SlackOutbox, defuse
from bot.errors import DeliveryError
from bot.events import Reply, UserRef
from bot.testing.fake_openai import tool_call
from bot.testing.slack_api import FakeSlack
from bot.testing.slack_payloads import SECRET, dm, event_body
from tests.adapters.conftest import SlackEnv

USER = UserRef("slack", "U1", "T1")


async def _post_raw(env: SlackEnv, body: bytes, content_type: str = "application/json",
                    signed: bool = True) -> int:
    """POST exact bytes, signed over those bytes (or not signed at all)."""
    headers = {"Content-Type": content_type}
    if signed:
        ts = str(int(time.time()))
        digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        headers |= {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    async with env.http.post(env.url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("invalid utf-8", b'{"type":"event_callback","event":{"text":"\xff\xfe"}}', "application/json"),
    ("malformed json", b'{"type": "event_callback", "event": {', "application/json"),
    ("json array", b"[1, 2, 3]", "application/json"),
    ("no event", b'{"type":"event_callback","team_id":"T1"}', "application/json"),
    ("event without ts", event_body({"type": "message", "channel_type": "im", "channel": "D1",
                                     "user": "U1", "text": "hi"}).encode(), "application/json"),
    ("event without channel", event_body({"type": "app_mention", "user": "U1", "text": "hi",
                                          "ts": "1700000000.000100"}).encode(), "application/json"),
    ("ts not a timestamp", event_body(dm("hi", ts="yesterday")).encode(), "application/json"),
    ("text not a string", event_body({**dm("x"), "text": {"a": 1}}).encode(), "application/json"),
    ("bad form payload", b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("name", "body", "ctype"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_signed_bodies_get_400_without_traceback(slack: SlackEnv, name: str, body: bytes,
                                                           ctype: str, caplog: pytest.LogCaptureFixture) -> None:
    """Signed but malformed requests get 400, log no traceback and journal nothing."""
    caplog.set_level(logging.INFO)
    assert await _post_raw(slack, body, ctype) == 400
    assert not [r for r in caplog.records if r.exc_info]
    assert await slack.svc.redis.active_users() == []


@pytest.mark.parametrize(("name", "body", "ctype"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_unsigned_bad_bodies_get_401_before_parsing(slack: SlackEnv, name: str, body: bytes,
                                                          ctype: str, caplog: pytest.LogCaptureFixture) -> None:
    """Unsigned requests are refused on the signature alone (401), whatever the body."""
    caplog.set_level(logging.INFO)
    assert await _post_raw(slack, body, ctype, signed=False) == 401
    assert not [r for r in caplog.records if r.exc_info]


async def test_lone_surrogate_is_sanitized_and_answered(slack: SlackEnv) -> None:
    """A lone surrogate (\\ud800, valid in JSON) is replaced at the edge; the message is
    answered once instead of failing the SDK's encoding forever."""
    slack.fake.push(tool_call("send_message", message="echo \ud800 back", request_heartbeat=False))
    body = json.dumps(json.loads(event_body(dm("odd \ud800 char"))))  # \ud800 stays escaped
    assert "\\ud800" in body
    assert await slack.post(body) == 200
    await slack.api.wait(lambda: len(slack.api.posts()) == 1)
    post = slack.api.posts()[0]
    assert post["markdown_text"] == "echo \ufffd back"
    assert any("odd \ufffd char" in str(m.get("content")) for m in slack.fake.requests[0]["messages"])
    await slack.svc.writer.flush()  # recall (the embedder) takes it too
    assert await slack.svc.redis.recall_dirty_users() == []


def test_mentions_in_model_output_are_defused() -> None:
    """@here/@channel, user-group pings and user mentions become plain text."""
    out = defuse("hey <!here> <!channel|channel> <!subteam^S0123|@oncall> <!subteam^S9> <@U42> <@W7|ann>")
    assert out == "hey @here @channel @oncall @group @U42 @ann"
    assert "<" not in out


@pytest.mark.parametrize(("status", "error", "permanent"), [
    (200, "not_in_channel", True), (200, "channel_not_found", True), (200, "is_archived", True),
    (200, "msg_too_long", True), (200, "invalid_blocks", True), (500, "internal_error", False),
    (200, "fatal_error", False)])
async def test_slack_errors_are_classified(status: int, error: str, permanent: bool) -> None:
    """Slack errors a retry cannot fix are permanent; 5xx and server trouble are temporary."""
    async with FakeSlack() as api:
        api.fail("chat.postMessage", error, times=3, status=status)
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_url, retry_handlers=[])
        with pytest.raises(DeliveryError) as info:
            await SlackOutbox(client).deliver(Reply(user=USER, text="hi", reply_to="C1:1700000000.000100"))
        assert info.value.permanent is permanent


def _client(api: FakeSlack) -> AsyncWebClient:
    from adapters.slack_adapter import web_client
    from tests.conftest import make_settings

    settings = make_settings(Path("/tmp"), "http://127.0.0.1:9/v1", slack_bot_token="xoxb-t",
                             slack_api_url=api.api_url)
    return web_client(settings)


async def test_slack_429_is_waited_out_by_the_sdk_then_temporary() -> None:
    """The web client built for membot waits out one 429 (Retry-After) itself; a second 429
    becomes a temporary DeliveryError carrying Retry-After."""
    async with FakeSlack() as api:
        api.fail("chat.postMessage", "ratelimited", retry_after=1)
        await SlackOutbox(_client(api)).deliver(Reply(user=USER, text="hi", reply_to="C1:1700000000.000100"))
        assert len(api.posts()) == 1
    async with FakeSlack() as api:
        api.fail("chat.postMessage", "ratelimited", times=2, retry_after=2)
        with pytest.raises(DeliveryError) as info:
            await SlackOutbox(_client(api)).deliver(Reply(user=USER, text="hi", reply_to="C1:1700000000.000100"))
        assert not info.value.permanent and info.value.retry_after == 2.0


async def test_chunk_failure_reports_progress_and_resend_skips_posted_parts() -> None:
    """A 500 on a later part reports the parts done; a re-send after a crash finds them by
    their metadata in the thread and posts only the rest — nothing is posted twice."""
    async with FakeSlack() as api:
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_url, retry_handlers=[])
        outbox = SlackOutbox(client, limit=40)
        text = " ".join(f"word{i:02d}" for i in range(14))
        chunks = split_message(text, 40)
        assert len(chunks) >= 3
        reply = Reply(user=USER, text=text, reply_to="C1:1700000000.000100", event_id="e9")
        api.answer_before = api.answer

        def fail_third(method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method == "chat.postMessage" and len(api.posts()) == 2:
                api.fail("chat.postMessage", "internal_error", status=500)
            return api.answer_before(method, params)

        api.answer = fail_third  # type: ignore[method-assign]
        await outbox.deliver(Reply(user=USER, text="warm-up", reply_to="C1:1700000000.000100"))
        api.calls.clear()
        with pytest.raises(DeliveryError) as info:
            await outbox.deliver(reply)
        assert 1 <= info.value.parts_done < len(chunks)
        api.answer = api.answer_before  # type: ignore[method-assign]
        from dataclasses import replace
        await outbox.deliver(replace(reply, part=0, resend=True))  # as after a crash
        texts = [p["markdown_text"] for p in api.posts()]
        assert texts == chunks
        assert api.calls_to("conversations.replies")


async def test_rate_limit_notice_once_per_window(slack: SlackEnv) -> None:
    """Over the per-minute limit, only the first extra message gets a notice (a spammer is
    not amplified)."""
    slack.svc.settings.rate_limit_per_minute = 1
    slack.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    for i in range(6):
        assert await slack.post(event_body(dm(f"m{i}", ts=f"1700000000.00{i}100"), event_id=f"E{i}")) == 200
    await slack.api.wait(lambda: len(slack.api.posts()) >= 2)
    await asyncio.sleep(0.5)
    texts = [p["markdown_text"] for p in slack.api.posts()]
    assert texts.count("ok") == 1 and len(texts) == 2
