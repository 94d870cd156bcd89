"""Main context: assembly of the prompt, token pressure, and eviction with a recursive summary.

Order of the prompt: system instructions + core memory + memory metadata (one system
message), then the recursive summary (when there is one), then the FIFO messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot.agent import prompts
from bot.agent.tokens import TokenCounter
from bot.config import Settings
from bot.memory.core import AgentState
from bot.messages import Message, stamp
from bot.protocols import LLM


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
        self.tool_schemas = tool_schemas
        self._tools_tokens = tokens.count_tools(tool_schemas)
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

    def system_message(self, state: AgentState, now: float | None = None) -> dict[str, Any]:
        core = prompts.render_core(state.persona.value, state.human.value,
                                   _meta(state, now or time.time()))
        return {"role": "system", "content": f"{prompts.SYSTEM}\n\n{core}"}

    def assemble(self, state: AgentState, now: float | None = None) -> list[dict[str, Any]]:
        out = [self.system_message(state, now)]
        if state.summary:
            out.append({"role": "user", "content": f"[summary of earlier conversation] {state.summary}"})
        out.extend(m.to_openai() for m in state.fifo)
        return out

    def raw_measure(self, messages: list[dict[str, Any]]) -> int:
        return self._count(messages) + self._tools_tokens

    def pressure(self, state: AgentState) -> Pressure:
        return self.pressure_of(self.assemble(state))

    def pressure_of(self, messages: list[dict[str, Any]]) -> Pressure:
        budget = self.settings.prompt_budget
        raw = self.raw_measure(messages)
        return Pressure(self.tokens.scaled(raw), budget,
                        int(budget * self.settings.memory_warning_fraction), raw)

    async def summarize(self, previous: str, evicted: list[Message]) -> str:
        """New recursive summary = LLM(previous summary + evicted messages)."""
        words = max(60, min(400, self.settings.prompt_budget // 20))
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
        return done.content.strip() or previous

    async def flush(self, state: AgentState, fraction: float | None = None) -> list[Message]:
        """Evict the oldest part of the FIFO into a new summary. Returns what was evicted
        (already in recall storage: every message is written there when committed)."""
        cut = evict_cut(state.fifo, fraction or self.settings.memory_evict_fraction)
        if cut == 0:
            return []
        evicted = state.fifo[:cut]
        state.summary = await self.summarize(state.summary, evicted)
        del state.fifo[:cut]
        state.warned = False
        return evicted

    def alert(self, text: str, now: float | None = None) -> Message:
        return Message(role="user", content=f"[alert] {text}", kind="system_alert",
                       ts=now or time.time())
