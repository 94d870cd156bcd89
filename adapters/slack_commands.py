"""The ``/memory`` slash command for Slack, answered only to the caller (ephemeral).

Acknowledged at once; the work runs in an owned task and answers through the command's
response_url. Forget and reset ask first with buttons; the click is checked again (same
person, still allowed). Acting on someone else's memory needs a workspace admin/owner
(users.info) or an id in SLACK_ADMIN_IDS, checked on every call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters import render
from adapters.chunking import split_message
from adapters.slack_inbound import user_key
from adapters.tasks import TaskSet
from bot.errors import AdminError, MembotError

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("membot.slack")

Respond = Callable[..., Awaitable[Any]]
LIMIT = 2_900
SECTION = 3_000  # Block Kit: a section's text, after escaping
SMALL_EXPORT = 2_500
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
NOT_ADMIN = "Only workspace admins and bot admins can act on someone else's memory."
HELP = """\
*`/memory`* — what I remember about you (only you see the answers)
• `/memory show` — core memory, summary and counts
• `/memory search <query>` — search past conversations (`--notes` for saved notes)
• `/memory export` — everything as a JSON file (sent to our DM)
• `/memory forget <query>` — find saved notes and delete them (asks first)
• `/memory reset` — delete all your memory (asks first)
Admins add a user mention after the subcommand, e.g. `/memory show @someone`; \
`/memory heartbeat [@user]`, `/memory status`; bot admins: `/memory link @user <key>`."""


class Refused(AdminError):
    """The caller may not do this; nothing changed."""


@dataclass(frozen=True)
class Request:
    team: str
    caller: str
    sub: str
    target: str | None  # a mentioned user id
    rest: str

    @classmethod
    def parse(cls, team: str, caller: str, text: str) -> Request:
        sub, _, rest = text.strip().partition(" ")
        first, _, after = rest.strip().partition(" ")
        m = MENTION.match(first)
        if m:
            return cls(team, caller, sub.lower() or "help", m.group(1), after.strip())
        if first.startswith("@") and sub.lower() in ("show", "export", "reset", "heartbeat", "link"):
            raise Refused("Mention the user with @ so Slack sends their id (the /memory command "
                          "needs 'Escape channels, users, and links' turned on).")
        return cls(team, caller, sub.lower() or "help", None, rest.strip())


class SlackCommands:
    def __init__(self, service: Service, admin_ids: frozenset[str], tasks: TaskSet) -> None:
        self.svc = service
        self.admin_ids = admin_ids
        self.tasks = tasks

    def register(self, app: AsyncApp) -> None:
        app.command("/memory")(self.on_command)
        app.action("memory_confirm")(self.on_confirm)
        app.action("memory_cancel")(self.on_cancel)

    # --- listeners: ack now, work in an owned task ------------------------------------------
    async def on_command(self, ack: Any, body: dict[str, Any], respond: Respond,
                         client: AsyncWebClient) -> None:
        await ack()
        self.tasks.spawn(self._guarded(respond, self.command(body, respond, client)))

    async def on_confirm(self, ack: Any, body: dict[str, Any], respond: Respond,
                         client: AsyncWebClient) -> None:
        await ack()
        self.tasks.spawn(self._guarded(respond, self.confirmed(body, respond, client)))

    async def on_cancel(self, ack: Any, respond: Respond) -> None:
        await ack()
        await respond(text="Cancelled; nothing changed.", replace_original=True)

    async def _guarded(self, respond: Respond, work: Awaitable[None]) -> None:
        await guarded(respond, work, "/memory")

    # --- access ---------------------------------------------------------------------------------
    async def is_admin(self, client: AsyncWebClient, user: str) -> bool:
        if user in self.admin_ids:
            return True
        info = await client.users_info(user=user)
        return bool(info["user"].get("is_admin") or info["user"].get("is_owner"))

    async def target(self, client: AsyncWebClient, req: Request) -> str:
        """The memory key to act on (identity links applied); raises Refused."""
        if req.target is not None and req.target != req.caller:
            if not await self.is_admin(client, req.caller):
                raise Refused(NOT_ADMIN)
            return await self.svc.admin.resolve(user_key(req.team, req.target))
        return await self.svc.admin.resolve(user_key(req.team, req.caller))

    # --- the subcommands --------------------------------------------------------------------------
    async def command(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        req = Request.parse(str(body["team_id"]), str(body["user_id"]), str(body.get("text", "")))
        actor = f"slack:{req.team}:{req.caller}"
        if req.sub in ("show", "search"):
            await self.read(req, respond, client, actor)
        elif req.sub == "export":
            await self.export(req, respond, client, actor)
        elif req.sub == "forget":
            await self.forget(req, respond, client)
        elif req.sub == "reset":
            key = await self.target(client, req)
            await ask(respond, f"Delete *all* memory of {key}? This cannot be undone.",
                      "Delete everything", {"op": "reset", "key": key, "by": req.caller})
        elif req.sub in ("heartbeat", "status", "link"):
            await self.admin_command(req, respond, client, actor)
        else:
            await answer(respond, HELP)

    async def read(self, req: Request, respond: Respond, client: AsyncWebClient, actor: str) -> None:
        key = await self.target(client, req)
        self.svc.admin.audit(actor, req.sub, key)  # Admin.show/search do not audit reads
        if req.sub == "show":
            await answer(respond, render.show(await self.svc.admin.show(key), "*"))
            return
        notes, query = _notes_flag(req.rest)
        found = await self.svc.admin.search(key, "archival" if notes else "recall", query)
        await answer(respond, render.hits(found, query, "*"))

    async def export(self, req: Request, respond: Respond, client: AsyncWebClient, actor: str) -> None:
        key = await self.target(client, req)
        text = json.dumps(await self.svc.admin.export(key, actor=actor), indent=2, ensure_ascii=False)
        if len(text) <= SMALL_EXPORT:
            await answer(respond, f"```{text}```")
            return
        dm = await client.conversations_open(users=req.caller)
        await client.files_upload_v2(channel=dm["channel"]["id"], content=text,
                                     filename=f"memory-{key.rsplit(':', 1)[-1]}.json",
                                     title="Memory export", initial_comment=f"Memory export of {key}")
        await answer(respond, "I sent the export to our DM (only you can see it there).")

    async def forget(self, req: Request, respond: Respond, client: AsyncWebClient) -> None:
        key = await self.target(client, req)
        found = await self.svc.admin.forget_preview(key, req.rest, limit=10)
        text = render.forget_preview(found, req.rest, "*")
        if not found:
            await answer(respond, text)
            return
        value = {"op": "forget", "key": key, "by": req.caller, "ids": [h["id"] for h in found]}
        await ask(respond, text[:2_900], f"Forget {len(found)} note(s)", value)

    async def admin_command(self, req: Request, respond: Respond, client: AsyncWebClient,
                            actor: str) -> None:
        admin = self.svc.admin
        if req.sub == "link":
            if req.caller not in self.admin_ids or req.target is None or not req.rest:
                raise Refused("Bot admins (SLACK_ADMIN_IDS) only: `/memory link @user <memory key>`.")
            identity = user_key(req.team, req.target)
            await admin.link(identity, req.rest.split()[0], actor=actor)
            await answer(respond, f"{identity} now shares the memory of {req.rest.split()[0]}.")
            return
        if not await self.is_admin(client, req.caller):
            raise Refused("Only workspace admins and bot admins can do that.")
        if req.sub == "status":
            await answer(respond, render.status(await admin.status(), "*"))
        else:
            key = await self.target(client, req)
            await answer(respond, f"Heartbeat for {key}: {await admin.heartbeat_now(key, actor=actor)}.")

    async def confirmed(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        data = json.loads(body["actions"][0]["value"])
        team = str((body.get("team") or {}).get("id") or body["user"]["team_id"])
        clicker = str(body["user"]["id"])
        own = await self.svc.admin.resolve(user_key(team, clicker))
        if clicker != data["by"] or (data["key"] != own and not await self.is_admin(client, clicker)):
            raise Refused(NOT_ADMIN)
        actor = f"slack:{team}:{clicker}"
        if data["op"] == "reset":
            await self.svc.admin.reset(data["key"], actor=actor)
            text = f"All memory of {data['key']} is deleted."
        else:
            n = await self.svc.admin.forget(data["key"], list(data["ids"]), actor=actor)
            text = f"Forgot {n} note(s)."
        await respond(text=text, replace_original=True)


async def guarded(respond: Respond, work: Awaitable[None], command: str) -> None:
    """Run a command's work; every failure ends in an ephemeral answer."""
    try:
        await work
    except MembotError as exc:
        await respond(text=f"Sorry: {exc}", response_type="ephemeral")
    except Exception:
        log.exception("%s failed", command)
        await respond(text="Something went wrong; nothing was changed.", response_type="ephemeral")


def _notes_flag(rest: str) -> tuple[bool, str]:
    words = rest.split()
    return "--notes" in words, " ".join(w for w in words if w != "--notes")


async def answer(respond: Respond, text: str) -> None:
    """Ephemeral answer, split under Slack's limit (a response_url takes at most 5 posts)."""
    chunks = split_message(mrkdwn_escape(text), LIMIT) or ["(nothing)"]
    if len(chunks) > 4:
        chunks = chunks[:3] + ["(cut short — `/memory export` has everything)"]
    for chunk in chunks:
        await checked(respond, text=chunk, response_type="ephemeral")


async def checked(respond: Respond, **message: Any) -> None:
    """Post to the response_url; Slack's refusal (invalid_blocks, used_url...) is an error
    here, not a silently lost answer (bolt's respond does not raise on a 4xx)."""
    resp = await respond(**message)
    status = getattr(resp, "status_code", 200)
    if status != 200:
        log.warning("response_url refused the answer: %s %s", status, getattr(resp, "body", ""))
        raise MembotError(f"Slack refused the answer ({getattr(resp, 'body', status)})")


def mrkdwn_escape(text: str) -> str:
    """Escape &, <, > (Slack's control characters) but keep "> " block quotes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"(?m)^&gt; ", "> ", text)


async def ask(respond: Respond, text: str, label: str, value: dict[str, Any]) -> None:
    """An ephemeral question with a danger button (value = what to do) and Cancel."""
    section = mrkdwn_escape(text)
    if len(section) > SECTION:  # cut after escaping, never inside an &entity;
        section = re.sub(r"&[a-z]{0,4}$", "", section[: SECTION - 1]) + "…"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "memory_confirm", "style": "danger",
             "text": {"type": "plain_text", "text": label}, "value": json.dumps(value)},
            {"type": "button", "action_id": "memory_cancel",
             "text": {"type": "plain_text", "text": "Cancel"}, "value": "cancel"},
        ]},
    ]
    await checked(respond, text=text, blocks=blocks, response_type="ephemeral")
