"""The Discord objects the emulator serves, as API payloads (v10 JSON shapes): users,
members with roles, a guild with its roles and channels, messages, interactions.

Permission bits are Discord's: ADMINISTRATOR 1<<3, MANAGE_GUILD 1<<5, VIEW_CHANNEL 1<<10,
SEND_MESSAGES 1<<11. Snowflakes carry their creation time like Discord's (epoch 2015)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MEMBER_PERMS = VIEW_CHANNEL | SEND_MESSAGES | (1 << 16) | (1 << 31)  # + read history, use app commands
EPHEMERAL = 1 << 6
# channel types
GUILD_TEXT, DM, PUBLIC_THREAD = 0, 1, 11

_counter = itertools.count()


def snowflake() -> int:
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (1 << 17) | (next(_counter) % 4096)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class User:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "username": self.name, "global_name": self.name,
                "discriminator": "0", "avatar": None, "bot": self.bot, "public_flags": 0}


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 1

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "permissions": str(self.permissions),
                "position": self.position, "color": 0, "hoist": False, "managed": False,
                "mentionable": False, "flags": 0}


@dataclass
class Channel:
    id: int
    name: str
    type: int = GUILD_TEXT
    guild_id: int | None = None
    parent_id: int | None = None
    recipient: User | None = None  # DMs
    bot_can_view: bool = True
    bot_can_send: bool = True

    def payload(self, with_guild: bool = True) -> dict[str, Any]:
        p: dict[str, Any] = {"id": str(self.id), "type": self.type, "name": self.name,
                             "last_message_id": None, "flags": 0}
        if self.type == DM and self.recipient is not None:
            p["recipients"] = [self.recipient.payload()]
            p.pop("name")
            return p
        p |= {"position": 0, "permission_overwrites": [], "nsfw": False, "topic": None,
              "rate_limit_per_user": 0}
        if with_guild and self.guild_id is not None:
            p["guild_id"] = str(self.guild_id)
        if self.type == PUBLIC_THREAD:
            p |= {"parent_id": str(self.parent_id), "owner_id": "1", "member_count": 2,
                  "message_count": 1, "thread_metadata": {
                      "archived": False, "auto_archive_duration": 1440,
                      "archive_timestamp": iso_now(), "locked": False}}
        return p


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: list[Role] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    members: dict[int, list[int]] = field(default_factory=dict)  # user id -> role ids

    def role_ids(self, user_id: int) -> list[int]:
        return self.members.get(user_id, [])

    def permissions(self, user_id: int) -> int:
        """What Discord computes for a member (no channel overwrites emulated)."""
        if user_id == self.owner_id:
            return (1 << 41) - 1
        perms = 0
        for role in self.roles:
            if role.id == self.id or role.id in self.role_ids(user_id):
                perms |= role.permissions
        return (1 << 41) - 1 if perms & ADMINISTRATOR else perms

    def member_payload(self, user: User, with_user: bool = True) -> dict[str, Any]:
        p: dict[str, Any] = {"roles": [str(r) for r in self.role_ids(user.id)], "nick": None,
                             "avatar": None, "joined_at": iso_now(), "deaf": False,
                             "mute": False, "flags": 0, "pending": False}
        if with_user:
            p["user"] = user.payload()
        return p

    def create_payload(self, users: dict[int, User]) -> dict[str, Any]:
        text = [c for c in self.channels if c.type != PUBLIC_THREAD]
        threads = [c for c in self.channels if c.type == PUBLIC_THREAD]
        return {
            "id": str(self.id), "name": self.name, "icon": None, "owner_id": str(self.owner_id),
            "roles": [r.payload() for r in self.roles], "emojis": [], "stickers": [],
            "features": [], "unavailable": False, "large": False, "member_count": len(self.members),
            "members": [self.member_payload(users[u]) for u in self.members if u in users],
            "channels": [c.payload(with_guild=False) for c in text],
            "threads": [c.payload() for c in threads], "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "joined_at": iso_now(),
            "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0,
            "system_channel_flags": 0, "preferred_locale": "en-US", "nsfw_level": 0,
            "afk_timeout": 300, "premium_progress_bar_enabled": False,
        }


def message_payload(mid: int, channel: Channel, author: User, content: str, *,
                    guild: Guild | None = None, mentions: list[User] | None = None,
                    reference: dict[str, Any] | None = None, flags: int = 0,
                    attachments: list[dict[str, Any]] | None = None,
                    components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "id": str(mid), "channel_id": str(channel.id), "author": author.payload(),
        "content": content, "timestamp": iso_now(), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [u.payload() for u in mentions or []],
        "mention_roles": [], "attachments": attachments or [], "embeds": [], "pinned": False,
        "type": 19 if reference else 0, "flags": flags, "components": components or [],
    }
    if reference:
        p["message_reference"] = reference
    if guild is not None:
        p["guild_id"] = str(guild.id)
        if not author.bot or author.id in guild.members:
            p["member"] = guild.member_payload(author, with_user=False)
    return p
