"""Slack ``/knowledge`` (``list``, ``remove NAME``, ``search QUERY``) and uploads: a file
shared with the message ``knowledge add`` (or ``/knowledge add``) in a DM with the bot or
with a mention in a channel adds or replaces that document in the workspace's knowledge.
A slash command cannot carry a file, so ``/knowledge add`` explains how to share one.

Admins (workspace admins/owners, or SLACK_ADMIN_IDS; checked on every call) add, list and
remove, always in the workspace the command comes from; every member searches. Answers are
ephemeral. Files are downloaded from ``url_private_download`` with the bot token, after
their size is checked (``files:read`` scope).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters import knowledge_chat
from adapters.slack_commands import Refused, Respond, answer, guarded
from adapters.tasks import TaskSet
from bot.errors import KnowledgeError, MembotError

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("membot.slack")
IsAdmin = Callable[[AsyncWebClient, str], Awaitable[bool]]
UPLOAD = re.compile(r"^\s*(<@[A-Z0-9]+(\|[^>]*)?>\s*)?/?knowledge\s+add\b", re.I)
NOT_ADMIN = "Only workspace admins and bot admins can change the workspace's knowledge."
HOW_TO_ADD = ("To add a document, share the file (Markdown, text, HTML or PDF) in a DM with "
              "me, or in a channel mentioning me, with the message `knowledge add`. A file "
              "with the same name replaces the old one as a new version.")
HELP = f"""\
*`/knowledge`* — this workspace's documents that everyone's agent can search
• `/knowledge search <query>` — search them
• `/knowledge list` — documents, versions and drift (admins)
• `/knowledge remove <name>` — remove a document (admins)
• {HOW_TO_ADD}"""
DOWNLOAD_TIMEOUT_S = 60.0


class SlackKnowledge:
    def __init__(self, service: Service, client: AsyncWebClient, is_admin: IsAdmin,
                 tasks: TaskSet) -> None:
        self.svc = service
        self.client = client
        self.is_admin = is_admin
        self.tasks = tasks

    def register(self, app: AsyncApp) -> None:
        app.command("/knowledge")(self.on_command)

    # --- the slash command ----------------------------------------------------------------------
    async def on_command(self, ack: Any, body: dict[str, Any], respond: Respond,
                         client: AsyncWebClient) -> None:
        await ack()
        self.tasks.spawn(guarded(respond, self.command(body, respond, client), "/knowledge"))

    async def command(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        team, caller = str(body["team_id"]), str(body["user_id"])
        sub, _, rest = str(body.get("text", "")).strip().partition(" ")
        scope = f"slack:{team}"
        sub = sub.lower()
        if sub == "search":
            await answer(respond, await knowledge_chat.search(self.svc, scope, rest, "*"))
            return
        if sub not in ("list", "remove", "add"):
            await answer(respond, HELP)
            return
        if not await self.is_admin(client, caller):
            raise Refused(NOT_ADMIN)
        if sub == "add":
            await answer(respond, HOW_TO_ADD)
        elif sub == "list":
            await answer(respond, await knowledge_chat.listing(self.svc, scope, "*"))
        else:
            await answer(respond, await knowledge_chat.remove(self.svc, scope, rest.strip(),
                                                              f"slack:{team}:{caller}"))

    # --- uploads ------------------------------------------------------------------------------
    @staticmethod
    def is_upload(event: dict[str, Any]) -> bool:
        """A shared file whose message asks to add it to the knowledge base."""
        return bool(event.get("files")) and bool(UPLOAD.match(str(event.get("text") or "")))

    def take(self, team: str, event: dict[str, Any]) -> None:
        """Handle an upload in an owned task (the event is acknowledged right away)."""
        self.tasks.spawn(self.upload(team, event))

    async def upload(self, team: str, event: dict[str, Any]) -> None:
        user, channel = str(event.get("user")), str(event.get("channel"))
        try:
            if not await self.is_admin(self.client, user):
                raise Refused(NOT_ADMIN)
            texts = [await self._one(team, user, f) for f in event.get("files") or []]
        except MembotError as exc:
            texts = [f"Sorry: {exc}"]
        except Exception:
            log.exception("knowledge upload failed")
            texts = ["Something went wrong; nothing was changed."]
        await self.client.chat_postEphemeral(channel=channel, user=user, text="\n".join(texts),
                                             thread_ts=event.get("thread_ts"))

    async def _one(self, team: str, user: str, f: dict[str, Any]) -> str:
        name = str(f.get("name") or f.get("title") or "document")
        try:
            knowledge_chat.too_big(self.svc, int(f.get("size") or 0))
            data = await self.download(str(f.get("url_private_download") or f.get("url_private") or ""))
            return await knowledge_chat.add(self.svc, f"slack:{team}", name, data,
                                            f"slack:{team}:{user}", "*")
        except KnowledgeError as exc:
            return f"Sorry: {exc}" if name in str(exc) else f"Sorry: {name}: {exc}"

    async def download(self, url: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise KnowledgeError("Slack gave no download link for the file")
        token = self.client.token or ""
        limit = self.svc.knowledge.max_bytes
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(
                    url, headers={"Authorization": f"Bearer {token}"}) as resp:
                if resp.status != 200:
                    raise KnowledgeError(f"the download failed (HTTP {resp.status}); "
                                         "does the app have the files:read scope?")
                data = await resp.content.read(limit + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KnowledgeError(f"the download failed ({type(exc).__name__})") from None
        knowledge_chat.too_big(self.svc, len(data))
        return data
