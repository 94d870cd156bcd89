"""Identity links need proof (What was seen 2): a one-time code from one account confirmed
by the other, one direction on both platforms, refused over existing memory, durable
across a Redis flush, listed, undone by unlink and by reset."""

from __future__ import annotations

import re

from adapters.discord_commands import MemoryCog
from bot.testing.fake_openai import tool_call
from bot.testing.slack_payloads import command_body, dm, event_body
from tests.adapters.conftest import SlackEnv
from tests.adapters.discord_fakes import FakeInteraction, FakeUser

DISCORD = "discord:-:1"


async def _slack(slack: SlackEnv, user: str, text: str) -> str:
    n = len(slack.api.responses)
    assert await slack.post_form(command_body(text, user, slack.api.response_url(f"r{n}"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) > n)
    return str(slack.api.responses[-1]["text"])


async def _discord_code(slack: SlackEnv) -> str:
    cog = MemoryCog(slack.svc, frozenset())
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.link.callback(cog, inter)  # type: ignore[arg-type]
    assert inter.all_ephemeral()
    found = re.search(r"code: ([A-Z0-9]{8})", inter.texts()[0])
    assert found is not None
    return found.group(1)


async def test_an_operator_cannot_link_into_someone_elses_memory(slack: SlackEnv) -> None:
    """The old `/memory link @me discord:-:1` and a made-up code both fail; nothing links."""
    assert "Links need proof" in await _slack(slack, "UOPS", "link <@UOPS> discord:-:1")
    assert "unknown or expired" in await _slack(slack, "UOPS", "link discord:-:1")
    assert await slack.svc.admin.resolve("slack:T1:UOPS") == "slack:T1:UOPS"


async def test_code_from_discord_confirmed_on_slack(slack: SlackEnv) -> None:
    """Discord asks, Slack confirms: the Slack identity shares the Discord memory, the link
    is listed, survives a Redis flush, the code works once, and unlink undoes it."""
    code = await _discord_code(slack)
    assert f"shares the memory of {DISCORD}" in await _slack(slack, "U5", f"link {code}")
    assert await slack.svc.admin.resolve("slack:T1:U5") == DISCORD
    assert "slack:T1:U5" in await _slack(slack, "U5", "show")  # listed in /memory show
    await slack.svc.redis.delete_prefix()  # a Redis flush
    assert await slack.svc.admin.resolve("slack:T1:U5") == DISCORD
    assert "unknown or expired" in await _slack(slack, "U6", f"link {code}")
    assert "Unlinked: slack:T1:U5" in await _slack(slack, "U5", "unlink")
    assert await slack.svc.admin.resolve("slack:T1:U5") == "slack:T1:U5"


async def test_identity_with_memory_is_refused(slack: SlackEnv) -> None:
    """Linking an identity that has memory of its own is refused; nothing is orphaned."""
    slack.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    assert await slack.post(event_body(dm("hello, I have memory"))) == 200
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) == 1)
    code = await _discord_code(slack)
    assert "has memory of its own" in await _slack(slack, "U1", f"link {code}")
    assert await slack.svc.admin.resolve("slack:T1:U1") == "slack:T1:U1"
    assert (await slack.svc.admin.show("slack:T1:U1"))["fifo_messages"] > 0


async def test_reset_removes_links_both_ways(slack: SlackEnv) -> None:
    """Resetting the shared memory unlinks every identity that used it."""
    code = await _discord_code(slack)
    await _slack(slack, "U5", f"link {code}")
    receipt = await slack.svc.admin.reset(DISCORD)
    assert receipt["links"] == 1
    assert await slack.svc.admin.resolve("slack:T1:U5") == "slack:T1:U5"
    assert await slack.svc.links.linked(DISCORD) == []
