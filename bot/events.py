"""Types shared by adapters and the core: who wrote, what happened, what to send back."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from bot.messages import safe_text

EventKind = Literal["user_message", "heartbeat", "system_alert", "login"]
ReplyKind = Literal["message", "notice", "trace"]
Where = Literal["dm", "channel", "thread", "terminal", "system"]


@dataclass(frozen=True)
class UserRef:
    """One person on one platform. ``scope`` is the workspace/guild where ids are scoped."""

    platform: str
    user_id: str
    scope: str = "-"
    display_name: str = ""

    @property
    def key(self) -> str:
        """Stable memory key: ``platform:scope:user_id`` (no braces, no spaces)."""
        return f"{self.platform}:{self.scope or '-'}:{self.user_id}"


@dataclass(frozen=True)
class Channel:
    """Where a message was said, so the agent can be discreet in public."""

    where: Where = "dm"
    name: str = ""
    id: str = ""
    server: str = ""  # Discord guild id / Slack team id of a channel ("" in DMs)


@dataclass(frozen=True)
class Event:
    """Something that wakes a user's agent."""

    kind: EventKind
    user: UserRef
    text: str = ""
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    channel: Channel = field(default_factory=Channel)
    reply_to: str = ""  # opaque target the owning adapter understands (channel/thread id)
    ts: float = field(default_factory=time.time)
    trace: bool = False  # deliver inner thoughts and tool calls as "trace" replies
    memory_key: str = ""  # resolved key (after identity links); empty = user.key
    max_steps: int = 0  # cap on chained LLM calls for this event; 0 = settings.max_chain_steps
    place: str = ""  # knowledge scope of where it was written (discord:GUILD); see bot.knowledge.scopes

    def __post_init__(self) -> None:  # sanitized at every edge: JSON and SDKs must accept it
        object.__setattr__(self, "text", safe_text(self.text))

    @property
    def key(self) -> str:
        return self.memory_key or self.user.key

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        d: dict[str, Any] = json.loads(raw)
        d["user"] = UserRef(**d["user"])
        d["channel"] = Channel(**d["channel"])
        return cls(**d)


@dataclass(frozen=True)
class Reply:
    """Text for the adapter that owns ``user.platform`` to deliver to ``reply_to``."""

    user: UserRef
    text: str
    reply_to: str = ""
    event_id: str = ""
    kind: ReplyKind = "message"
    seq: int = 0
    part: int = 0  # chunks of this reply already posted (delivery resumes there)
    resend: bool = False  # a send may have reached the platform before a crash: check first

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", safe_text(self.text))

    @property
    def id(self) -> str:
        """Stable id of this reply (idempotency mark on the platform)."""
        return f"{self.event_id}:{self.seq}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Reply:
        d: dict[str, Any] = json.loads(raw)
        d["user"] = UserRef(**d["user"])
        return cls(**d)


class Outbox(Protocol):
    """An adapter's delivery seam: send one reply to the platform; hear when a step ended."""

    async def deliver(self, reply: Reply) -> None: ...

    async def completed(self, event: Event) -> None:
        """The event's step is committed and all its replies delivered (stop typing...)."""
        ...
