"""Every chat request the test suite sends, validated against the OpenAI request schema.

The schema is the ``openai`` package's own ``CompletionCreateParamsNonStreaming`` TypedDict,
validated with pydantic, plus what strict servers add on top (llama-cpp-python rejects
``content: null``; nobody accepts an assistant turn that says nothing) and the protocol
rules the fake server checks (tool calls answered, no stray tool results).
"""

from __future__ import annotations

from typing import Any

from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter, ValidationError

from bot.testing.fake_openai import protocol_problem

_REQUEST = TypeAdapter(CompletionCreateParamsNonStreaming)
_FIELDS = (CompletionCreateParamsNonStreaming.__required_keys__
           | CompletionCreateParamsNonStreaming.__optional_keys__)


def request_problems(body: dict[str, Any]) -> list[str]:
    """What is wrong with one chat request body (empty when it is valid)."""
    problems: list[str] = []
    try:
        parsed = _REQUEST.validate_python(body, strict=False)
        # Iterable fields are validated lazily by pydantic: consume them
        list(parsed.get("messages", []))
        list(parsed.get("tools", []) or [])
    except ValidationError as exc:
        problems += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]]
    for key in body:
        if key not in _FIELDS:
            problems.append(f"unknown request field {key!r}")
    problem = protocol_problem(body)
    if problem:
        problems.append(problem)
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        problems.append("no max_tokens: generation is unbounded")
    return problems
