"""Minimal fakes of the discord.py objects the adapter touches (messages, channels, users,
interactions) for unit-level tests. Only the attributes the adapter reads exist; anything
else fails loudly. End-to-end behaviour (real CommandTree, real permissions, gateway) is
tested against bot.testing.discord_emulator instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord

BOT_ID = 999


@dataclass
class Perms:
    administrator: bool = False
    manage_guild: bool = False


@dataclass
class FakeGuild:
    id: int = 500


@dataclass
class FakeChannel:
    id: int = 100
    name: str = "general"
    type: discord.ChannelType = discord.ChannelType.text
    sent: list[dict[str, Any]] = field(default_factory=list)
    typings: int = 0

    async def send(self, content: str | None = None, **kw: Any) -> None:
        self.sent.append({"content": content, **kw})

    def typing(self) -> Any:
        return self._typing()

    async def _typing(self) -> None:
        self.typings += 1


@dataclass
class FakeUser:
    id: int = 1
    display_name: str = "Alice"
    bot: bool = False
    guild: FakeGuild | None = None  # set for members (resolved in a server)
    guild_permissions: Perms | None = None
    dm: FakeChannel = field(default_factory=lambda: FakeChannel(id=7001, name="",
                                                                  type=discord.ChannelType.private))

    async def create_dm(self) -> FakeChannel:
        return self.dm


@dataclass
class FakeMessage:
    id: int
    content: str
    author: FakeUser
    channel: FakeChannel
    guild: FakeGuild | None = None
    mentions: list[FakeUser] = field(default_factory=list)
    webhook_id: int | None = None
    type: discord.MessageType = discord.MessageType.default
    attachments: list[Any] = field(default_factory=list)
    reference: Any = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeClient:
    """The client seen by the outbox: channel and user lookups."""

    channels: dict[int, FakeChannel] = field(default_factory=dict)
    users: dict[int, FakeUser] = field(default_factory=dict)

    def add(self, *channels: FakeChannel) -> FakeClient:
        for ch in channels:
            self.channels[ch.id] = ch
        return self

    def get_channel(self, id: int, /) -> FakeChannel | None:
        return self.channels.get(id)

    async def fetch_channel(self, id: int, /) -> FakeChannel:
        return self.channels[id]

    def get_user(self, id: int, /) -> FakeUser | None:
        return self.users.get(id)

    async def fetch_user(self, id: int, /) -> FakeUser:
        return self.users[id]


@dataclass
class FakeResponse:
    deferred: dict[str, Any] | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)

    def is_done(self) -> bool:
        return self.deferred is not None

    async def defer(self, **kw: Any) -> None:
        assert self.deferred is None, "an interaction is answered only once"
        self.deferred = kw

    async def edit_message(self, **kw: Any) -> None:
        self.edits.append(kw)


@dataclass
class SentMessage:
    content: str | None
    kw: dict[str, Any]
    edits: list[dict[str, Any]] = field(default_factory=list)

    async def edit(self, **kw: Any) -> None:
        self.edits.append(kw)


@dataclass
class FakeFollowup:
    sent: list[SentMessage] = field(default_factory=list)

    async def send(self, content: str | None = None, **kw: Any) -> SentMessage:
        msg = SentMessage(content, kw)
        self.sent.append(msg)
        return msg


@dataclass
class FakeInteraction:
    user: FakeUser
    guild: FakeGuild | None = None
    response: FakeResponse = field(default_factory=FakeResponse)
    followup: FakeFollowup = field(default_factory=FakeFollowup)
    original_edits: list[dict[str, Any]] = field(default_factory=list)

    async def edit_original_response(self, **kw: Any) -> None:
        self.original_edits.append(kw)

    def texts(self) -> list[str]:
        return [m.content or "" for m in self.followup.sent]

    def all_ephemeral(self) -> bool:
        return all(m.kw.get("ephemeral") is True for m in self.followup.sent) and bool(
            self.response.deferred and self.response.deferred.get("ephemeral"))
