"""/memory forget TEXT finds a fact in core memory, the summary, the FIFO, recall and
archival, and removes it from all of them (What was seen 5)."""

from __future__ import annotations

import json

import pytest

from bot.errors import AdminError
from bot.testing.fake_openai import tool_call
from tests.conftest import Harness

FACT = "my pin code is 4417"


async def _tell(h: Harness) -> None:
    h.fake.push(tool_call("core_memory_append", label="human", content="Pin code 4417",
                          request_heartbeat=True),
                tool_call("archival_memory_insert", content="Their pin code is 4417",
                          request_heartbeat=True),
                tool_call("send_message", message="I'll remember your pin code 4417",
                          request_heartbeat=False))
    await h.say(FACT)
    h.fake.push(tool_call("send_message", message="Nice weather", request_heartbeat=False))
    await h.say("the weather is nice")
    await h.svc.writer.flush()


async def test_forget_removes_the_fact_everywhere(harness: Harness) -> None:
    """The preview lists core, summary, recall and archival hits; applying removes every
    one, prints counts per store, and nothing of it is left to be found or saved again."""
    h = harness
    await _tell(h)
    state = await h.svc.states.load(h.key())
    state.summary = "She said her pin code is 4417. She likes the weather."
    await h.svc.states.save(state)
    _, plan = await h.svc.admin.forget_plan(h.key(), "pin code 4417")
    counts = plan.counts()
    assert counts["core_lines"] == 1 and counts["summary_sentences"] == 1
    assert counts["archival"] == 1 and counts["recall"] >= 2 and counts["fifo_messages"] >= 2
    receipt = await h.svc.admin.forget_text(h.key(), "pin code 4417", actor="test")
    assert receipt["archival"] == 1 and receipt["recall"] >= 2
    state = await h.svc.states.load(h.key())
    assert "4417" not in json.dumps(state.to_dict())
    assert state.summary == "She likes the weather."
    for kind in ("recall", "archival"):
        assert "4417" not in json.dumps([i.__dict__ for i in await h.svc.admin._all(kind, h.key())])
    h.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    await h.say("what do you know?")
    assert "4417" not in json.dumps(h.fake.requests[-1]["messages"])  # next prompt: gone
    [entry] = [e for e in await h.svc.audit_log.entries(h.key()) if e.action == "forget"]
    assert entry.details["archival"] == 1


async def test_forget_needs_words_and_changes_nothing_without_them(harness: Harness) -> None:
    """A query of only filler words is refused; a query matching nothing removes nothing."""
    with pytest.raises(AdminError, match="say what to forget"):
        await harness.svc.admin.forget_text(harness.key(), "the and of")
    receipt = await harness.svc.admin.forget_text(harness.key(), "zebra")
    assert not any(receipt.values())
