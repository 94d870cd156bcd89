"""The terminal chat: replies, dimmed traces and every slash command, driven by scripted input."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from adapters.terminal import TerminalChat
from bot.testing.fake_openai import call, echo, text, tool_call, tool_calls
from tests.conftest import Harness


def _chat(h: Harness, lines: list[str]) -> tuple[TerminalChat, io.StringIO]:
    out = io.StringIO()
    feed: Iterator[str] = iter(lines)

    def read(prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    return TerminalChat(h.svc, "tess", console=console, read=read), out


async def _state(h: Harness) -> Any:
    return await h.svc.states.load("terminal:local:tess")


async def test_chat_shows_reply_and_trace(harness: Harness) -> None:
    """A typed line reaches the agent; the reply and the dimmed tool trace are printed."""
    harness.fake.push(tool_calls([call("send_message", message="Hi Tess!", request_heartbeat=False)],
                                 content="She said hi."))
    chat, out = _chat(harness, ["hello", "/exit"])
    await chat.loop()
    printed = out.getvalue()
    assert "bot> Hi Tess!" in printed
    assert "· She said hi." in printed and "send_message(" in printed


async def test_memory_dump_and_help(harness: Harness) -> None:
    """/help lists commands, /memory prints core memory, /dump prints queue messages."""
    harness.fake.push(tool_call("core_memory_append", label="human", content="Name: Tess", request_heartbeat=False))
    chat, out = _chat(harness, ["I'm Tess", "/help", "/memory", "/dump 2", "/nope", "/exit"])
    await chat.loop()
    printed = out.getvalue()
    assert "/rethink TEXT" in printed and "Name: Tess" in printed
    assert '"role": "tool"' in printed and "unknown command /nope" in printed


async def test_pop_retry_rethink_rewrite(harness: Harness) -> None:
    """/pop removes messages, /retry asks again, /rethink and /rewrite edit the last answer."""
    harness.fake.default = echo
    chat, out = _chat(harness, ["first", "second", "/pop 1", "/retry",
                                "/rethink new thought", "/rewrite new words", "/exit"])
    await chat.loop()
    state = await _state(harness)
    said = [m.content for m in state.fifo if m.kind == "user_message"]
    assert said[-1].endswith("second") and len(said) == 2  # retried, not duplicated
    last_assistant = [m for m in state.fifo if m.role == "assistant"][-1]
    assert last_assistant.content == "new thought"
    assert '"new words"' in last_assistant.tool_calls[0].arguments
    assert "removed" in out.getvalue()


async def test_heartbeat_warning_summarize_reset(harness: Harness) -> None:
    """/heartbeat, /memorywarning and /summarize act on memory; /reset asks, then deletes."""
    harness.fake.default = echo
    chat, out = _chat(harness, ["one", "two", "/heartbeat", "/memorywarning", "/summarize",
                                "/reset", "n", "/exit"])
    await chat.loop()
    state = await _state(harness)
    kinds = [m.kind for m in state.fifo]
    assert state.summary.startswith("Summary:")
    assert "heartbeat" in kinds and "system_alert" in kinds
    assert "summarized" in out.getvalue()
    chat, out = _chat(harness, ["/reset", "y", "/exit"])
    harness.fake.push(text("unused"))
    await chat.loop()
    assert "memory reset" in out.getvalue()
    assert (await _state(harness)).fifo == []


async def test_logs_print_through_the_chat_as_one_line(harness: Harness) -> None:
    """Seen: log lines printed over the spinner and a 500 dumped seven validation errors
    into the conversation. While the chat runs, log records print through its console as
    one dim line each (the original stream gets nothing, and is restored afterwards)."""
    import logging

    from bot.testing.fake_openai import error
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        harness.fake.push(error(500, "7 validation errors:\n  {'loc': 1}\n  {'loc': 2}\n  {'loc': 3}"))
        chat, out = _chat(harness, ["hello", "/exit"])
        await chat.loop()
        printed = out.getvalue()
        logged = [line for line in printed.splitlines() if "log: " in line]
        assert any("step abandoned (LLMRejected)" in line for line in logged)
        assert "{'loc': 2}" not in printed
        assert "refused my request" in printed  # the notice, once
        assert stream.getvalue() == ""
        assert handler.stream is stream
    finally:
        logging.getLogger().removeHandler(handler)


async def test_heartbeat_output_is_shown_dimmed(harness: Harness) -> None:
    """Seen: /heartbeat showed nothing at all. Its output is shown as a dim trace, and a
    heartbeat with nothing to say says so."""
    harness.fake.push(tool_calls([call("send_message", message="Reflected on tea.",
                                       request_heartbeat=False)], content="Tidy memory."),
                      text(""), text(""))
    chat, out = _chat(harness, ["/heartbeat", "/heartbeat", "/exit"])
    await chat.loop()
    printed = out.getvalue()
    assert "· Tidy memory." in printed and "· send_message(" in printed
    assert "Reflected on tea." in printed
    assert "bot> Reflected" not in printed
    assert "(heartbeat: nothing to show)" in printed
