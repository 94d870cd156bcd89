"""Messages of the FIFO queue and their OpenAI Chat Completions form."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """Text every encoder accepts: lone surrogates (``\\ud800``, valid in JSON, refused by
    UTF-8 encoders and tokenizers) become U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


Role = Literal["system", "user", "assistant", "tool"]
# what a message is, beyond its role
MessageKind = Literal[
    "user_message", "heartbeat", "system_alert", "login", "assistant", "tool_result", "summary"
]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", safe_text(self.arguments))

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class Message:
    role: Role
    content: str
    kind: MessageKind
    ts: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""  # tool name for tool results; speaker name for imported messages
    event_id: str = ""  # the platform event a user message came from (dedupe after a Redis loss)
    vis: str = ""  # where it was said (bot.memory.visibility); "" = dm
    keep: bool = True  # False: said while memory was paused (FIFO only, never stored)

    def __post_init__(self) -> None:  # model output may carry lone surrogates too
        self.content = safe_text(self.content)

    # --- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content, "kind": self.kind,
                             "ts": self.ts, "id": self.id}
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.name:
            d["name"] = self.name
        if self.event_id:
            d["event_id"] = self.event_id
        if self.vis:
            d["vis"] = self.vis
        if not self.keep:
            d["keep"] = False
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            role=d["role"], content=d.get("content", ""), kind=d["kind"], ts=float(d["ts"]),
            id=d["id"], tool_calls=[ToolCall(**c) for c in d.get("tool_calls", [])],
            tool_call_id=d.get("tool_call_id", ""), name=d.get("name", ""),
            event_id=d.get("event_id", ""), vis=d.get("vis", ""), keep=bool(d.get("keep", True)),
        )

    # --- the LLM's view ----------------------------------------------------------------------
    def to_openai(self) -> dict[str, Any]:
        if self.role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        if self.role == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": self.content}
            if self.tool_calls:
                out["tool_calls"] = [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": c.arguments}}
                    for c in self.tool_calls
                ]
            return out
        return {"role": self.role, "content": self.content}

    def search_text(self) -> str:
        """The text recall storage indexes for this message."""
        if self.tool_calls:
            calls = "; ".join(f"{c.name}({c.arguments})" for c in self.tool_calls)
            return f"{self.content}\n{calls}".strip()
        return self.content


_EVENT_NS = uuid.UUID("5b0c7f5e-2f6e-4b8e-9a51-6d656d626f74")


def event_message_id(event_id: str) -> str:
    """The FIFO/recall id of the message an event carries: derived from the platform's
    event id, so a message the platform reports deleted can be found and removed."""
    return uuid.uuid5(_EVENT_NS, "event:" + event_id).hex


def stamp(ts: float) -> str:
    """Compact UTC time used in prompts and search results."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
