"""The one agent loop: an event in, a bounded chain of LLM calls and tool calls, replies out.

``Agent.step`` mutates the given ``AgentState`` and returns what to commit. It never
touches Redis itself; the inbox commits the result atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.agent import prompts, tools
from bot.agent.context import ContextManager
from bot.agent.toolcontext import ToolContext
from bot.config import Settings
from bot.errors import ContextOverflow, LLMTimeout, LLMUnavailable, ModelBehaviorError
from bot.events import Event, Reply, ReplyKind
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory
from bot.messages import Message, stamp
from bot.protocols import LLM, Completion

log = logging.getLogger(__name__)

NOTICE_TIMEOUT = "Sorry, I couldn't think that through in time. Please try again in a moment."
NOTICE_DOWN = "Sorry, my language model is unavailable right now. Please try again later."


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
    failed: str = ""  # "timeout" | "unavailable" when the step was abandoned


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
    return Message(role="user", content=text, kind=event.kind, ts=event.ts)


def _ago(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} seconds"


class Agent:
    """Runs steps for any user; holds no per-user state itself."""

    def __init__(self, settings: Settings, llm: LLM, context: ContextManager,
                 memory: LongTermMemory) -> None:
        self.settings = settings
        self.llm = llm
        self.context = context
        self.memory = memory

    async def step(self, state: AgentState, event: Event) -> StepResult:
        before = state.to_dict()
        result = StepResult()
        try:
            await self._run(state, event, result)
        except (LLMTimeout, LLMUnavailable, ModelBehaviorError, ContextOverflow) as exc:
            log.warning("step abandoned: %s", type(exc).__name__)
            state.__dict__.update(AgentState.from_dict(before).__dict__)  # memory unchanged
            timeout = isinstance(exc, LLMTimeout)
            result = StepResult(failed="timeout" if timeout else "unavailable",
                                llm_calls=result.llm_calls)
            if event.kind == "user_message":
                self._reply(result, event, NOTICE_TIMEOUT if timeout else NOTICE_DOWN, "notice")
        return result

    def _reply(self, result: StepResult, event: Event, text: str, kind: ReplyKind) -> None:
        result.replies.append(Reply(user=event.user, text=text, reply_to=event.reply_to,
                                    event_id=event.event_id, kind=kind, seq=len(result.replies)))

    def _append(self, state: AgentState, result: StepResult, msg: Message) -> None:
        state.fifo.append(msg)
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
        self._login(state, event, result)
        msg = event_message(event)
        limit = self.settings.prompt_budget * 2  # ~half the budget at ~4 characters a token
        if len(msg.content) > limit:  # one huge message must not make every prompt overflow
            cut = len(msg.content) - limit
            msg.content = msg.content[:limit] + f"\n[message cut: {cut} more characters not shown]"
        self._append(state, result, msg)
        ctx = ToolContext(state=state, memory=self.memory, settings=self.settings,
                                event=event)
        cap = min(event.max_steps or self.settings.max_chain_steps, self.settings.max_chain_steps)
        for _turn in range(1, cap + 1):
            done = await self._think(state, result)
            msg = Message(role="assistant", content=done.content, kind="assistant",
                          tool_calls=done.tool_calls)
            self._append(state, result, msg)
            if not done.tool_calls:
                if done.content.strip():  # local models often answer in plain text
                    self._deliver(ctx, result, event, done.content.strip())
                return
            if event.trace and done.content.strip():
                self._reply(result, event, done.content.strip(), "trace")
            if not await self._run_tools(ctx, done, result, event):
                return
        self._append(state, result, self.context.alert(prompts.CHAIN_CAP.format(n=cap)))

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
        return again

    def _deliver(self, ctx: ToolContext, result: StepResult, event: Event, text: str) -> None:
        if event.kind == "heartbeat" and not self.settings.heartbeat_proactive:
            return  # heartbeat output stays private unless the deployment allows it
        self._reply(result, event, text, "message")

    async def _think(self, state: AgentState, result: StepResult) -> Completion:
        """One LLM call inside the budget: warn, flush, and on overflow flush and retry once."""
        messages, raw = await self._fit(state, result)
        for attempt in (1, 2):
            if attempt == 2:
                messages = self.context.assemble(state)
                raw = self.context.raw_measure(messages)
            try:
                done = await self.llm.complete(messages, self.context.tool_schemas)
            except ContextOverflow:
                if attempt == 2:
                    raise
                result.evicted += len(await self.context.flush(state))
                continue
            result.llm_calls += 1
            if done.usage:
                result.completion_tokens += done.usage.completion_tokens
            if done.usage and done.usage.prompt_tokens:
                result.prompt_tokens += done.usage.prompt_tokens
                self.context.tokens.calibrate(raw, done.usage.prompt_tokens)
            return done
        raise AssertionError("unreachable")

    async def _fit(self, state: AgentState,
                   result: StepResult) -> tuple[list[dict[str, Any]], int]:
        """Keep the prompt inside the budget; returns it with its raw token count."""
        messages = self.context.assemble(state)
        p = self.context.pressure_of(messages)
        if p.over_budget:
            result.evicted += len(await self.context.flush(state))
        elif p.warn and not state.warned:
            state.warned = True
            self._append(state, result, self.context.alert(prompts.MEMORY_PRESSURE))
        else:
            return messages, p.raw
        messages = self.context.assemble(state)
        return messages, self.context.raw_measure(messages)
