"""Delivery to Slack through the Web API: threaded replies split under Slack's limits,
very long answers as a file, proactive messages to the user's DM with the app."""

from __future__ import annotations

import re

from slack_sdk.web.async_client import AsyncWebClient

from adapters.chunking import split_message
from bot.events import Event, Reply

LIMIT = 3_500
MAX_CHUNKS = 4
FILE_NOTE = "That's a long answer, so here it is as a file."
_BROADCAST = re.compile(r"<!(here|channel|everyone)(\|[^>]*)?>")


def defuse(text: str) -> str:
    """No @here/@channel/@everyone pings from model output."""
    return _BROADCAST.sub(r"@\1", text)


def target(reply: Reply) -> tuple[str, str | None]:
    """(channel, thread_ts) from ``CHANNEL:THREAD_TS``; the user's DM when empty."""
    if not reply.reply_to:
        return reply.user.user_id, None  # chat.postMessage to a user id = the app DM
    channel, _, thread_ts = reply.reply_to.partition(":")
    return channel, thread_ts or None


class SlackOutbox:
    def __init__(self, client: AsyncWebClient, limit: int = LIMIT, max_chunks: int = MAX_CHUNKS) -> None:
        self.client = client
        self.limit = limit
        self.max_chunks = max_chunks

    async def deliver(self, reply: Reply) -> None:
        if reply.kind == "trace":  # inner thoughts stay out of chat platforms
            return
        channel, thread_ts = target(reply)
        text = defuse(reply.text)
        chunks = split_message(text, self.limit)
        if len(chunks) > self.max_chunks:
            if not reply.reply_to:  # files need a conversation id, not a user id
                opened = await self.client.conversations_open(users=channel)
                channel = str(opened["channel"]["id"])
            await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=text,
                                              filename="answer.md", title="Answer",
                                              initial_comment=FILE_NOTE)
            return
        for chunk in chunks:
            # markdown_text: the model writes standard Markdown, which Slack renders from it
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                               markdown_text=chunk)

    async def completed(self, event: Event) -> None:
        return None  # Slack has no typing indicator for bots
