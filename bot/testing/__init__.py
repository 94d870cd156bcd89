"""Test helpers shipped with membot (used by its tests and benchmarks; no pytest here).

``FakeOpenAI`` is an OpenAI-compatible HTTP server driven by scripted turns, so tests talk
to it through the real openai client over real HTTP instead of mocking anything.
"""

from bot.testing.fake_openai import (
    FakeOpenAI,
    Responder,
    Turn,
    call,
    context_overflow,
    delay,
    echo,
    error,
    fake_embedding,
    last_event,
    protocol_problem,
    raw,
    raw_arguments,
    text,
    tool_call,
    tool_calls,
)

__all__ = [
    "FakeOpenAI",
    "Responder",
    "Turn",
    "call",
    "context_overflow",
    "delay",
    "echo",
    "error",
    "fake_embedding",
    "last_event",
    "protocol_problem",
    "raw",
    "raw_arguments",
    "text",
    "tool_call",
    "tool_calls",
]
