"""Who may act on whose memory: the one place the rule of docs/privacy.md is enforced.

The rule: a person controls their own memory (every identity linked to it counts as
them); operators (ids in DISCORD_ADMIN_IDS / SLACK_ADMIN_IDS, and the ``membot`` CLI) may
act on anyone's; nobody else may read, search, export, forget, reset or wake another
person's memory — a Discord server admin or Slack workspace admin included, because one
memory holds what the person said in DMs and in every other server. Server/workspace
admins keep the deployment-level commands of their own server (``/bot status``,
``/bot channels``), which show no one's memory.

Adapters build an ``Actor`` for the caller (checked on every call: a platform's command
permissions only hide commands) and call ``Access``; ``Access`` resolves identity links,
checks the rule, runs the operation through ``bot.ops.admin``, keeps the durable audit
entry and tells the person (DM) when someone else viewed, exported, forgot, reset or woke
their memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.errors import AccessDenied

if TYPE_CHECKING:
    from bot.ops.admin import Admin
    from bot.ops.audit import AuditEntry, AuditLog
    from bot.ops.forget import ForgetPlan
    from bot.protocols import Collection

Action = Literal["show", "search", "export", "forget", "reset", "heartbeat", "audit", "pause",
                 "resume"]
Notify = Callable[[str, str], Awaitable[None]]  # (memory key, text) -> DM to that person
NOT_YOURS = ("Only the person themselves and the bot's operators can do that to someone's "
             "memory; server and workspace admins cannot (their memory includes what they "
             "said in DMs and in other servers). See docs/privacy.md.")
NOT_ADMIN = "Only this server's admins and the bot's operators can do that."
TOLD = {"show": "viewed", "search": "searched", "export": "exported", "forget": "deleted items from",
        "reset": "reset", "heartbeat": "woke the agent of", "audit": "read the audit trail of",
        "pause": "paused", "resume": "resumed"}


@dataclass(frozen=True)
class Actor:
    """Who is asking. ``identity`` is their own platform identity key (``cli`` for the CLI)."""

    identity: str
    operator: bool = False  # a configured bot admin id, or the CLI
    admin_of: str = ""  # "discord:GUILD" / "slack:TEAM" where they are a server/workspace admin

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli", operator=True)

    def may_administer(self, server: str) -> bool:
        """Deployment-level commands of one server (no one's memory)."""
        return self.operator or (bool(server) and self.admin_of == server)


class Access:
    """Memory operations on behalf of an ``Actor``; refuses with ``AccessDenied``."""

    def __init__(self, admin: Admin, audit: AuditLog, notify: Notify | None = None) -> None:
        self.admin = admin
        self.audit = audit
        self.notify = notify

    # --- the rule -------------------------------------------------------------------------------
    async def memory_of(self, actor: Actor, identity: str | None = None) -> tuple[str, bool]:
        """(memory key to act on, whether it is the actor's own). Raises AccessDenied."""
        own = await self.admin.resolve(actor.identity) if actor.identity != "cli" else ""
        if identity is None or identity == actor.identity:
            if not own:
                raise AccessDenied("name the user whose memory to act on")
            return own, True
        key = await self.admin.resolve(identity)
        if key == own:
            return key, True
        if actor.operator:
            return key, False
        raise AccessDenied(NOT_YOURS)

    def require_server_admin(self, actor: Actor, server: str) -> None:
        if not actor.may_administer(server):
            raise AccessDenied(NOT_ADMIN)

    async def _after(self, actor: Actor, action: Action, key: str, own: bool,
                     record: bool = True, **details: Any) -> None:
        if record:
            await self.audit.record(actor.identity, action, key, **details)
        if not own and self.notify is not None:
            await self.notify(key, f"Notice: {actor.identity} {TOLD[action]} your memory "
                                   f"(`/memory audit` lists every such action).")

    # --- operations -------------------------------------------------------------------------------
    async def show(self, actor: Actor, identity: str | None = None) -> dict[str, Any]:
        key, own = await self.memory_of(actor, identity)
        shown = await self.admin.show(key)
        await self._after(actor, "show", key, own)
        return shown

    async def search(self, actor: Actor, kind: Collection, query: str,
                     identity: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        key, own = await self.memory_of(actor, identity)
        found = await self.admin.search(key, kind, query, limit=limit)
        await self._after(actor, "search", key, own, kind=kind, hits=len(found))
        return found

    async def export(self, actor: Actor, identity: str | None = None) -> dict[str, Any]:
        key, own = await self.memory_of(actor, identity)
        data = await self.admin.export(key, actor=actor.identity)  # audited there
        await self._after(actor, "export", key, own, record=False)
        return data

    async def forget_preview(self, actor: Actor, query: str,
                             identity: str | None = None) -> ForgetPlan:
        key, _ = await self.memory_of(actor, identity)
        _, plan = await self.admin.forget_plan(key, query)
        return plan

    async def forget(self, actor: Actor, query: str, identity: str | None = None) -> dict[str, int]:
        key, own = await self.memory_of(actor, identity)
        receipt = await self.admin.forget_text(key, query, actor=actor.identity)  # audited there
        await self._after(actor, "forget", key, own, record=False)
        return receipt

    async def reset(self, actor: Actor, identity: str | None = None) -> tuple[str, dict[str, int]]:
        key, own = await self.memory_of(actor, identity)
        receipt = await self.admin.reset(key, actor=actor.identity)  # audited there
        await self._after(actor, "reset", key, own, record=False)
        return key, receipt

    async def heartbeat(self, actor: Actor, identity: str | None = None) -> tuple[str, str]:
        key, own = await self.memory_of(actor, identity)
        status = await self.admin.heartbeat_now(key, actor=actor.identity)  # audited there
        await self._after(actor, "heartbeat", key, own, record=False)
        return key, status

    async def pause(self, actor: Actor, paused: bool, identity: str | None = None) -> str:
        """Pause (True) or resume (False) remembering; returns the memory key."""
        key, own = await self.memory_of(actor, identity)
        await self.admin.set_memory_paused(key, paused, actor=actor.identity)  # audited there
        await self._after(actor, "pause" if paused else "resume", key, own, record=False)
        return key

    # --- identity links (always the person themselves, proven by a one-time code) ----------
    async def link_offer(self, actor: Actor) -> str:
        """A one-time code for the caller's other identity (shown to the caller only)."""
        await self.memory_of(actor)
        return await self.admin.svc.links.offer(actor.identity)

    async def link_accept(self, actor: Actor, code: str) -> str:
        """The caller's identity joins the memory the code was issued for."""
        await self.memory_of(actor)
        memory = await self.admin.svc.links.accept(actor.identity, code, self.admin.has_memory)
        await self.audit.record(actor.identity, "link", memory, identity=actor.identity)
        return memory

    async def unlink(self, actor: Actor) -> list[str]:
        key, _ = await self.memory_of(actor)
        gone = await self.admin.svc.links.unlink(actor.identity)
        if gone:
            await self.audit.record(actor.identity, "unlink", key, identities=",".join(gone))
        return gone

    async def audit_trail(self, actor: Actor, identity: str | None = None) -> list[AuditEntry]:
        key, own = await self.memory_of(actor, identity)
        entries = await self.audit.entries(key)
        if not own:
            await self._after(actor, "audit", key, own)
        return entries
