"""The one agent loop: an event in, a bounded chain of LLM calls and tool calls, replies out.

``Agent.step`` mutates the given ``AgentState`` and returns what to commit. It never
touches Redis itself; the inbox commits the result atomically.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from bot.agent import json_memory, prompts, tools
from bot.agent.context import ContextManager
from bot.agent.toolcontext import ToolContext
from bot.config import Settings
from bot.errors import ContextOverflow, LLMError, LLMRejected, LLMTimeout, ToolError
from bot.events import Event, Reply, ReplyKind
from bot.knowledge.base import KnowledgeBase
from bot.memory import visibility
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory
from bot.memory.visibility import DM
from bot.messages import Message, event_message_id, stamp
from bot.protocols import LLM, Completion

log = logging.getLogger(__name__)

NOTICE_PAUSED = ("(Memory is paused: I answer, but I keep nothing of this conversation. "
                 "`/memory resume` turns it back on.)")
NOTICE_TIMEOUT = "Sorry, I couldn't think that through in time. Please try again in a moment."
NOTICE_DOWN = "Sorry, my language model is unavailable right now. Please try again later."
NOTICE_REJECTED = ("Sorry, the language model server refused my request; the operator can see "
                   "why in the log (check LLM_MODEL and the server's settings).")
NOTICE_TOO_BIG = ("Sorry, my memory no longer fits the language model's context window; the "
                  "operator needs to raise LLM_CONTEXT_WINDOW (and the server's window).")
NOTICE_EMPTY = "Sorry, I couldn't come up with an answer to that. Could you say it another way?"
NOTICE_SILENT = "(Noted. I had nothing to add this time.)"
# an answer that only echoes our event header says nothing
_HEADER = re.compile(r"^\s*\[(user|heartbeat|alert|login|memory:)[^\]]*\]\s*", re.IGNORECASE)
NOTICE_FAILED = ("Sorry, something went wrong while I worked on your message and I had to give "
                 "up on it. Please send it again in a moment.")


@dataclass
class StepResult:
    replies: list[Reply] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list)  # go to recall storage
    core_changed: bool = False
    evicted: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tools: list[tuple[str, bool]] = field(default_factory=list)  # (tool name, ok) in order
    writes: list[dict[str, Any]] = field(default_factory=list)  # staged durable tool writes
    failed: str = ""  # "timeout" | "unavailable" | "rejected" | "overflow" when abandoned
    vis: str = DM  # the event's origin: the view of its prompts, the label of what it stores
    empty: int = 0  # model answers that said nothing (no text, no tool call)


def _where(event: Event) -> str:
    ch = event.channel
    if ch.where in ("channel", "thread"):
        return f"in #{ch.name or ch.id} (others can read)"
    return {"dm": "DM", "terminal": "DM"}.get(ch.where, ch.where)


def event_message(event: Event, gap_s: float | None = None) -> Message:
    """The FIFO line for an event, compact but with type, place and time."""
    when = stamp(event.ts)
    if event.kind == "user_message":
        name = f" {event.user.display_name}" if event.user.display_name else ""
        text = f"[user{name}, {_where(event)}, {when}] {event.text}"
    elif event.kind == "heartbeat":
        text = f"[heartbeat {when}] {event.text or 'Time to reflect and tidy memory.'}"
    elif event.kind == "login":
        text = f"[login {when}] {event.text}"
    else:
        text = f"[alert {when}] {event.text}"
    if event.kind == "user_message" and event.event_id:  # its recall id names the platform's message
        return Message(role="user", content=text, kind=event.kind, ts=event.ts,
                       event_id=event.event_id, id=event_message_id(event.event_id))
    return Message(role="user", content=text, kind=event.kind, ts=event.ts, event_id=event.event_id)


def _ago(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} seconds"


class Agent:
    """Runs steps for any user; holds no per-user state itself."""

    def __init__(self, settings: Settings, llm: LLM, context: ContextManager,
                 memory: LongTermMemory, knowledge: KnowledgeBase | None = None) -> None:
        self.settings = settings
        self.llm = llm
        self.context = context
        self.memory = memory
        self.knowledge = knowledge

    async def step(self, state: AgentState, event: Event) -> StepResult:
        before = state.to_dict()
        result = StepResult()
        try:
            await self._run(state, event, result)
        except LLMError as exc:
            failed, notice = _failure(exc)
            log.warning("step abandoned (%s): %s", type(exc).__name__, str(exc)[:300])
            state.__dict__.update(AgentState.from_dict(before).__dict__)  # memory unchanged
            abandoned = self.failed_step(state, event, failed, notice)
            abandoned.llm_calls = result.llm_calls
            return abandoned
        return result

    def failed_step(self, state: AgentState, event: Event, reason: str,
                    notice: str = "") -> StepResult:
        """The result of a step given up on: the person's message stays in the FIFO and
        recall (so /retry can re-run it), followed by a line saying what they were told."""
        notice = notice or {"timeout": NOTICE_TIMEOUT, "unavailable": NOTICE_DOWN}.get(reason, NOTICE_FAILED)
        result = StepResult(failed=reason)
        if event.kind != "user_message":
            return result  # heartbeats and alerts leave no trace when they fail
        self._append(state, result, event_message(event))
        self._append(state, result, Message(
            role="user", kind="system_alert", ts=time.time(),
            content=f"[alert {stamp(time.time())}] Answering the message above failed ({reason}); "
                    f"the person was told: {notice}"))
        self._reply(result, event, notice, "notice")
        return result

    def _reply(self, result: StepResult, event: Event, text: str, kind: ReplyKind) -> None:
        # a heartbeat answers no one: whatever it says goes to the person's DM, never to
        # the channel they last wrote in (docs/privacy.md)
        target = "" if event.kind == "heartbeat" else event.reply_to
        result.replies.append(Reply(user=event.user, text=text, reply_to=target,
                                    event_id=event.event_id, kind=kind, seq=len(result.replies)))

    def _append(self, state: AgentState, result: StepResult, msg: Message) -> None:
        msg.vis = msg.vis or result.vis
        state.fifo.append(msg)
        if state.memory_paused:  # /memory pause: the FIFO only, never recall
            msg.keep = False
        else:
            result.new_messages.append(msg)

    def _login(self, state: AgentState, event: Event, result: StepResult) -> None:
        gap = event.ts - state.last_seen if state.last_seen else 0.0
        if event.kind == "user_message":
            if state.last_seen and gap >= self.settings.login_gap_s:
                text = (f"The person is back after {_ago(gap)} away "
                        f"(last message {stamp(state.last_seen)} UTC).")
                self._append(state, result, Message(role="user", kind="login", ts=event.ts,
                                                    content=f"[login {stamp(event.ts)}] {text}"))
            state.last_seen = event.ts

    async def _run(self, state: AgentState, event: Event, result: StepResult) -> None:
        result.vis = visibility.of_event(event)
        if state.memory_paused and event.kind == "user_message":
            self._reply(result, event, NOTICE_PAUSED, "notice")
        self._login(state, event, result)
        msg = event_message(event)
        limit = self.settings.prompt_budget * 2  # ~half the budget at ~4 characters a token
        if len(msg.content) > limit:  # one huge message must not make every prompt overflow
            cut = len(msg.content) - limit
            msg.content = msg.content[:limit] + f"\n[message cut: {cut} more characters not shown]"
        self._append(state, result, msg)
        ctx = ToolContext(state=state, memory=self.memory, settings=self.settings,
                          event=event, knowledge=self.knowledge, vis=result.vis)
        cap = min(event.max_steps or self.settings.max_chain_steps, self.settings.max_chain_steps)
        if event.kind == "heartbeat" and not self.context.tools_on:
            await self._review_memory(ctx, result)  # no tools: one JSON call edits memory
        elif await self._chain(state, event, result, ctx, cap):
            self._append(state, result, self.context.alert(prompts.CHAIN_CAP.format(n=cap)))
        if event.kind == "user_message" and not any(
                r.kind in ("message", "notice") for r in result.replies):
            # never silence for a person waiting: an empty model, or one that only used tools
            log.warning("no answer for a user message (%d empty model answers)", result.empty)
            self._reply(result, event, NOTICE_EMPTY if result.empty else NOTICE_SILENT, "notice")

    async def _chain(self, state: AgentState, event: Event, result: StepResult,
                     ctx: ToolContext, cap: int) -> bool:
        """Up to ``cap`` LLM calls; True when the model still wanted another step."""
        nudged = False
        nudge = prompts.NUDGE if self.context.tools_on else prompts.NUDGE_PLAIN
        # the chain stops while one more LLM call still fits in the step's time bound
        deadline = time.monotonic() + self.settings.step_timeout_s - self.settings.llm_timeout_s
        for turn in range(1, cap + 1):
            if turn > 1 and time.monotonic() > deadline:
                self._append(state, result, self.context.alert(prompts.CHAIN_DEADLINE))
                return False
            done = await self._think(state, result, extra=nudge if nudged else "")
            said = _HEADER.sub("", done.content).strip()
            if not done.tool_calls and not said:  # nothing usable: never stored
                result.empty += 1
                if nudged:
                    return False
                nudged = True  # once: a short line asking for send_message
                continue
            nudged = False
            msg = Message(role="assistant", content=said, kind="assistant",
                          tool_calls=done.tool_calls)
            self._append(state, result, msg)
            if not done.tool_calls:  # local models often answer in plain text
                self._deliver(ctx, result, event, said)
                return False
            if event.trace and said:
                self._reply(result, event, said, "trace")
            if not await self._run_tools(ctx, done, result, event):
                return False
        return not nudged

    async def _review_memory(self, ctx: ToolContext, result: StepResult) -> None:
        """Tools off: one constrained-JSON call proposes core memory edits; each is validated
        and run as the tool call it stands for. What changed is noted in the FIFO."""
        done = await self._think(ctx.state, result, extra=json_memory.INSTRUCTION,
                                 response_format=json_memory.response_format(),
                                 max_tokens=min(512, self.settings.llm_reply_reserve))
        lines: list[str] = []
        try:
            calls = json_memory.edit_calls(done.content)
        except ToolError as exc:
            log.warning("memory review answer rejected: %s", exc)
            calls = []
        for call in calls:
            ctx.now = time.time()
            outcome = await tools.execute(call, ctx)
            result.tools.append((call.name, outcome.ok))
            lines.append(f"{call.name}({call.arguments}) -> {outcome.text}")
        result.core_changed = result.core_changed or ctx.core_changed
        if lines:
            self._append(ctx.state, result, self.context.alert(
                "Memory review at heartbeat: " + "; ".join(lines)))
            if ctx.event.trace:
                for line in lines:
                    self._reply(result, ctx.event, line, "trace")

    async def _run_tools(self, ctx: ToolContext, done: Completion, result: StepResult,
                         event: Event) -> bool:
        """Run the calls in order; True when another step is wanted."""
        again = False
        for call in done.tool_calls:
            ctx.replies.clear()
            ctx.now = time.time()
            outcome = await tools.execute(call, ctx)
            result.tools.append((call.name, outcome.ok))
            self._append(ctx.state, result, Message(
                role="tool", content=outcome.text, kind="tool_result", tool_call_id=call.id,
                name=call.name))
            for text in ctx.replies:
                self._deliver(ctx, result, event, text)
            if event.trace:
                self._reply(result, event, f"{call.name}({call.arguments}) -> {outcome.text}", "trace")
            again = again or outcome.heartbeat
        result.core_changed = result.core_changed or ctx.core_changed
        result.writes.extend(ctx.staged)  # committed with the step, dropped if it is abandoned
        ctx.staged.clear()
        return again

    def _deliver(self, ctx: ToolContext, result: StepResult, event: Event, text: str) -> None:
        if event.kind == "heartbeat" and not self.settings.heartbeat_proactive:
            if event.trace:  # a developer watching (terminal chat): shown as a dim trace
                self._reply(result, event, text, "trace")
            return  # heartbeat output stays private unless the deployment allows it
        self._reply(result, event, text, "message")

    async def _think(self, state: AgentState, result: StepResult, *, extra: str = "",
                     response_format: dict[str, Any] | None = None,
                     max_tokens: int | None = None) -> Completion:
        """One LLM call inside the budget: warn, flush, and on overflow (the server's window
        is smaller than we thought) learn the window, flush and retry once. A server that
        says it cannot do tools gets the plain-text mode and the call again."""
        lines = [{"role": "user", "content": extra}] if extra else None
        messages, raw = await self._fit(state, result, lines)
        for attempt in (1, 2):
            try:
                fmt = {"response_format": response_format} if response_format else {}
                done = await self.llm.complete(
                    messages, self.context.tool_schemas or None,
                    max_tokens=max_tokens or self.settings.llm_reply_reserve, **fmt)
            except ContextOverflow as exc:
                if attempt == 2:
                    raise
                if exc.window:
                    self.context.cap_window(exc.window, "named in the server's error")
                result.evicted += len(await self.context.flush(state))
                messages, raw = await self._fit(state, result, lines)
                continue
            except LLMRejected as exc:
                if attempt == 2 or not self.context.tools_on or not json_memory.says_no_tools(str(exc)):
                    raise
                self.context.disable_tools(str(exc))
                messages, raw = await self._fit(state, result, lines)
                continue
            result.llm_calls += 1
            if done.usage:
                result.completion_tokens += done.usage.completion_tokens
            if done.usage and done.usage.prompt_tokens:
                result.prompt_tokens += done.usage.prompt_tokens
                self.context.tokens.calibrate(raw, done.usage.prompt_tokens)
            return done
        raise AssertionError("unreachable")

    async def _fit(self, state: AgentState, result: StepResult,
                   extra: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], int]:
        """Keep the prompt inside the budget; returns it with its raw token count."""
        messages, p, evicted = await self.context.fit(state, extra, view=result.vis)
        result.evicted += evicted
        if evicted or not p.warn or state.warned:
            return messages, p.raw
        state.warned = True
        self._append(state, result, self.context.alert(prompts.MEMORY_PRESSURE))
        messages, p, evicted = await self.context.fit(state, extra, view=result.vis)
        result.evicted += evicted
        return messages, p.raw


def _failure(exc: LLMError) -> tuple[str, str]:
    """(StepResult.failed, the notice for the user) of an abandoned step."""
    if isinstance(exc, LLMTimeout):
        return "timeout", NOTICE_TIMEOUT
    if isinstance(exc, ContextOverflow):
        return "overflow", NOTICE_TOO_BIG
    if isinstance(exc, LLMRejected):
        return "rejected", NOTICE_REJECTED
    return "unavailable", NOTICE_DOWN
