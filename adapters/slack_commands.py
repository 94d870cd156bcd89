"""The ``/memory`` slash command for Slack, answered only to the caller (ephemeral).

Acknowledged at once; the work runs in an owned task and answers through the command's
response_url. Forget and reset ask first with buttons; the click is checked again (same
person, still allowed). Who may act on whose memory is decided by ``bot.ops.access``:
the person themselves, or an operator (an id in SLACK_ADMIN_IDS) — never a workspace
admin as such. Workspace admins/owners (users.info) may run ``/memory status``.
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
from bot.errors import AccessDenied, MembotError
from bot.ops.access import Actor

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("membot.slack")

Respond = Callable[..., Awaitable[Any]]
LIMIT = 2_900
SECTION = 3_000  # Block Kit: a section's text, after escaping
SMALL_EXPORT = 2_500
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
HELP = """\
*`/memory`* — what I remember about you (only you see the answers)
• `/memory show` — core memory, summary and counts
• `/memory search <query>` — search past conversations (`--notes` for saved notes)
• `/memory export` — everything as a JSON file (sent to our DM)
• `/memory forget <words>` — find a fact in all your memory and delete it (asks first)
• `/memory reset` — delete all your memory (asks first)
• `/memory audit` — who acted on your memory
• `/memory pause` / `/memory resume` — stop / start remembering (I still answer)
Bot operators add a user mention after the subcommand, e.g. `/memory show @someone`; \
`/memory heartbeat [@user]`; workspace admins: `/memory status`.
• workspace admins: `/memory channels enable|disable|list` (where I answer)
• `/memory link` — a code for your other account; `/memory link CODE` there; `/memory unlink`"""


Refused = AccessDenied  # the caller may not do this; nothing changed


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
        if first.startswith("@") and sub.lower() in ("show", "export", "reset", "heartbeat", "link",
                                                     "audit"):
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

    # --- who is asking (the rule itself is in bot.ops.access) --------------------------------
    async def is_workspace_admin(self, client: AsyncWebClient, user: str) -> bool:
        info = await client.users_info(user=user)
        return bool(info["user"].get("is_admin") or info["user"].get("is_owner"))

    async def is_admin(self, client: AsyncWebClient, user: str) -> bool:
        """Workspace-level commands (knowledge, channels): an operator or a workspace
        admin/owner. Never a way into someone's memory (that is bot.ops.access)."""
        return user in self.admin_ids or await self.is_workspace_admin(client, user)

    def actor(self, team: str, user: str, workspace_admin: bool = False) -> Actor:
        return Actor(user_key(team, user), operator=user in self.admin_ids,
                     admin_of=f"slack:{team}" if workspace_admin else "")

    @staticmethod
    def identity(req: Request) -> str | None:
        return None if req.target is None else user_key(req.team, req.target)

    # --- the subcommands --------------------------------------------------------------------------
    async def command(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        req = Request.parse(str(body["team_id"]), str(body["user_id"]), str(body.get("text", "")))
        who, access = self.actor(req.team, req.caller), self.svc.access
        if req.sub in ("show", "search", "audit"):
            await self.read(req, respond, who)
        elif req.sub == "export":
            await self.export(req, respond, client, who)
        elif req.sub == "forget":
            await self.forget(req, respond, who)
        elif req.sub == "reset":
            key, _ = await access.memory_of(who, self.identity(req))
            await ask(respond, f"Delete *all* memory of {key}? This cannot be undone.",
                      "Delete everything", {"op": "reset", "target": self.identity(req),
                                            "by": req.caller})
        elif req.sub in ("pause", "resume"):
            await access.pause(who, req.sub == "pause")
            await answer(respond, render.PAUSED if req.sub == "pause" else render.RESUMED)
        elif req.sub == "unlink":
            gone = await access.unlink(who)
            await answer(respond, f"Unlinked: {', '.join(gone)}." if gone else "Nothing is linked.")
        elif req.sub == "channels":
            await self.channels(req, respond, client, str(body.get("channel_id", "")))
        elif req.sub in ("heartbeat", "status", "link"):
            await self.admin_command(req, respond, client, who)
        else:
            await answer(respond, HELP)

    async def read(self, req: Request, respond: Respond, who: Actor) -> None:
        access = self.svc.access
        if req.sub == "show":
            await answer(respond, render.show(await access.show(who, self.identity(req)), "*"))
            return
        if req.sub == "audit":
            await answer(respond, render.audit(await access.audit_trail(who, self.identity(req)), "*"))
            return
        notes, query = _notes_flag(req.rest)
        found = await access.search(who, "archival" if notes else "recall", query, self.identity(req))
        await answer(respond, render.hits(found, query, "*"))

    async def export(self, req: Request, respond: Respond, client: AsyncWebClient, who: Actor) -> None:
        data = await self.svc.access.export(who, self.identity(req))
        key = str(data["user"])
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if len(text) <= SMALL_EXPORT:
            await answer(respond, f"```{text}```")
            return
        dm = await client.conversations_open(users=req.caller)
        await client.files_upload_v2(channel=dm["channel"]["id"], content=text,
                                     filename=f"memory-{key.rsplit(':', 1)[-1]}.json",
                                     title="Memory export", initial_comment=f"Memory export of {key}")
        await answer(respond, "I sent the export to our DM (only you can see it there).")

    async def forget(self, req: Request, respond: Respond, who: Actor) -> None:
        plan = await self.svc.access.forget_preview(who, req.rest, self.identity(req))
        text = render.forget_preview(plan, "*")
        if plan.empty:
            await answer(respond, text)
            return
        value = {"op": "forget", "target": self.identity(req), "by": req.caller,
                 "query": req.rest[:500]}
        await ask(respond, text[:2_900], "Forget it", value)

    async def admin_command(self, req: Request, respond: Respond, client: AsyncWebClient,
                            who: Actor) -> None:
        admin, access = self.svc.admin, self.svc.access
        if req.sub == "link":
            if req.target is not None or len(req.rest.split()) > 1:
                raise Refused("Links need proof: run `/memory link` on the account whose memory "
                              "to share, then `/memory link CODE` here.")
            if not req.rest:
                await answer(respond, render.LINK_CODE.format(code=await access.link_offer(who)))
                return
            memory = await access.link_accept(who, req.rest)
            await answer(respond, f"Linked: {who.identity} now shares the memory of {memory}.")
        elif req.sub == "status":
            if not who.operator:
                who = self.actor(req.team, req.caller, await self.is_workspace_admin(client, req.caller))
            access.require_server_admin(who, f"slack:{req.team}")
            await answer(respond, render.status(await admin.status(), "*"))
        else:
            key, status = await access.heartbeat(who, self.identity(req))
            await answer(respond, f"Heartbeat for {key}: {status}.")

    async def channels(self, req: Request, respond: Respond, client: AsyncWebClient,
                       channel: str) -> None:
        """`/memory channels enable|disable|list`: workspace admins choose where the bot
        answers (CHANNEL_OPT_IN)."""
        admin = await self.is_admin(client, req.caller)
        self.svc.access.require_server_admin(self.actor(req.team, req.caller, admin), f"slack:{req.team}")
        action, admission = (req.rest.split() or ["list"])[0].lower(), self.svc.admission
        if action not in ("enable", "disable", "list"):
            raise Refused("Use `/memory channels enable`, `disable` or `list`.")
        if action == "list":
            ids = await admission.channels("slack", req.team)
        else:
            ids = await admission.set_channel("slack", req.team, channel, action == "enable")
        await answer(respond, render.channels(ids, self.svc.settings.channel_opt_in, "`{}`"))

    async def confirmed(self, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        data = json.loads(body["actions"][0]["value"])
        team = str((body.get("team") or {}).get("id") or body["user"]["team_id"])
        clicker = str(body["user"]["id"])
        if clicker != data["by"]:
            raise Refused("Only the person who asked can confirm this.")
        who, target = self.actor(team, clicker), data.get("target")  # checked again: still allowed?
        if data["op"] == "reset":
            done, counts = await self.svc.access.reset(who, target)
            text = f"All memory of {done} is deleted. {render.receipt(counts)}"
        else:
            counts = await self.svc.access.forget(who, str(data["query"]), target)
            text = f"Forgotten. {render.receipt(counts)}"
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
