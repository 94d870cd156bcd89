"""Which Discord messages the bot answers, and how they become core ``Event``s.

Answered: DMs, and guild messages that mention the bot (in a channel or a thread). With
the message-content intent also replies to the bot's own messages without a ping. Never:
bots (itself included), webhooks, system messages, ``@everyone`` alone.

Discord user ids are global, so the memory key has scope ``-``: the same memory in DMs
and in every server. The server a message comes from is the event's ``place``
(``discord:GUILD``), whose knowledge base the agent searches (bot.knowledge.scopes).
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.events import Channel, Event, UserRef

THREADS = {discord.ChannelType.public_thread, discord.ChannelType.private_thread,
           discord.ChannelType.news_thread}
USER_MESSAGES = {discord.MessageType.default, discord.MessageType.reply}
EMPTY_MENTION = "(mentioned you without any text)"


def user_ref(user: Any) -> UserRef:
    """The memory identity of a Discord user (global id, scope ``-``)."""
    return UserRef(platform="discord", user_id=str(user.id), scope="-",
                   display_name=str(getattr(user, "display_name", "") or ""))


def user_key(user: Any) -> str:
    return user_ref(user).key


def is_addressed(message: Any, bot_id: int, content_intent: bool = False) -> bool:
    """True when the message is for the bot and from a person."""
    author = message.author
    if author.bot or author.id == bot_id or message.webhook_id is not None:
        return False
    if message.type not in USER_MESSAGES:
        return False
    if message.guild is None:
        return True
    if any(u.id == bot_id for u in message.mentions):
        return True
    return content_intent and _replies_to(message, bot_id)


def _replies_to(message: Any, bot_id: int) -> bool:
    ref = getattr(message, "reference", None)
    resolved = getattr(ref, "resolved", None)
    author = getattr(resolved, "author", None)
    return author is not None and author.id == bot_id


def clean_text(message: Any, bot_id: int) -> str:
    """The text without the bot's mention; other user mentions become ``@name``."""
    text: str = message.content or ""
    for u in message.mentions:
        name = "" if u.id == bot_id else f"@{getattr(u, 'display_name', u.id)}"
        text = re.sub(rf"<@!?{u.id}>", name, text)
    text = re.sub(rf"<@!?{bot_id}>", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    files = [f"[attached file: {a.filename}]" for a in getattr(message, "attachments", [])]
    return "\n".join([text, *files]).strip() or EMPTY_MENTION


def channel_of(message: Any) -> Channel:
    ch = message.channel
    if message.guild is None:
        return Channel(where="dm", id=str(ch.id))
    threaded = getattr(ch, "type", None) in THREADS
    return Channel(where="thread" if threaded else "channel", name=str(getattr(ch, "name", "") or ""),
                   id=str(ch.id), server=str(message.guild.id))


def reply_target(message: Any) -> str:
    """``channel_id`` for DMs; ``channel_id:message_id`` (reply to it) in servers/threads."""
    ch_id = message.channel.id
    return str(ch_id) if message.guild is None else f"{ch_id}:{message.id}"


def message_event(message: Any, bot_id: int, content_intent: bool = False) -> Event | None:
    """The core event for a message the bot should answer, else None."""
    if not is_addressed(message, bot_id, content_intent):
        return None
    return Event(kind="user_message", user=user_ref(message.author),
                 text=clean_text(message, bot_id), event_id=f"discord:{message.id}",
                 channel=channel_of(message), reply_to=reply_target(message),
                 ts=message.created_at.timestamp(),
                 place=f"discord:{message.guild.id}" if message.guild is not None else "")
