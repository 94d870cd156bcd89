"""/memory pause and resume through Slack's real command path: while paused the bot
answers, says it is not remembering, and stores nothing beyond the FIFO; resume drops
what was said meanwhile, so no later step or heartbeat can save it."""

from __future__ import annotations

import json

from bot.testing.fake_openai import tool_call
from bot.testing.slack_payloads import command_body, dm, event_body
from tests.adapters.conftest import SlackEnv

KEY = "slack:T1:U1"


async def _command(slack: SlackEnv, text: str) -> str:
    n = len(slack.api.responses)
    assert await slack.post_form(command_body(text, "U1", slack.api.response_url(text))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) > n)
    return str(slack.api.responses[-1]["text"])


async def test_pause_stores_nothing_and_resume_forgets_the_pause(slack: SlackEnv) -> None:
    """Paused: a reply plus a 'memory is paused' notice; core, archival and recall stay
    empty of it. Resumed: the paused exchange is gone from the FIFO too."""
    assert "Memory paused" in await _command(slack, "pause")
    slack.fake.push(tool_call("core_memory_append", label="human", content="Allergic to kiwi",
                              request_heartbeat=True),
                    tool_call("archival_memory_insert", content="kiwi allergy", request_heartbeat=True),
                    tool_call("send_message", message="Got it", request_heartbeat=False))
    assert await slack.post(event_body(dm("I am allergic to kiwi"))) == 200
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) == 2)
    texts = [str(p["markdown_text"]) for p in slack.api.calls_to("chat.postMessage")]
    assert "Got it" in texts and any("Memory is paused" in t for t in texts)
    await slack.svc.writer.flush()
    state = await slack.svc.states.load(KEY)
    assert "kiwi" not in state.human.value and state.memory_paused
    assert await slack.svc.memory.counts(KEY) == (0, 0)
    tool_results = [m.content for m in state.fifo if m.role == "tool"]
    assert all("Not saved" in t for t in tool_results[:2])
    assert "Memory resumed" in await _command(slack, "resume")
    state = await slack.svc.states.load(KEY)
    assert not state.memory_paused and "kiwi" not in json.dumps(state.to_dict())
    assert [e.action for e in await slack.svc.audit_log.entries(KEY)] == ["pause", "resume"]
