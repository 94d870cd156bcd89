"""Main context: assembly of the prompt, token pressure, and eviction with a recursive summary.

Order of the prompt, stable part first so that consecutive requests of one user share the
longest prefix (servers reuse their prompt cache for it): system instructions + core memory
(one system message), the recursive summary (when there is one), the FIFO messages, and
last the memory metadata line (counts, last edit, current time), which changes every turn.

Budget: ``fit`` flushes until the prompt fits; what still does not fit (one huge message)
is cut with a visible note; a prompt that cannot fit at all is never sent.

A prompt is assembled for a view (bot.memory.visibility): a DM sees all of it; a channel
in server S sees the core-memory lines, the summary and the FIFO messages that came from
S only (each server has its own summary of what left the FIFO there).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.agent import prompts, wire
from bot.agent.summary import check_summary, unsummarized_note
from bot.agent.tokens import TokenCounter
from bot.config import Settings
from bot.errors import ContextOverflow
from bot.memory import visibility
from bot.memory.core import AgentState
from bot.memory.visibility import DM
from bot.messages import Message, stamp
from bot.protocols import LLM

log = logging.getLogger(__name__)
MIN_CUT_CHARS = 200  # messages shorter than this are never cut

@dataclass(frozen=True)
class Pressure:
    tokens: int
    budget: int
    warn_at: int
    raw: int = 0  # before calibration to the server's counts

    @property
    def over_budget(self) -> bool:
        return self.tokens >= self.budget

    @property
    def warn(self) -> bool:
        return self.tokens >= self.warn_at


def _meta(state: AgentState, now: float) -> str:
    edited = stamp(state.last_edit) if state.last_edit else "never"
    return (f"[memory: {state.n_recall} messages in recall, {state.n_archival} archival notes; "
            f"core edited {edited} UTC; now {stamp(now)} UTC]")


def evict_cut(fifo: list[Message], fraction: float, keep_last: int = 1) -> int:
    """Index splitting the FIFO: [:cut] is evicted. Never separates a tool call from its
    results (the first kept message is never a tool result)."""
    if len(fifo) <= keep_last:
        return 0
    cut = max(1, min(int(len(fifo) * fraction + 0.5), len(fifo) - keep_last))
    while cut < len(fifo) - keep_last and fifo[cut].role == "tool":
        cut += 1
    while cut > 0 and fifo[cut].role == "tool":
        cut -= 1
    return cut


class ContextManager:
    """Builds prompts for one state and keeps them inside the token budget."""

    def __init__(self, settings: Settings, tokens: TokenCounter, llm: LLM,
                 tool_schemas: list[dict[str, Any]]) -> None:
        self.settings = settings
        self.tokens = tokens
        self.llm = llm
        # local servers constrain tool arguments with a grammar built from the schema and
        # ignore max_tokens there: bound every string (OpenAI itself needs no such bound)
        self._all_tools = (wire.bound_strings(tool_schemas, settings.tool_arg_max_chars)
                           if settings.llm_base_url else tool_schemas)
        self.tools_on = settings.llm_tools == "on"
        self.tool_schemas = self._all_tools if self.tools_on else []
        self._tools_tokens = tokens.count_tools(self.tool_schemas)
        self._cache: dict[int, int] = {}  # hash of a message -> its tokens

    def _count(self, messages: list[dict[str, Any]]) -> int:
        """Token count with a per-message cache: a step re-counts only new messages."""
        total = 3  # reply priming
        for m in messages:
            content = m.get("content")
            key = hash((m["role"], content if isinstance(content, str) else None,
                        str(m["tool_calls"]) if m.get("tool_calls") else ""))
            n = self._cache.get(key)
            if n is None:
                n = self.tokens.count_messages([m]) - 3
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[key] = n
            total += n
        return total

    def system_message(self, state: AgentState, view: str = DM) -> dict[str, Any]:
        core = prompts.render_core(state.persona.view(view), state.human.view(view))
        system = prompts.SYSTEM if self.tools_on else prompts.SYSTEM_PLAIN
        return {"role": "system", "content": f"{system}\n\n{core}"}

    def disable_tools(self, reason: str) -> None:
        """Plain-text replies from now on (the server cannot do tool calling)."""
        if self.tools_on:
            log.warning("tool calling is off from now on: %s. Set LLM_TOOLS=off to skip this "
                        "detection, or use a server/model with tool calling.", reason[:200])
        self.tools_on = False
        self.tool_schemas = []
        self._tools_tokens = 0

    def assemble(self, state: AgentState, now: float | None = None,
                 extra: list[dict[str, Any]] | None = None, view: str = DM) -> list[dict[str, Any]]:
        """The prompt for ``view``: stable prefix first, the per-turn metadata (and
        ``extra``) last."""
        out = [self.system_message(state, view)]
        summary = state.summary if view == DM else state.summaries.get(view, "")
        if summary:
            out.append({"role": "user", "content": f"[summary of earlier conversation] {summary}"})
        out.extend(m.to_openai() for m in state.fifo if visibility.visible(m.vis, view))
        out.append({"role": "user", "content": _meta(state, now or time.time())})
        out.extend(extra or [])
        return out

    def raw_measure(self, messages: list[dict[str, Any]]) -> int:
        return self._count(messages) + self._tools_tokens

    def pressure(self, state: AgentState, view: str = DM) -> Pressure:
        return self.pressure_of(self.assemble(state, view=view))

    def pressure_of(self, messages: list[dict[str, Any]]) -> Pressure:
        budget = self.settings.prompt_budget
        raw = self.raw_measure(messages)
        return Pressure(self.tokens.scaled(raw), budget,
                        int(budget * self.settings.memory_warning_fraction), raw)

    # --- budget ------------------------------------------------------------------------------
    async def fit(self, state: AgentState, extra: list[dict[str, Any]] | None = None,
                  view: str = DM) -> tuple[list[dict[str, Any]], Pressure, int]:
        """The prompt inside the budget: flush until it fits, then cut the longest FIFO
        messages with a visible note. Returns (messages, pressure, messages evicted).
        Raises ContextOverflow (naming the settings) when even that cannot make it fit."""
        evicted = 0
        messages = self.assemble(state, extra=extra, view=view)
        p = self.pressure_of(messages)
        while p.over_budget:
            gone = await self.flush(state)
            if not gone:
                break
            evicted += len(gone)
            messages = self.assemble(state, extra=extra, view=view)
            p = self.pressure_of(messages)
        while p.over_budget and self._cut_longest(state, p, view):
            messages = self.assemble(state, extra=extra, view=view)
            p = self.pressure_of(messages)
        if p.over_budget:
            raise ContextOverflow(
                f"the prompt needs ~{p.tokens} tokens even with the conversation compacted, over "
                f"the budget of {p.budget} (LLM_CONTEXT_WINDOW - LLM_REPLY_RESERVE): raise "
                "LLM_CONTEXT_WINDOW (and the server's window) or shorten core memory")
        return messages, p, evicted

    def _cut_longest(self, state: AgentState, p: Pressure, view: str = DM) -> bool:
        """Halve the longest FIFO message ``view`` shows (a copy: recall keeps the full
        text). False when nothing is long enough to cut."""
        shown = [k for k, m in enumerate(state.fifo) if visibility.visible(m.vis, view)]
        if not shown:
            return False
        i = max(shown, key=lambda k: len(state.fifo[k].content))
        m = state.fifo[i]
        if len(m.content) < MIN_CUT_CHARS:
            return False
        over_chars = int((p.tokens - p.budget) * 4 / max(self.tokens.ratio, 0.5)) + 100
        keep = max(MIN_CUT_CHARS // 2, min(len(m.content) // 2, len(m.content) - over_chars))
        cut = len(m.content) - keep
        note = f"\n[cut to fit the context window: {cut} more characters not shown; the full text is in recall]"
        state.fifo[i] = dataclasses.replace(m, content=m.content[:keep] + note)
        log.warning("prompt over budget after flushing: cut a %s message by %d characters",
                    m.kind, cut)
        return True

    def cap_window(self, window: int, source: str) -> bool:
        """Use at most ``window`` tokens (the server's own window). True when it lowered
        LLM_CONTEXT_WINDOW; the reply reserve shrinks to a quarter of a small window."""
        s = self.settings
        if window <= 0 or window >= s.llm_context_window:
            return False
        log.warning("the server's window is %d tokens (%s), below LLM_CONTEXT_WINDOW=%d: using "
                    "%d. Set LLM_CONTEXT_WINDOW=%d or give the server a larger window.",
                    window, source, s.llm_context_window, window, window)
        s.llm_context_window = window
        s.llm_reply_reserve = min(s.llm_reply_reserve, max(64, window // 4))
        return True

    async def summarize(self, previous: str, evicted: list[Message]) -> str:
        """New recursive summary = LLM(previous summary + evicted messages), guarded: a
        summary that is empty, too long or echoes our event headers is rejected and the
        previous one kept, with a note saying where the evicted messages are."""
        words = self.summary_words()
        lines = [f"[{stamp(m.ts)}] {m.role}: {m.search_text()}" for m in evicted]
        budget_chars = self.settings.prompt_budget * 3
        body = "\n".join(lines)
        if len(body) > budget_chars:  # keep the newest part when the eviction is huge
            body = body[-budget_chars:]
        user = f"Previous summary:\n{previous or '(none)'}\n\nMessages:\n{body}"
        done = await self.llm.complete(
            [{"role": "system", "content": prompts.SUMMARIZE.format(words=words)},
             {"role": "user", "content": user}],
            max_tokens=min(1024, words * 2),
        )
        problem = check_summary(done.content, words)
        if problem is None:
            return done.content.strip()
        log.warning("summary rejected (%s); keeping the previous one", problem)
        return unsummarized_note(previous, evicted)

    def summary_words(self) -> int:
        return max(60, min(400, self.settings.prompt_budget // 20))

    async def flush(self, state: AgentState, fraction: float | None = None) -> list[Message]:
        """Evict the oldest part of the FIFO into a new summary. Returns what was evicted
        (already in recall storage: every message is written there when committed)."""
        cut = evict_cut(state.fifo, fraction or self.settings.memory_evict_fraction)
        if cut == 0:
            return []
        evicted = state.fifo[:cut]
        kept = [m for m in evicted if m.keep]  # said while memory was paused: not summarized
        if kept:
            state.summary = await self.summarize(state.summary, kept)
        for view in sorted({m.vis for m in kept} - {"", DM, visibility.PUBLIC}):
            said = [m for m in kept if m.vis == view]  # a server's summary: only its messages
            state.summaries[view] = await self.summarize(state.summaries.get(view, ""), said)
        del state.fifo[:cut]
        state.warned = False
        return evicted

    def alert(self, text: str, now: float | None = None) -> Message:
        return Message(role="user", content=f"[alert] {text}", kind="system_alert",
                       ts=now or time.time())
