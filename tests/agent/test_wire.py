"""What strict servers need: one normalisation point for outgoing messages, empty answers
never stored, one nudge then a notice, and rejected requests not retried as outages."""

from __future__ import annotations

from bot.agent.wire import normalize
from bot.testing.fake_openai import Turn, call, error, text, tool_call, tool_calls
from tests.conftest import Harness

NULL_CALL = {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "f", "arguments": {"a": 1}}}]}


def test_normalize_never_sends_content_null() -> None:
    """content null becomes "" next to tool calls; a blank assistant turn is dropped; only
    the API's own keys are sent; dict arguments become JSON text."""
    out = normalize([
        {"role": "system", "content": "s", "kind": "internal"},
        {"role": "user", "content": None},
        NULL_CALL,
        {"role": "tool", "tool_call_id": "c1", "content": None, "name": "f"},
        {"role": "assistant", "content": None},
        {"role": "assistant", "content": "  "},
    ])
    assert out == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "f", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ""},
    ]


def _empty() -> Turn:
    return Turn(message={"role": "assistant", "content": None})


async def test_empty_answer_is_never_stored_and_does_not_poison(harness: Harness) -> None:
    """Seen: an empty answer (content null, no tool call) was stored and every later request
    of that user failed. Now: one nudge, then a visible notice; nothing blank is stored and
    the next message is answered normally."""
    harness.fake.push(_empty(), _empty())
    ev = await harness.say("hello?")
    assert harness.outbox.texts(ev.event_id, kind="notice") == [
        "Sorry, I couldn't come up with an answer to that. Could you say it another way?"]
    nudge = harness.fake.requests[1]["messages"][-1]["content"]
    assert "send_message" in nudge and nudge.startswith("[alert]")
    state = await harness.state()
    assert [m.kind for m in state.fifo] == ["user_message"]
    harness.fake.push(tool_call("send_message", message="I'm here", request_heartbeat=False))
    ev2 = await harness.say("hello again")
    assert harness.outbox.texts(ev2.event_id) == ["I'm here"]
    assert all(m.get("content") is not None for m in harness.fake.requests[-1]["messages"])


async def test_one_nudge_recovers_an_empty_answer(harness: Harness) -> None:
    """After one empty answer the nudge gets a real reply; the nudge itself is not stored."""
    harness.fake.push(text(""), tool_call("send_message", message="sorry, hi!", request_heartbeat=False))
    ev = await harness.say("hi")
    assert harness.outbox.texts(ev.event_id) == ["sorry, hi!"]
    assert harness.outbox.texts(ev.event_id, kind="notice") == []
    state = await harness.state()
    assert [m.kind for m in state.fifo] == ["user_message", "assistant", "tool_result"]
    assert not any("answer was empty" in m.content for m in state.fifo)


async def test_an_echoed_header_counts_as_empty(harness: Harness) -> None:
    """A weak model that only echoes our event header said nothing: it is nudged, and the
    header is never delivered to the user."""
    harness.fake.push(text("[user alice, DM, 2026-12-01 08:00]"), text("Hi Alice!"))
    ev = await harness.say("hi")
    assert harness.outbox.texts(ev.event_id) == ["Hi Alice!"]


async def test_empty_heartbeat_answer_leaves_memory_clean(harness: Harness) -> None:
    """A timed heartbeat answered with nothing stores no blank turn and sends no notice."""
    harness.fake.push(_empty(), _empty())
    ev = await harness.say("Time to reflect.", kind="heartbeat")
    assert harness.outbox.replies == [] or all(r.event_id != ev.event_id or r.kind == "trace"
                                               for r in harness.outbox.replies)
    state = await harness.state()
    assert [m.kind for m in state.fifo] == ["heartbeat"]


async def test_tool_chain_completes_with_content_null_from_the_model(harness: Harness) -> None:
    """Seen: an assistant message with tool calls went out with content None (HTTP 500 on a
    strict server), so no chain could complete. Now the chain runs to the next step with
    content "" and the memory edit is kept."""
    harness.fake.push(
        tool_calls([call("core_memory_append", label="human", content="Likes tea",
                         request_heartbeat=True)], content=None),
        tool_call("send_message", message="Noted: tea.", request_heartbeat=False),
    )
    ev = await harness.say("I like tea")
    assert harness.outbox.texts(ev.event_id) == ["Noted: tea."]
    asked = [m for m in harness.fake.requests[1]["messages"] if m.get("tool_calls")]
    assert asked and asked[0]["content"] == ""
    assert (await harness.state()).human.value == "Likes tea"


async def test_rejected_request_is_not_retried_and_says_so(harness: Harness) -> None:
    """A request the server refuses (here a 500 naming a validation error, as llama-cpp-python
    answers) is tried once, the user gets a notice naming the cause, memory is unchanged."""
    harness.fake.push(error(500, "2 validation errors for ChatCompletionRequestAssistantMessage"
                                 " content Input should be a valid string"))
    ev = await harness.say("hi")
    assert len(harness.fake.requests) == 1
    notice = harness.outbox.texts(ev.event_id, kind="notice")
    assert len(notice) == 1 and "refused my request" in notice[0]
    # the person's message is kept (for /retry), followed by what they were told
    assert [m.kind for m in (await harness.state()).fifo] == ["user_message", "system_alert"]


async def test_every_step_call_sends_the_reply_reserve(harness: Harness) -> None:
    """Each step's call carries max_tokens = LLM_REPLY_RESERVE (the model cannot run on)."""
    harness.fake.push(tool_call("archival_memory_search", query="x", request_heartbeat=True),
                      text("done"))
    await harness.say("hi")
    reserve = harness.svc.settings.llm_reply_reserve
    assert [r["max_tokens"] for r in harness.fake.requests] == [reserve, reserve]


async def test_tool_string_arguments_are_bounded_in_the_schema(harness: Harness) -> None:
    """Every string parameter of the tools sent carries maxLength = TOOL_ARG_MAX_CHARS, so a
    grammar-constrained server cannot generate an endless argument (seen: a heartbeat ran
    7,681 tokens for 473 s; llama-cpp-python ignores max_tokens for tool arguments)."""
    harness.fake.push(text("hi"))
    await harness.say("hi")
    limit = harness.svc.settings.tool_arg_max_chars
    strings = [spec for t in harness.fake.requests[0]["tools"]
               for spec in t["function"]["parameters"]["properties"].values()
               if spec.get("type") == "string"]
    assert strings and all(s["maxLength"] == limit for s in strings)
