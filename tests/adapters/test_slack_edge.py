"""Bad input at the Slack HTTP edge gets a 4xx without a traceback; lone surrogates, mentions,
rate limits and platform errors are handled at the Slack edges."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.chunking import split_message
from adapters.slack_outbox import SlackOutbox, defuse
from bot.errors import DeliveryError
from bot.events import Reply, UserRef
from bot.testing.fake_openai import tool_call
from tests.adapters.conftest import SlackEnv
from tests.adapters.fake_slack import SECRET, FakeSlack, dm, event_body

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
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) == 1)
    post = slack.api.calls_to("chat.postMessage")[0]
    assert post["markdown_text"] == "echo \ufffd back"
    assert "odd \ufffd char" in slack.fake.requests[0]["messages"][-1]["content"]


def test_mentions_in_model_output_are_defused() -> None:
    """@here/@channel, user-group pings and user mentions become plain text."""
    out = defuse("hey <!here> <!channel|channel> <!subteam^S0123|@oncall> <!subteam^S9> <@U42> <@W7|ann>")
    assert out == "hey @here @channel @oncall @group @U42 @ann"
    assert "<" not in out


class ScriptedSlack(FakeSlack):
    """The fake Web API with chat.postMessage answers scripted per call (status, error)."""

    def __init__(self, script: list[tuple[int, str, dict[str, str]]]) -> None:
        super().__init__()
        self.script = script

    async def _api(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        method = request.match_info["method"]
        if method == "chat.postMessage" and self.script:
            status, err, headers = self.script.pop(0)
            params = await request.json() if request.content_type == "application/json" else {}
            self.calls.append(("chat.postMessage!failed", dict(params)))
            return aiohttp.web.json_response({"ok": False, "error": err}, status=status, headers=headers)
        if method == "conversations.replies":
            self.calls.append((method, dict(request.query)))
            msgs = [{"ts": "1", "metadata": p.get("metadata")} for m, p in self.calls
                    if m == "chat.postMessage" and p.get("metadata")]
            return aiohttp.web.json_response({"ok": True, "messages": msgs})
        return await super()._api(request)


@pytest.mark.parametrize(("status", "error", "permanent"), [
    (200, "not_in_channel", True), (200, "channel_not_found", True), (200, "is_archived", True),
    (200, "msg_too_long", True), (200, "invalid_blocks", True), (500, "internal_error", False),
    (200, "fatal_error", False)])
async def test_slack_errors_are_classified(status: int, error: str, permanent: bool) -> None:
    """Slack errors a retry cannot fix are permanent; 5xx and server trouble are temporary."""
    async with ScriptedSlack([(status, error, {})] * 3) as api:
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_url, retry_handlers=[])
        with pytest.raises(DeliveryError) as info:
            await SlackOutbox(client).deliver(Reply(user=USER, text="hi", reply_to="C1:1.0"))
        assert info.value.permanent is permanent


async def test_slack_429_is_waited_out_by_the_sdk_then_temporary() -> None:
    """The web client built for membot waits out one 429 (Retry-After) itself; a second 429
    becomes a temporary DeliveryError carrying Retry-After."""
    from adapters.slack_adapter import web_client
    from tests.conftest import make_settings

    async with ScriptedSlack([(429, "ratelimited", {"Retry-After": "1"})]) as api:
        settings = make_settings(__import__("pathlib").Path("/tmp"), "http://127.0.0.1:9/v1",
                                 slack_bot_token="xoxb-t", slack_api_url=api.api_url)
        outbox = SlackOutbox(web_client(settings))
        await outbox.deliver(Reply(user=USER, text="hi", reply_to="C1:1.0"))
        assert len(api.calls_to("chat.postMessage")) == 1
    async with ScriptedSlack([(429, "ratelimited", {"Retry-After": "2"})] * 2) as api:
        settings = make_settings(__import__("pathlib").Path("/tmp"), "http://127.0.0.1:9/v1",
                                 slack_bot_token="xoxb-t", slack_api_url=api.api_url)
        with pytest.raises(DeliveryError) as info:
            await SlackOutbox(web_client(settings)).deliver(Reply(user=USER, text="hi", reply_to="C1:1.0"))
        assert not info.value.permanent and info.value.retry_after == 2.0


async def test_chunk_failure_reports_progress_and_resend_skips_posted_parts() -> None:
    """A 500 on part 2 reports one part done; a re-send after a crash finds part 1 by its
    metadata in the thread and posts only the rest — part 1 is never posted twice."""
    async with ScriptedSlack([]) as api:
        client = AsyncWebClient(token="xoxb-test", base_url=api.api_url, retry_handlers=[])
        outbox = SlackOutbox(client, limit=40)
        text = " ".join(f"word{i:02d}" for i in range(14))
        chunks = split_message(text, 40)
        assert len(chunks) >= 3
        reply = Reply(user=USER, text=text, reply_to="C1:1.0", event_id="e9")
        original = api._answer

        def fail_second(method: str, params: dict[str, object]) -> dict[str, object]:
            if method == "chat.postMessage" and len(api.calls_to("chat.postMessage")) == 2:
                api.script.append((500, "internal_error", {}))
            return original(method, params)

        api._answer = fail_second  # type: ignore[method-assign]
        with pytest.raises(DeliveryError) as info:
            await outbox.deliver(reply)
        assert info.value.parts_done == 2
        api._answer = original  # type: ignore[method-assign]
        from dataclasses import replace
        await outbox.deliver(replace(reply, part=0, resend=True))  # as after a crash
        texts = [p["markdown_text"] for p in api.calls_to("chat.postMessage")]
        assert texts == chunks
        assert api.calls_to("conversations.replies")


async def test_rate_limit_notice_once_per_window(slack: SlackEnv) -> None:
    """Over the per-minute limit, only the first extra message gets a notice (a spammer is
    not amplified)."""
    slack.svc.settings.rate_limit_per_minute = 1
    slack.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    for i in range(6):
        assert await slack.post(event_body(dm(f"m{i}", ts=f"1700000000.00{i}100"), event_id=f"E{i}")) == 200
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) >= 2)
    await asyncio.sleep(0.5)
    texts = [p["markdown_text"] for p in slack.api.calls_to("chat.postMessage")]
    assert texts.count("ok") == 1 and len(texts) == 2
