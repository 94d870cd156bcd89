"""Memory operations shared by the CLI, the terminal chat, Discord and Slack.

Every operation runs under the user's lock (never concurrently with a step), validates
its input before changing anything, and logs who did what.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import AdminError
from bot.memory import timeparse
from bot.memory.core import AgentState
from bot.memory.longterm import recall_item
from bot.messages import Message, stamp
from bot.protocols import Collection, MemoryItem

if TYPE_CHECKING:
    from bot.agent.context import ContextManager
    from bot.events import Event
    from bot.memory.longterm import LongTermMemory
    from bot.memory.recall_writer import RecallWriter
    from bot.memory.states import StateRepo
    from bot.ops.server import Check
    from bot.protocols import VectorStore
    from bot.runtime.inbox import Inbox, Submitted
    from bot.stores.redis_store import RedisStore


class AdminHost(Protocol):
    """What memory administration needs of the running service (``bot.service.Service``)."""

    redis: RedisStore
    states: StateRepo
    memory: LongTermMemory
    store: VectorStore
    writer: RecallWriter
    inbox: Inbox
    context: ContextManager
    checks: dict[str, Check]

    @property
    def running(self) -> bool: ...

    async def submit(self, event: Event) -> Submitted: ...

log = logging.getLogger("membot.admin")
ROLES = {"user", "assistant", "system", "tool"}
Progress = Callable[[int, int], None]


def parse_time(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    raise AdminError(f"{where}: timestamp must be ISO 8601 or epoch seconds, got {value!r}")


def parse_import_line(line: str, lineno: int) -> Message:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AdminError(f"line {lineno}: not JSON ({exc.msg})") from None
    if not isinstance(d, dict):
        raise AdminError(f"line {lineno}: expected a JSON object")
    role, content = d.get("role"), d.get("content")
    if role not in ROLES:
        raise AdminError(f"line {lineno}: role must be one of {', '.join(sorted(ROLES))}")
    if not isinstance(content, str) or not content.strip():
        raise AdminError(f"line {lineno}: content must be a non-empty string")
    if "timestamp" not in d:
        raise AdminError(f"line {lineno}: timestamp is missing")
    name = d.get("name", "")
    if not isinstance(name, str):
        raise AdminError(f"line {lineno}: name must be a string")
    kind = "user_message" if role == "user" else "assistant" if role == "assistant" else "system_alert"
    return Message(role=role if role != "tool" else "system", content=content, kind=kind,  # type: ignore[arg-type]
                   ts=parse_time(d["timestamp"], f"line {lineno}"), id=uuid.uuid4().hex, name=name)


class Admin:
    def __init__(self, service: AdminHost) -> None:
        self.svc = service

    def audit(self, actor: str, action: str, user: str, **details: Any) -> None:
        log.info("admin %s on %s by %s", action, user, actor, extra={"details": details})

    @asynccontextmanager
    async def locked(self, user: str, wait_s: float = 60.0) -> AsyncIterator[None]:
        """Hold the user's lock: waits for a running step to finish."""
        redis, deadline = self.svc.redis, time.monotonic() + wait_s
        while (token := await redis.acquire(user, wait_s + 30)) is None:
            if time.monotonic() > deadline:
                raise AdminError(f"{user} is busy (a step is running); try again shortly")
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            await redis.release(user, token)

    async def state(self, user: str) -> AgentState:
        return await self.svc.states.load(user)

    # --- read -----------------------------------------------------------------------------------
    async def show(self, user: str) -> dict[str, Any]:
        state = await self.state(user)
        recall, archival = await self.svc.memory.counts(user)
        nxt = await self.svc.redis.scheduled_at(user)
        return {
            "user": user, "persona": state.persona.value, "human": state.human.value,
            "persona_limit": state.persona.limit, "human_limit": state.human.limit,
            "summary": state.summary, "fifo_messages": len(state.fifo),
            "recall_messages": recall, "archival_notes": archival,
            "last_edit": stamp(state.last_edit) if state.last_edit else None,
            "next_heartbeat": stamp(nxt) if nxt else None,
            "heartbeats_paused_until": stamp(state.paused_until) if state.paused_until > time.time() else None,
        }

    async def search(self, user: str, kind: Collection, query: str, limit: int = 5) -> list[dict[str, Any]]:
        if kind not in ("recall", "archival"):
            raise AdminError("kind must be recall or archival")
        if not query.strip():
            raise AdminError("query is empty")
        if not 1 <= limit <= 100:
            raise AdminError("limit must be between 1 and 100")
        when, _ = timeparse.find(query, time.time())  # dates in the query boost, as in the tools
        prefer = (when.since, when.until) if when else None
        hits = await self.svc.memory.search(kind, user, query, limit=limit, prefer=prefer)
        return [{"id": h.item.id, "text": h.item.text, "role": h.item.role,
                 "timestamp": datetime.fromtimestamp(h.item.ts, UTC).isoformat(),
                 "score": round(h.score, 4)} for h in hits]

    async def _all(self, kind: Collection, user: str) -> list[MemoryItem]:
        out: list[MemoryItem] = []
        while True:
            page = await self.svc.memory.by_time(kind, user, limit=500, offset=len(out))
            out.extend(page)
            if len(page) < 500:
                return out

    async def export(self, user: str, actor: str = "cli") -> dict[str, Any]:
        state = await self.state(user)
        self.audit(actor, "export", user)
        def items(xs: list[MemoryItem]) -> list[dict[str, Any]]:
            return [{"id": i.id, "role": i.role, "kind": i.kind, "text": i.text,
                     "timestamp": datetime.fromtimestamp(i.ts, UTC).isoformat(), "meta": i.meta}
                    for i in xs]
        return {"user": user, "exported_at": datetime.now(UTC).isoformat(),
                "core": {"persona": state.persona.value, "human": state.human.value},
                "summary": state.summary, "fifo": [m.to_dict() for m in state.fifo],
                "recall": items(await self._all("recall", user)),
                "archival": items(await self._all("archival", user))}

    # --- write ----------------------------------------------------------------------------------
    async def reset(self, user: str, actor: str = "cli") -> None:
        """Delete everything of one user: hot state, recall, archival, snapshots."""
        async with self.locked(user):
            await self.svc.writer.flush()
            await self.svc.redis.forget_user(user)
            await self.svc.memory.delete_user(user)
        self.audit(actor, "reset", user)

    async def forget_preview(self, user: str, query: str, limit: int = 10) -> list[dict[str, Any]]:
        return await self.search(user, "archival", query, limit)

    async def forget(self, user: str, ids: list[str], actor: str = "cli") -> int:
        if not ids:
            raise AdminError("nothing selected to forget")
        async with self.locked(user):
            found = await self.svc.store.get("archival", user, ids)
            if len(found) != len(set(ids)):
                raise AdminError("some items do not exist (or belong to someone else); nothing deleted")
            n = await self.svc.store.delete("archival", user, ids)
            state = await self.state(user)
            state.n_archival = max(0, state.n_archival - n)
            await self.svc.states.save(state)
        self.audit(actor, "forget", user, count=n)
        return n

    async def import_lines(self, user: str, lines: Iterable[str], progress: Progress | None = None,
                           actor: str = "cli", batch: int = 256) -> int:
        """Import JSON-lines messages into recall. Validates every line first: a bad line
        changes nothing."""
        msgs = [parse_import_line(line, i) for i, line in enumerate(lines, 1) if line.strip()]
        if not msgs:
            raise AdminError("no messages to import")
        for start in range(0, len(msgs), batch):
            chunk = msgs[start:start + batch]
            await self.svc.memory.write("recall", [recall_item(user, m) for m in chunk])
            if progress:
                progress(min(start + batch, len(msgs)), len(msgs))
        async with self.locked(user):
            state = await self.state(user)
            state.n_recall += len(msgs)
            await self.svc.states.save(state)
        self.audit(actor, "import", user, count=len(msgs))
        return len(msgs)

    async def link(self, identity: str, target: str, actor: str = "cli") -> None:
        """Make a platform identity (platform:scope:id) share the memory of ``target``."""
        for key in (identity, target):
            if key.count(":") < 2 or " " in key:
                raise AdminError(f"'{key}' is not a user key like discord:GUILD:ID or slack:TEAM:ID")
        await self.svc.redis.set_alias(identity, None if identity == target else target)
        self.audit(actor, "link", identity, target=target)

    async def summarize(self, user: str, actor: str = "cli") -> int:
        """Compact the FIFO into the recursive summary now (evicted messages stay in recall)."""
        async with self.locked(user):
            state = await self.state(user)
            evicted = await self.svc.context.flush(state)
            await self.svc.states.save(state)
        self.audit(actor, "summarize", user, evicted=len(evicted))
        return len(evicted)

    async def heartbeat_now(self, user: str, actor: str = "cli") -> str:
        """Queue a heartbeat through the user's queue and process it when no worker does."""
        from bot.events import Channel, Event, UserRef
        platform, scope, uid = (user.split(":", 2) + ["", ""])[:3]
        event = Event(kind="heartbeat", user=UserRef(platform=platform, scope=scope, user_id=uid),
                      text="Heartbeat requested by an admin.", channel=Channel(where="system"),
                      memory_key=user)
        status = await self.svc.submit(event)
        self.audit(actor, "heartbeat", user, status=status)
        if status == "accepted" and not self.svc.running:
            await self.svc.inbox.process_user(user)
        return status

    async def edit(self, user: str, fn: Callable[[AgentState], str]) -> str:
        """Apply a local edit to the hot state under the lock (terminal commands)."""
        async with self.locked(user):
            state = await self.state(user)
            out = fn(state)
            await self.svc.states.save(state)
            return out

    async def resolve(self, identity: str) -> str:
        """The memory key an identity uses (its link target, or itself)."""
        return await self.svc.redis.get_alias(identity) or identity

    async def status(self) -> dict[str, Any]:
        """Service overview for admins: users, queue, running flag, readiness checks."""
        redis, checks = self.svc.redis, dict(self.svc.checks)

        async def ok(check: Callable[[], Awaitable[bool]]) -> bool:
            try:
                return bool(await asyncio.wait_for(check(), 2.0))
            except Exception:
                return False

        results = await asyncio.gather(*(ok(c) for c in checks.values()))
        return {"known_users": len(await redis.known_users()), "queue_depth": await redis.queue_depth(),
                "active_users": len(await redis.active_users()), "running": self.svc.running,
                "checks": dict(zip(checks, results, strict=True))}
