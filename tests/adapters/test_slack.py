"""The Slack adapter end to end: signed HTTP requests into the real bolt app, the real core
behind it, replies and API calls recorded by a fake Slack Web API."""

from __future__ import annotations

import asyncio
import json

from bot.testing.fake_openai import last_event, tool_call
from bot.testing.slack_payloads import action_body, command_body, dm, event_body, mention
from tests.adapters.conftest import SlackEnv


def _say(env: SlackEnv, text: str) -> None:
    env.fake.push(tool_call("send_message", message=text, request_heartbeat=False))


def _posts(env: SlackEnv) -> list[dict[str, object]]:
    return env.api.calls_to("chat.postMessage")


async def test_dm_is_answered_in_its_thread(slack: SlackEnv) -> None:
    """A DM is journaled before the ack and answered in a thread under the user's message."""
    _say(slack, "Hello!")
    assert await slack.post(event_body(dm("hi bot"))) == 200
    await slack.api.wait(lambda: len(_posts(slack)) == 1)
    post = _posts(slack)[0]
    assert (post["channel"], post["thread_ts"], post["markdown_text"]) == ("D1", "1700000000.000100", "Hello!")
    user_line = last_event(slack.fake.requests[0])
    assert "DM" in user_line and user_line.endswith("hi bot")


async def test_mention_in_channel_gets_threaded_reply(slack: SlackEnv) -> None:
    """An app_mention is answered in its thread; the agent is told it was said in #general."""
    _say(slack, "Hi all")
    assert await slack.post(event_body(mention("<@UBOT> what's new?"))) == 200
    await slack.api.wait(lambda: len(_posts(slack)) == 1)
    assert _posts(slack)[0]["thread_ts"] == "1700000001.000200"
    assert _posts(slack)[0]["channel"] == "C1"
    user_line = last_event(slack.fake.requests[0])
    assert "in #general (others can read)" in user_line
    assert user_line.endswith("what's new?") and "<@UBOT>" not in user_line


async def test_mention_inside_a_thread_replies_in_that_thread(slack: SlackEnv) -> None:
    """A mention inside an existing thread is answered in that thread, marked as a thread."""
    _say(slack, "Sure")
    body = event_body(mention("<@UBOT> and this?", ts="1700000005.000500",
                              thread_ts="1700000001.000200"))
    assert await slack.post(body) == 200
    await slack.api.wait(lambda: len(_posts(slack)) == 1)
    assert _posts(slack)[0]["thread_ts"] == "1700000001.000200"


async def test_retry_is_answered_once(slack: SlackEnv) -> None:
    """A retry of an event, or the same message delivered again as app_mention, is answered once."""
    _say(slack, "Once")
    body = event_body(dm("hello again"), event_id="EvRetry")
    assert await slack.post(body) == 200
    assert await slack.post(body) == 200  # X-Slack-Retry-Num is not needed to dedupe
    same_message = mention("<@UBOT> hello again", ts="1700000000.000100", channel="D1")
    assert await slack.post(event_body(same_message, event_id="EvOther")) == 200
    await slack.api.wait(lambda: len(_posts(slack)) == 1)
    await asyncio.sleep(0.5)
    assert len(_posts(slack)) == 1
    assert len(slack.fake.requests) == 1


async def test_bad_signature_is_rejected(slack: SlackEnv) -> None:
    """A request not signed with the signing secret gets 401 and reaches nobody."""
    assert await slack.post(event_body(dm("forged")), secret="wrong-secret") == 401
    await asyncio.sleep(0.2)
    assert slack.fake.requests == [] and await slack.svc.redis.active_users() == []


async def test_bot_and_edited_messages_are_ignored(slack: SlackEnv) -> None:
    """Bot messages, the bot's own messages and edits are acknowledged but not answered."""
    for i, ev in enumerate([dm("beep", bot_id="B2", subtype="bot_message"),
                            dm("me", user="UBOT", ts="1700000000.000900"),
                            dm("edited", subtype="message_changed", ts="1700000000.000901")]):
        assert await slack.post(event_body(ev, event_id=f"EvIgnore{i}")) == 200
    await asyncio.sleep(0.3)
    assert slack.fake.requests == [] and _posts(slack) == []


async def test_long_reply_is_split(slack: SlackEnv) -> None:
    """A reply longer than one Slack message goes out as several threaded posts in order."""
    long = "\n\n".join(f"Paragraph {i}. " + "word " * 150 for i in range(10))
    _say(slack, long)
    assert await slack.post(event_body(dm("tell me a lot"))) == 200
    await slack.api.wait(lambda: len(_posts(slack)) >= 3)
    await asyncio.sleep(0.3)
    posts = _posts(slack)
    assert 2 < len(posts) <= 4
    assert all(len(str(p["markdown_text"])) <= 3_500 for p in posts)
    assert str(posts[0]["markdown_text"]).startswith("Paragraph 0.")
    assert {p["thread_ts"] for p in posts} == {"1700000000.000100"}


async def test_memory_show_for_self_is_ephemeral(slack: SlackEnv) -> None:
    """/memory show answers the caller only, with their own memory."""
    assert await slack.post_form(command_body("show", "U1", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    answer = slack.api.responses[0]
    assert answer["response_type"] == "ephemeral"
    assert "Memory of slack:T1:U1" in answer["text"]


async def test_memory_show_other_user_refused_for_non_admin(slack: SlackEnv) -> None:
    """A member asking for someone else's memory is refused without naming them."""
    assert await slack.post_form(command_body("show <@U999|bob>", "U1", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    answer = slack.api.responses[0]
    assert answer["response_type"] == "ephemeral" and "Only the person themselves" in answer["text"]
    assert "U999" not in answer["text"]


async def test_memory_show_other_user_refused_for_workspace_admin(slack: SlackEnv) -> None:
    """A workspace admin (users.info is_admin) cannot see another member's memory: it holds
    their DMs (What was seen 1)."""
    assert await slack.post_form(command_body("show <@U999>", "UADM", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    assert "Only the person themselves" in slack.api.responses[0]["text"]
    assert "Memory of" not in slack.api.responses[0]["text"]


async def test_memory_show_other_user_for_configured_admin(slack: SlackEnv) -> None:
    """An id in SLACK_ADMIN_IDS is an admin without asking Slack."""
    assert await slack.post_form(command_body("show <@U999>", "UOPS", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    assert "Memory of slack:T1:U999" in slack.api.responses[0]["text"]
    assert slack.api.calls_to("users.info") == []


async def _ask_reset(slack: SlackEnv, user: str) -> str:
    assert await slack.post_form(command_body("reset", user, slack.api.response_url("ask"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    question = slack.api.responses[0]
    assert question["response_type"] == "ephemeral"
    return str(question["blocks"][1]["elements"][0]["value"])


async def test_reset_needs_the_confirm_button(slack: SlackEnv) -> None:
    """/memory reset only asks; the caller's confirm click deletes the memory."""
    _say(slack, "noted")
    assert await slack.post(event_body(dm("remember me"))) == 200
    await slack.api.wait(lambda: len(_posts(slack)) == 1)
    value = await _ask_reset(slack, "U1")
    assert (await slack.svc.admin.show("slack:T1:U1"))["fifo_messages"] > 0
    assert await slack.post_form(action_body("memory_confirm", value, "U1", slack.api.response_url("done"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 2)
    assert slack.api.responses[1].get("replace_original") is True, slack.api.responses
    assert "deleted" in slack.api.responses[1]["text"]
    assert (await slack.svc.admin.show("slack:T1:U1"))["fifo_messages"] == 0


async def test_confirm_click_by_someone_else_is_refused(slack: SlackEnv) -> None:
    """A confirm button carries who asked; another person's click changes nothing."""
    value = await _ask_reset(slack, "U1")
    assert await slack.post_form(action_body("memory_confirm", value, "U2", slack.api.response_url("x"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 2)
    assert "Only the person who asked" in slack.api.responses[1]["text"]


async def test_export_reaches_only_the_caller(slack: SlackEnv) -> None:
    """/memory export is an ephemeral code block when small, else a file in the caller's DM."""
    assert await slack.post_form(command_body("export", "U1", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) >= 1)
    uploads = slack.api.calls_to("files.completeUploadExternal")
    if uploads:
        assert json.loads(str(uploads[0]["files"]))[0]["id"] == "F1"
        assert uploads[0]["channel_id"] == "DU1"
        assert b'"user": "slack:T1:U1"' in slack.api.uploads[0]
    else:
        assert "slack:T1:U1" in slack.api.responses[0]["text"]
    assert slack.api.responses[0]["response_type"] == "ephemeral"
    assert _posts(slack) == []


async def test_outbox_sends_notices_not_traces_and_defuses_broadcasts() -> None:
    """Notices reach Slack, traces never do, and <!channel> in output pings nobody."""
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack_outbox import SlackOutbox
    from bot.events import Reply, UserRef
    from bot.testing.slack_api import FakeSlack

    async with FakeSlack() as api:
        outbox = SlackOutbox(AsyncWebClient(token="xoxb-test", base_url=api.api_url))
        user = UserRef("slack", "U1", "T1")
        await outbox.deliver(Reply(user=user, text="inner thought", reply_to="D1:1700000000.000100", kind="trace"))
        await outbox.deliver(Reply(user=user, text="Slow down <!channel>", reply_to="D1:1700000000.000100", kind="notice"))
        await outbox.deliver(Reply(user=user, text="Good morning", reply_to=""))
        posts = api.calls_to("chat.postMessage")
        assert [p["markdown_text"] for p in posts] == ["Slow down @channel", "Good morning"]
        assert (posts[1]["channel"], posts[1].get("thread_ts")) == ("U1", None)


async def test_forget_preview_full_of_ampersands_stays_inside_block_kit(slack: SlackEnv) -> None:
    """Escaping (& -> &amp;) cannot push the confirmation past Slack's 3,000-char section
    limit: the question is accepted by Slack, not silently refused."""
    import time
    import uuid

    from bot.protocols import MemoryItem

    items = [MemoryItem(id=uuid.uuid4().hex, user="slack:T1:U1", text=f"cat{i}&" * 40 + " cat",
                        ts=time.time(), kind="passage") for i in range(10)]
    await slack.svc.memory.write("archival", items)
    assert await slack.post_form(command_body("forget cat", "U1", slack.api.response_url())) == 200
    await slack.api.wait(lambda: len(slack.api.responses) + len(slack.api.errors) >= 1)
    assert slack.api.errors == []
    section = slack.api.responses[0]["blocks"][0]["text"]["text"]
    assert len(section) <= 3_000 and "&amp;" in section and not section.endswith("&am")
