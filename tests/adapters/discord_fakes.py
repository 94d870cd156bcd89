"""Minimal fakes of the discord.py objects the message handler and outbox touch (messages,
channels, users) for unit-level routing tests. Interactions, permissions and the gateway
are exercised for real against bot.testing.discord_emulator instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord

BOT_ID = 999


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
