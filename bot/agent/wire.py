"""The one normalisation point of outgoing chat messages: every request passes through here.

Strict servers (OpenAI itself, llama-cpp-python's pydantic request models, vLLM) reject what
lenient ones accept, and a message stored once is re-sent on every later call of that user,
so a single bad message would poison the user's agent. The rules:

- ``content`` is always a string: ``""`` next to tool calls, never ``null``;
- an assistant message with neither text nor tool calls is dropped (it says nothing, and
  strict servers reject it);
- each role carries only the keys the API defines for it (no internal fields leak out);
- tool calls are always ``{"id", "type": "function", "function": {"name", "arguments"}}``
  with ``arguments`` as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

_ROLES = ("system", "developer", "user", "assistant", "tool")


def normalize(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages in a form every OpenAI-compatible server accepts (a new list)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role not in _ROLES:
            raise ValueError(f"message role {role!r} is not one of {', '.join(_ROLES)}")
        if role == "assistant":
            msg = _assistant(m)
            if msg is not None:
                out.append(msg)
        elif role == "tool":
            out.append({"role": "tool", "tool_call_id": str(m.get("tool_call_id") or ""),
                        "content": content_text(m.get("content"))})
        else:
            out.append({"role": role, "content": content_text(m.get("content"))})
    return out


def bound_strings(schemas: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """Tool schemas whose string parameters carry ``maxLength`` (a copy). Servers that
    constrain generation with a grammar built from the schema (llama.cpp's function-calling
    formats, vLLM guided decoding) then cannot generate an unbounded argument, which they do
    even when ``max_tokens`` is sent (llama-cpp-python ignores it for tool arguments)."""
    out = []
    for schema in schemas:
        schema = json.loads(json.dumps(schema))
        props = schema.get("function", {}).get("parameters", {}).get("properties", {})
        for spec in props.values():
            if isinstance(spec, dict) and spec.get("type") == "string":
                spec.setdefault("maxLength", max_chars)
        out.append(schema)
    return out


def _assistant(m: dict[str, Any]) -> dict[str, Any] | None:
    calls = [_call(c) for c in m.get("tool_calls") or []]
    content = content_text(m.get("content"))
    if not calls and not content.strip():
        return None
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _call(c: dict[str, Any]) -> dict[str, Any]:
    fn = c.get("function") or {}
    args = fn.get("arguments")
    if args is None or args == "":
        args = "{}"
    elif not isinstance(args, str):
        args = json.dumps(args)
    return {"id": str(c.get("id") or ""), "type": "function",
            "function": {"name": str(fn.get("name") or ""), "arguments": args}}


def content_text(content: Any) -> str:
    """String content: ``None`` is ``""``; a list of parts keeps its text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)
