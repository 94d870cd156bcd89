"""Models without tool calling: plain-text replies, and core memory edited at heartbeats by
one constrained-JSON call validated like tool calls (memory must not silently stop)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.testing.fake_openai import FakeOpenAI, error, text
from tests.conftest import Harness, make_settings, start_service


@pytest.fixture
async def plain(tmp_path: Path, fake_llm: FakeOpenAI, embedder: Any) -> AsyncIterator[Harness]:
    settings = make_settings(tmp_path, fake_llm.base_url, llm_tools="off")
    svc, outbox = await start_service(settings, embedder)
    yield Harness(svc, outbox, fake_llm)
    await svc.stop()


def _edits(*edits: dict[str, str]) -> str:
    return json.dumps({"edits": list(edits)})


async def test_tools_off_replies_in_plain_text(plain: Harness) -> None:
    """LLM_TOOLS=off: no tools in the request, a plain-text instruction, the answer delivered."""
    plain.fake.push(text("Hello Tess, nice to meet you."))
    ev = await plain.say("Hi, I'm Tess")
    assert plain.outbox.texts(ev.event_id) == ["Hello Tess, nice to meet you."]
    req = plain.fake.requests[0]
    assert "tools" not in req and "tool_choice" not in req
    assert "send_message" not in req["messages"][0]["content"]


async def test_heartbeat_edits_core_memory_through_json(plain: Harness) -> None:
    """At a heartbeat one json_schema call proposes edits; valid ones are applied, an
    invalid one is refused like a failed tool call, and what happened is noted."""
    plain.fake.push(text("Nice!"))
    await plain.say("I'm Tess and I love green tea")
    plain.fake.push(text(_edits(
        {"action": "append", "label": "human", "content": "Name: Tess. Loves green tea.",
         "old_content": ""},
        {"action": "replace", "label": "human", "content": "x", "old_content": "coffee"},
    )))
    await plain.say("Time to reflect.", kind="heartbeat")
    req = plain.fake.requests[-1]
    assert req["response_format"]["type"] == "json_schema" and "tools" not in req
    state = await plain.state()
    assert state.human.value == "Name: Tess. Loves green tea."
    note = state.fifo[-1].content
    assert "Memory review" in note and "'coffee' is not in the human block" in note


async def test_an_unusable_json_answer_changes_nothing(plain: Harness) -> None:
    """A heartbeat answer that is not the JSON asked for changes no memory and stores nothing."""
    plain.fake.push(text("I think the person likes tea."))
    await plain.say("Time to reflect.", kind="heartbeat")
    state = await plain.state()
    assert state.human.value == "" and [m.kind for m in state.fifo] == ["heartbeat"]


async def test_a_server_without_tools_switches_to_plain_text(harness: Harness) -> None:
    """A server that says it cannot do tools gets the same call without tools, and no tools
    from then on (Ollama answers 400 'does not support tools' for such models)."""
    harness.fake.push(error(400, "registry.ollama.ai/library/gemma:2b does not support tools",
                            type="invalid_request_error"),
                      text("Hi there!"), text("Still here."))
    ev = await harness.say("hello")
    assert harness.outbox.texts(ev.event_id) == ["Hi there!"]
    ev2 = await harness.say("hello again")
    assert harness.outbox.texts(ev2.event_id) == ["Still here."]
    assert "tools" in harness.fake.requests[0]
    assert all("tools" not in r for r in harness.fake.requests[1:])
