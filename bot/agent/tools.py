"""Tool schemas and executors: the agent's only way to speak and to edit memory.

Every tool takes ``request_heartbeat``. Results are plain text, cut to a size limit with a
visible note. Failures raise ``ToolError`` inside; ``execute`` turns them into a failed
outcome whose text goes back to the model (and forces a heartbeat).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.agent import prompts
from bot.agent.merge import merge
from bot.agent.toolcontext import ToolContext
from bot.errors import KnowledgeError, ToolError
from bot.knowledge import render as knowledge_render
from bot.knowledge.scopes import scopes_of
from bot.memory import hygiene, search
from bot.memory.longterm import archival_item, staged_notes
from bot.messages import ToolCall


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    ok: bool
    heartbeat: bool


Executor = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    run: Executor

    def schema(self) -> dict[str, Any]:
        props = dict(self.params)
        props["request_heartbeat"] = {"type": "boolean", "description": "Act again after this."}
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": {"type": "object", "properties": props,
                           "required": [*self.required, "request_heartbeat"]}}}


# --- executors -----------------------------------------------------------------------------
async def _send_message(ctx: ToolContext, a: dict[str, Any]) -> str:
    text = a["message"].strip()
    if not text:
        raise ToolError("message is empty")
    if ctx.event.kind == "heartbeat" and not ctx.settings.heartbeat_proactive:
        return "Not sent: this deployment does not allow messages outside a conversation."
    ctx.replies.append(text)
    return "Sent."


PAUSED = "Not saved: the person paused memory (/memory pause); nothing of this is kept."


async def _core_append(ctx: ToolContext, a: dict[str, Any]) -> str:
    if ctx.state.memory_paused:
        return PAUSED
    ctx.state.block(a["label"]).append(a["content"], vis=ctx.vis)
    ctx.state.last_edit, ctx.core_changed = ctx.now, True
    return "OK"


async def _core_replace(ctx: ToolContext, a: dict[str, Any]) -> str:
    if ctx.state.memory_paused:
        return PAUSED
    ctx.state.block(a["label"]).replace(a["old_content"], a["new_content"], vis=ctx.vis,
                                        view=ctx.vis)
    ctx.state.last_edit, ctx.core_changed = ctx.now, True
    return "OK"


async def _conversation_search(ctx: ToolContext, a: dict[str, Any]) -> str:
    return await search.conversation(ctx.memory, ctx.state.user, a["query"], a.get("page", 0),
                                     ctx.settings.search_page_size, now=ctx.now,
                                     max_chars=ctx.settings.tool_result_max_chars,
                                     vis=ctx.allowed)


async def _conversation_search_date(ctx: ToolContext, a: dict[str, Any]) -> str:
    return await search.conversation_by_date(ctx.memory, ctx.state.user, a["start_date"],
                                             a["end_date"], a.get("page", 0),
                                             ctx.settings.search_page_size,
                                             max_chars=ctx.settings.tool_result_max_chars,
                                             vis=ctx.allowed)


def said_at(ctx: ToolContext) -> float:
    """When the newest user message in context was sent: a note is dated by when it was
    said (a reflection hours later still dates it then), ``now`` only with none in context."""
    return next((m.ts for m in reversed(ctx.state.fifo) if m.kind == "user_message"), ctx.now)


async def _archival_insert(ctx: ToolContext, a: dict[str, Any]) -> str:
    text = a["content"].strip()
    if not text:
        raise ToolError("content is empty")
    if ctx.state.memory_paused:
        return PAUSED
    sources = [m.content for m in ctx.state.fifo if m.kind in hygiene.NOT_FACT_KINDS] + [prompts.SYSTEM]
    junk = hygiene.junk_reason(text, sources)
    if junk:
        raise ToolError(f"not saved: {junk}; save what the user said, in your own words")
    importance = a.get("importance")
    if importance is not None and not 1 <= importance <= 5:
        raise ToolError("importance must be 1 (trivia) to 5 (never fade)")
    topic = " ".join(str(a.get("topic", "")).lower().split())[:80]
    item = archival_item(ctx.state.user, text, ts=said_at(ctx), importance=importance, topic=topic,
                         vis=ctx.vis)
    replaced = await ctx.memory.superseded_by(ctx.state.user, item, extra=staged_notes(ctx.staged))
    ctx.stage_archival(item)  # written at commit, with the notes it supersedes
    for old in replaced:
        ctx.stage_archival(old)
    ctx.state.last_edit = ctx.now
    ctx.state.n_archival += 1
    if replaced:
        return f"Saved; it supersedes {len(replaced)} older note(s) on '{topic}' (kept as history)."
    return "Saved to archival memory."


async def _archival_search(ctx: ToolContext, a: dict[str, Any]) -> str:
    return await search.archival(ctx.memory, ctx.state.user, a["query"], a.get("page", 0),
                                 ctx.settings.search_page_size, now=ctx.now,
                                 max_chars=ctx.settings.tool_result_max_chars,
                                 vis=ctx.allowed)


async def _knowledge_search(ctx: ToolContext, a: dict[str, Any]) -> str:
    """Documents of the place the event comes from and the deployment's, never another's."""
    if ctx.knowledge is None:
        raise ToolError("no knowledge base is configured")
    p, size = search._page(a.get("page", 0)), ctx.settings.search_page_size
    try:
        found = await ctx.knowledge.search(scopes_of(ctx.event), a["query"],
                                           limit=size + 1, offset=p * size)
    except KnowledgeError as exc:
        raise ToolError(str(exc)) from None
    return knowledge_render.hits(found[:size], p, size, ctx.settings.tool_result_max_chars,
                                 more=len(found) > size)


async def _pause_heartbeats(ctx: ToolContext, a: dict[str, Any]) -> str:
    minutes = a["minutes"]
    if not 1 <= minutes <= 10_080:
        raise ToolError("minutes must be between 1 and 10080 (one week)")
    ctx.state.paused_until = ctx.now + minutes * 60
    return f"Timed heartbeats paused for {minutes} minutes."


_S = {"type": "string"}
_PAGE = {"type": "integer", "description": "Result page, from 0."}
_LABEL = {"type": "string", "enum": ["persona", "human"]}

TOOLS: dict[str, Tool] = {t.name: t for t in [
    Tool("send_message", "Send a message to the person.", {"message": _S}, ("message",),
         _send_message),
    Tool("core_memory_append", "Add a line to a core memory block.",
         {"label": _LABEL, "content": _S}, ("label", "content"), _core_append),
    Tool("core_memory_replace", "Replace exact text in a core memory block (empty new_content deletes).",
         {"label": _LABEL, "old_content": _S, "new_content": _S},
         ("label", "old_content", "new_content"), _core_replace),
    Tool("conversation_search", "Search past messages by meaning, words, dates ('trip last week').",
         {"query": _S, "page": _PAGE}, ("query",), _conversation_search),
    Tool("conversation_search_date", "List past messages between two dates (YYYY-MM-DD, inclusive).",
         {"start_date": _S, "end_date": _S, "page": _PAGE}, ("start_date", "end_date"),
         _conversation_search_date),
    Tool("archival_memory_insert", "Save a note to archival memory.",
         {"content": _S, "topic": {"type": "string", "description": "e.g. user.city (supersedes older)"},
          "importance": {"type": "integer", "description": "1-5, 5=pinned"}},
         ("content",), _archival_insert),
    Tool("archival_memory_search", "Search archival memory.", {"query": _S, "page": _PAGE},
         ("query",), _archival_search),
    Tool("knowledge_search", "Search this server's documents.",
         {"query": _S, "page": _PAGE}, ("query",), _knowledge_search),
    Tool("pause_heartbeats", "Pause timed heartbeats.",
         {"minutes": {"type": "integer"}}, ("minutes",), _pause_heartbeats),
    Tool("archival_memory_merge",
         "No args: list near-duplicate archival notes. With ids and content: replace those notes by one.",
         {"ids": _S, "content": _S}, (), merge),
]}


def register(tool: Tool) -> None:
    """Add a tool (e.g. from the heartbeat module) to the registry."""
    TOOLS[tool.name] = tool


def schemas() -> list[dict[str, Any]]:
    return [t.schema() for t in TOOLS.values()]


# --- validation and execution ------------------------------------------------------------------
_PY = {"string": str, "integer": int, "boolean": bool}


def _validate(tool: Tool, raw: str, max_chars: int) -> dict[str, Any]:
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolError(f"arguments are not valid JSON ({exc.msg}); send a JSON object") from None
    if not isinstance(args, dict):
        raise ToolError("arguments must be a JSON object")
    missing = [p for p in tool.required if p not in args]
    if missing:
        raise ToolError(f"missing argument(s): {', '.join(missing)}")
    for name, spec in tool.params.items():
        if name not in args:
            continue
        val, want = args[name], _PY[spec["type"]]
        if want is int and isinstance(val, str) and val.strip().lstrip("-").isdigit():
            val = args[name] = int(val)
        if not isinstance(val, want) or (want is int and isinstance(val, bool)):
            raise ToolError(f"argument '{name}' must be a {spec['type']}")
        if isinstance(val, str) and len(val) > max_chars:
            raise ToolError(f"argument '{name}' is {len(val)} characters; the limit is {max_chars}")
        if "enum" in spec and val not in spec["enum"]:
            raise ToolError(f"argument '{name}' must be one of {', '.join(spec['enum'])}")
    return args


def _wants_heartbeat(raw: str) -> bool:
    try:
        args = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return False
    hb = args.get("request_heartbeat") if isinstance(args, dict) else None
    return hb is True or (isinstance(hb, str) and hb.lower() == "true")


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[cut: {len(text) - limit} more characters; narrow the query or ask for the next page]"


async def execute(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    """Run one tool call. Never raises ToolError: failures come back as text."""
    tool = TOOLS.get(call.name)
    limit = ctx.settings.tool_result_max_chars
    try:
        if tool is None:
            raise ToolError(f"unknown tool '{call.name}'; available: {', '.join(TOOLS)}")
        args = _validate(tool, call.arguments, ctx.settings.tool_arg_max_chars)
        text = await tool.run(ctx, args)
    except ToolError as exc:
        return ToolOutcome(f"Error: {exc}", ok=False, heartbeat=True)
    return ToolOutcome(clip(text, limit), ok=True, heartbeat=_wants_heartbeat(call.arguments))
