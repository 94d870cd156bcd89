"""Memory operations shared by the CLI, the terminal chat, Discord and Slack.

Every operation runs under the user's lock (never concurrently with a step), validates
its input before changing anything, and keeps a durable audit entry of who did what
(``bot.ops.audit``). These are operator-level operations (the CLI, the terminal chat):
platform commands reach them only through ``bot.ops.access``, which checks who may act on
whose memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import AdminError
from bot.memory import timeparse
from bot.memory.core import AgentState
from bot.memory.health import HealthLog
from bot.memory.longterm import speaker, words
from bot.memory.reorganize import reorganize
from bot.memory.states import SNAPSHOT
from bot.messages import event_message_id, stamp
from bot.ops import forget, transfer
from bot.ops.deadletters import DeadLetters
from bot.protocols import Collection, MemoryItem

if TYPE_CHECKING:
    from bot.agent.context import ContextManager
    from bot.events import Event
    from bot.memory.links import Links
    from bot.memory.longterm import LongTermMemory
    from bot.memory.recall_writer import RecallWriter
    from bot.memory.states import StateRepo
    from bot.ops.audit import AuditLog
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
    audit_log: AuditLog
    links: Links

    @property
    def running(self) -> bool: ...

    async def submit(self, event: Event) -> Submitted: ...

log = logging.getLogger("membot.admin")
Progress = Callable[[int, int], None]


class Admin:
    def __init__(self, service: AdminHost) -> None:
        self.svc = service

    async def audit(self, actor: str, action: str, user: str, **details: Any) -> None:
        """Keep a durable entry of an action on ``user``'s memory (shown by /memory audit)."""
        await self.svc.audit_log.record(actor, action, user, **details)

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
        links = await self.svc.links.linked(user)
        return {"links": links, "memory_paused": state.memory_paused,
            "user": user, "persona": state.persona.value, "human": state.human.value,
            "persona_limit": state.persona.limit, "human_limit": state.human.limit,
            "summary": state.summary, "fifo_messages": len(state.fifo),
            "recall_messages": recall, "archival_notes": archival,
            "last_edit": stamp(state.last_edit) if state.last_edit else None,
            "next_heartbeat": stamp(nxt) if nxt else None,
            "heartbeats_paused_until": stamp(state.paused_until) if state.paused_until > time.time() else None,
            "memory_health": await HealthLog(self.svc.redis).report(user, recall + archival),
        }

    async def stats(self) -> dict[str, Any]:
        """Memory health of every known user and of the deployment (bot.memory.health)."""
        log = HealthLog(self.svc.redis)
        users = []
        for user in await self.svc.redis.known_users():
            items = sum(await self.svc.memory.counts(user))
            await log.note_size(user, items)
            users.append({"user": user, **await log.report(user, items)})
        searches = sum(u["searches"] for u in users)
        grown = [u["growth_per_day"] for u in users if u["growth_per_day"] is not None]
        return {"users": users, "searches": searches, "used": sum(u["used"] for u in users),
                "hit_rate": sum(u["used"] for u in users) / searches if searches else None,
                "items": sum(u["items"] for u in users),
                "growth_per_day_median": sorted(grown)[len(grown) // 2] if grown else None}

    async def reorganize(self, user: str, threshold: float, dry_run: bool = False,
                         actor: str = "cli") -> dict[str, Any]:
        """Merge duplicate archival notes and resolve supersession (bot.memory.reorganize)."""
        async with self.locked(user):
            report = await reorganize(self.svc.memory, user, threshold, dry_run=dry_run)
        if not dry_run:
            await self.audit(actor, "reorganize", user, **report.counts())
        return report.as_dict()

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
        # what was said and by whom, without the event headers the agent sees
        return [{"id": h.item.id, "text": words(h.item) or h.item.text, "speaker": speaker(h.item),
                 "role": h.item.role, "timestamp": datetime.fromtimestamp(h.item.ts, UTC).isoformat(),
                 "score": round(h.score, 4)} for h in hits]

    async def _all(self, kind: Collection, user: str) -> list[MemoryItem]:
        out: list[MemoryItem] = []
        while True:
            page = await self.svc.memory.by_time(kind, user, limit=500, offset=len(out))
            out.extend(page)
            if len(page) < 500:
                return out

    async def export_records(self, user: str, actor: str = "cli") -> list[dict[str, Any]]:
        """Everything of one user in the export format (bot.ops.transfer), header first."""
        await self.svc.writer.flush()  # messages still queued for recall are part of it
        state = await self.state(user)
        records = transfer.export_records(user, state, await self._all("recall", user),
                                          await self._all("archival", user),
                                          await self.svc.links.linked(user))
        await self.audit(actor, "export", user)
        return records

    async def export(self, user: str, actor: str = "cli") -> dict[str, Any]:
        """The export as one JSON document (chat downloads); ``membot memory import`` reads it."""
        return transfer.as_document(await self.export_records(user, actor))

    async def export_lines(self, user: str, actor: str = "cli") -> list[str]:
        """The export as JSON lines (``membot memory export``)."""
        return transfer.as_lines(await self.export_records(user, actor))

    # --- users ------------------------------------------------------------------------------------
    async def known_users(self) -> list[str]:
        """Every user key with memory in this deployment (``membot memory reorganize --all``)."""
        return list(await self.svc.redis.known_users())

    async def find_user(self, name: str) -> str:
        """A full key as given; a short name (``alice``) when exactly one known user key
        ends with it. Otherwise AdminError listing the candidates (or some known keys)."""
        if name.count(":") >= 2:
            return name
        known = await self.svc.redis.known_users()
        matches = [u for u in known if u.split(":", 2)[-1] == name or u.endswith(":" + name)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AdminError(f"'{name}' matches several users: {', '.join(matches[:20])}; "
                             "give the full key")
        some = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
        raise AdminError(f"no user matches '{name}' (known: {some or 'none'}); give a full key "
                         "like terminal:local:NAME, discord:GUILD:ID or slack:TEAM:ID")

    async def has_memory(self, user: str) -> bool:
        """Whether anything is stored under a key: hot state, snapshot, recall or archival."""
        if await self.svc.redis.get_state(user) is not None:
            return True
        if await self.svc.store.get_doc(user, SNAPSHOT) is not None:
            return True
        return any(await self.svc.memory.counts(user))

    async def require_memory(self, user: str) -> None:
        if not await self.has_memory(user):
            raise AdminError(f"{user} has no memory: nothing is stored under this key")

    # --- write ----------------------------------------------------------------------------------
    async def reset(self, user: str, actor: str = "cli") -> dict[str, int]:
        """Delete everything of one user, under their lock: hot state, queued events,
        outbox, recall queue, dedupe keys, schedules, rate and budget counters (Redis);
        recall, archival, snapshots (vector store). The user's generation goes up first, so
        a recall writer on any replica drops a batch it read before. Returns the receipt:
        counts per store."""
        async with self.locked(user):
            state = await self.state(user)
            receipt = {"fifo_messages": len(state.fifo)}
            receipt |= await self.svc.redis.forget_user(user)
            receipt["links"] = await self.svc.links.forget(user)  # both ways, before the docs go
            receipt |= await self.svc.memory.delete_user(user)
        await self.audit(actor, "reset", user, **receipt)
        return receipt

    async def forget_preview(self, user: str, query: str, limit: int = 10) -> list[dict[str, Any]]:
        return await self.search(user, "archival", query, limit)

    async def forget_plan(self, user: str, query: str) -> tuple[AgentState, forget.ForgetPlan]:
        """Everything of ``user`` that ``query`` names (see bot.ops.forget); changes nothing."""
        await self.svc.writer.flush()  # queued recall items are searched too
        state = await self.state(user)
        recall, archival = await self._all("recall", user), await self._all("archival", user)
        return state, forget.plan(state, query, recall, archival)

    async def forget_text(self, user: str, query: str, actor: str = "cli") -> dict[str, int]:
        """Remove a fact from core memory, summaries, FIFO, recall and archival, under the
        user's lock. Returns the receipt (counts per store)."""
        async with self.locked(user):
            state, plan = await self.forget_plan(user, query)
            forget.apply(state, plan)
            store = self.svc.store
            await self.svc.redis.tombstone(user, forget.recall_ids(plan))  # late writers too
            n_recall = await store.delete("recall", user, forget.recall_ids(plan))
            n_archival = await store.delete("archival", user, [i.id for i in plan.archival])
            state.n_recall = max(0, state.n_recall - n_recall)
            state.n_archival = max(0, state.n_archival - n_archival)
            if plan.core:
                state.last_edit = time.time()
            await self.svc.states.save(state)
        receipt = plan.counts() | {"recall": n_recall, "archival": n_archival}
        await self.audit(actor, "forget", user, **receipt)
        return receipt

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
        await self.audit(actor, "forget", user, count=n)
        return n

    async def forget_message(self, event_id: str) -> str | None:
        """A message the platform reports deleted (its event id) leaves recall and the
        FIFO of whoever said it. Returns that memory key, or None when it is not kept."""
        item_id = event_message_id(event_id)
        await self.svc.writer.flush()
        found = await self.svc.store.find("recall", [item_id])
        if not found:
            return None
        user = found[0].user
        async with self.locked(user):
            await self.svc.redis.tombstone(user, [item_id])
            n = await self.svc.store.delete("recall", user, [item_id])
            state = await self.state(user)
            state.fifo = [m for m in state.fifo if m.id != item_id]
            state.n_recall = max(0, state.n_recall - n)
            await self.svc.states.save(state)
        await self.audit("platform", "message_deleted", user, recall=n)
        return user

    async def import_lines(self, user: str, lines: Iterable[str], progress: Progress | None = None,
                           actor: str = "cli", batch: int = 256) -> dict[str, int]:
        """Import an export (or plain message lines) into ``user`` (bot.ops.transfer). Every
        line is checked first: any bad line changes nothing. Idempotent. Core blocks and
        summary, when present, replace the current ones. Returns counts of what is new."""
        parsed = transfer.parse(list(lines), user)
        for identity in parsed.links:
            current = await self.svc.links.resolve(identity)
            if identity == user or current not in (identity, user):
                raise AdminError(f"{identity} is linked to {current}; nothing imported")
        total = len(parsed.recall) + len(parsed.archival)
        async with self.locked(user, wait_s=120.0):
            counts = {"recall": 0, "archival": 0}
            for kind, items in (("recall", parsed.recall), ("archival", parsed.archival)):
                items = list({i.id: i for i in items}.values())  # the same item twice: once
                for start in range(0, len(items), batch):
                    chunk = items[start:start + batch]
                    known = await self.svc.store.get(kind, user, [i.id for i in chunk])  # type: ignore[arg-type]
                    counts[kind] += len(chunk) - len(known)
                    await self.svc.memory.write(kind, chunk)  # type: ignore[arg-type]
                    if progress:
                        progress(min(start + batch, len(items)) + (len(parsed.recall) if kind == "archival" else 0), total)
            await self._import_state(user, parsed)
            for identity in parsed.links:
                await self.svc.links.restore(identity, user)
        counts.update(links=len(parsed.links), core=int(parsed.core is not None),
                      summary=int(parsed.summary is not None), lines=total)
        await self.audit(actor, "import", user, **counts)
        return counts

    async def _import_state(self, user: str, parsed: transfer.Parsed) -> None:
        """Core blocks and summary from the import, counts from the store; a user without hot
        state gets it rebuilt from the imported recall."""
        fresh = await self.svc.redis.get_state(user) is None
        state = await (self.svc.states.rebuild(user) if fresh else self.state(user))
        if parsed.core is not None:
            core = parsed.core
            state.persona.value, state.persona.limit = core["persona"]["value"], core["persona"]["limit"]
            state.human.value, state.human.limit = core["human"]["value"], core["human"]["limit"]
            state.last_edit, state.last_seen = core["last_edit"], max(state.last_seen, core["last_seen"])
            state.paused_until = core["paused_until"]
        if parsed.summary is not None:
            state.summary = parsed.summary
        state.n_recall, state.n_archival = await self.svc.memory.counts(user)
        await self.svc.states.save(state)

    async def link(self, identity: str, target: str, actor: str = "cli") -> None:
        """Operators: make a platform identity (platform:scope:id) share the memory of
        ``target`` (``identity == target`` unlinks it). Refused when the identity is linked
        elsewhere or has memory of its own (see bot.memory.links); durable, audited."""
        for key in (identity, target):
            if key.count(":") < 2 or " " in key:
                raise AdminError(f"'{key}' is not a user key like discord:GUILD:ID or slack:TEAM:ID")
        if identity == target:
            await self.svc.links.unlink(identity)
            await self.audit(actor, "unlink", identity)
            return
        memory = await self.resolve(target)
        await self.svc.links.link(identity, memory, self.has_memory)
        await self.audit(actor, "link", memory, identity=identity)

    async def set_memory_paused(self, user: str, paused: bool, actor: str = "cli") -> int:
        """/memory pause (the bot answers but stores nothing beyond the FIFO) or resume
        (what was said while paused leaves the FIFO). Returns messages dropped on resume."""
        async with self.locked(user):
            state = await self.state(user)
            dropped = 0
            if paused:
                state.memory_paused = True
            else:
                dropped = state.resume_memory()
            await self.svc.states.save(state)
        await self.audit(actor, "pause" if paused else "resume", user, dropped=dropped)
        return dropped

    async def summarize(self, user: str, actor: str = "cli") -> int:
        """Compact the FIFO into the recursive summary now (evicted messages stay in recall)."""
        async with self.locked(user):
            state = await self.state(user)
            evicted = await self.svc.context.flush(state)
            await self.svc.states.save(state)
        await self.audit(actor, "summarize", user, evicted=len(evicted))
        return len(evicted)

    async def heartbeat_now(self, user: str, actor: str = "cli") -> str:
        """Queue a heartbeat through the user's queue and process it when no worker does."""
        from bot.events import Channel, Event, UserRef
        platform, scope, uid = (user.split(":", 2) + ["", ""])[:3]
        event = Event(kind="heartbeat", user=UserRef(platform=platform, scope=scope, user_id=uid),
                      text="Heartbeat requested by an admin.", channel=Channel(where="system"),
                      memory_key=user)
        status = await self.svc.submit(event)
        await self.audit(actor, "heartbeat", user, status=status)
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
        return await self.svc.links.resolve(identity)

    # --- dead letters (bot.ops.deadletters) ------------------------------------------------------
    async def dead_letters(self) -> list[dict[str, Any]]:
        """What membot gave up on, oldest first, without the raw payloads."""
        return await DeadLetters(self.svc.redis).listing()

    async def retry_dead_letters(self, ids: list[str], everything: bool = False) -> int:
        """Queue the chosen dead letters again; how many."""
        return await DeadLetters(self.svc.redis).retry(ids, everything)

    async def drop_dead_letters(self, ids: list[str], everything: bool = False) -> int:
        """Delete the chosen dead letters; how many."""
        return await DeadLetters(self.svc.redis).drop(ids, everything)

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
