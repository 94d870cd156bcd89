"""The Slack emulator answers the real AsyncWebClient the way Slack does: its errors, its
limits and Block Kit checks, its rate limiting with Retry-After, the token types."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.testing.slack_api import FakeSlack, check_blocks


@pytest.fixture
async def api() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(channels={"C1": "general"}) as fake:
        fake.outside["C2"] = "secret"
        yield fake


def client(api: FakeSlack, token: str = "xoxb-test") -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=api.api_url)


async def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    return str(info.value.response["error"])


async def test_channel_errors(api: FakeSlack) -> None:
    """An unknown channel is channel_not_found; one the bot is not in is not_in_channel."""
    c = client(api)
    assert await _error(c.chat_postMessage(channel="C404", text="hi")) == "channel_not_found"
    assert await _error(c.chat_postMessage(channel="C2", text="hi")) == "not_in_channel"
    assert (await c.chat_postMessage(channel="C1", text="hi"))["ok"] is True
    assert (await c.chat_postMessage(channel="U1", text="dm"))["ok"] is True  # the app DM
    assert len(api.posts()) == 2


async def test_message_limits(api: FakeSlack) -> None:
    """Too long, empty, markdown_text mixed with text, or a malformed thread_ts are refused."""
    c = client(api)
    assert await _error(c.chat_postMessage(channel="C1", text="x" * 40_001)) == "msg_too_long"
    assert await _error(c.chat_postMessage(channel="C1", markdown_text="x" * 12_001)) == "msg_too_long"
    assert await _error(c.chat_postMessage(channel="C1", text="")) == "no_text"
    assert await _error(c.chat_postMessage(channel="C1", text="a", markdown_text="b")) == "markdown_text_conflict"
    assert await _error(c.chat_postMessage(channel="C1", text="a", thread_ts="yesterday")) == "invalid_thread_ts"
    assert api.posts() == []


async def test_block_kit_checks(api: FakeSlack) -> None:
    """Blocks Slack rejects are invalid_blocks, with the reason in errors."""
    c = client(api)
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3_001}}]
    with pytest.raises(SlackApiError) as info:
        await c.chat_postMessage(channel="C1", text="t", blocks=long_section)
    assert info.value.response["error"] == "invalid_blocks" and "3000" in info.value.response["errors"][0]
    bad_button = [{"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                                    "text": {"type": "mrkdwn", "text": "go"}}]}]
    assert await _error(c.chat_postMessage(channel="C1", text="t", blocks=bad_button)) == "invalid_blocks"
    check_blocks([{"type": "divider"}, {"type": "section", "text": {"type": "plain_text", "text": "ok"}}])
    assert await _error(c.chat_postMessage(channel="C1", text="t", blocks=[{"type": "divider"}] * 51)) == "invalid_blocks"


async def test_ratelimited_with_retry_after(api: FakeSlack) -> None:
    """ratelimited is a 429 with Retry-After; calling again early is limited too, and the
    SDK's rate-limit retry handler that waits it out gets through."""
    c = client(api)
    api.fail("chat.postMessage", "ratelimited", retry_after=1)
    with pytest.raises(SlackApiError) as info:
        await c.chat_postMessage(channel="C1", text="hi")
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "1"
    assert await _error(c.chat_postMessage(channel="C1", text="again")) == "ratelimited"
    patient = client(api)
    patient.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    start = time.monotonic()
    assert (await patient.chat_postMessage(channel="C1", text="later"))["ok"] is True
    assert time.monotonic() - start < 5 and [p["text"] for p in api.posts()] == ["later"]


async def test_tokens(api: FakeSlack) -> None:
    """Web API methods need the bot token; apps.connections.open needs the app token."""
    assert await _error(client(api, "").auth_test()) == "not_authed"
    assert await _error(client(api, "xapp-1").chat_postMessage(channel="C1", text="x")) == "not_allowed_token_type"
    assert await _error(client(api).apps_connections_open(app_token="xoxb-wrong")) == "not_allowed_token_type"


async def test_injected_error_then_ok(api: FakeSlack) -> None:
    """fail() answers the next calls with the given error, then Slack is fine again."""
    api.fail("conversations.info", "internal_error", times=1)
    c = client(api)
    assert await _error(c.conversations_info(channel="C1")) == "internal_error"
    assert (await c.conversations_info(channel="C1"))["channel"]["name"] == "general"
    assert api.errors == [("conversations.info", "internal_error")]
