"""The durable audit trail of actions on a person's memory (shown by ``/memory audit``).

Each entry (who, what, target, when, details) is kept in the vector store's per-user
document slot (``AUDIT_DOC``), which is durable: a Redis flush or a process restart loses
none, and ``LOG_LEVEL`` does not matter. The newest ``KEEP`` entries of a person are kept.
Every entry is also logged at WARNING with its details in the message text (never message
bodies: details are counts, kinds and ids).

A memory reset deletes the person's documents, so ``record`` after the reset writes the
reset entry into a fresh trail: the person still learns who reset their memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.protocols import VectorStore

log = logging.getLogger("membot.audit")
AUDIT_DOC = "audit"
KEEP = 500


@dataclass(frozen=True)
class AuditEntry:
    ts: float
    actor: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEntry:
        return cls(ts=float(d["ts"]), actor=str(d["actor"]), action=str(d["action"]),
                   target=str(d["target"]), details=dict(d.get("details") or {}))


class AuditLog:
    """Append and read a person's audit trail (read-modify-write under a per-user lock)."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    def _lock(self, user: str) -> asyncio.Lock:
        lock = self._locks.pop(user, None) or asyncio.Lock()
        self._locks[user] = lock
        while len(self._locks) > 10_000:
            self._locks.popitem(last=False)
        return lock

    async def record(self, actor: str, action: str, target: str, **details: Any) -> AuditEntry:
        entry = AuditEntry(time.time(), actor, action, target, details)
        shown = " ".join(f"{k}={v}" for k, v in sorted(details.items()))
        log.warning("audit: %s on %s by %s %s", action, target, actor, shown)
        async with self._lock(target):
            entries = await self._read(target)
            entries.append(asdict(entry))
            await self.store.put_doc(target, AUDIT_DOC, {"entries": entries[-KEEP:]})
        return entry

    async def entries(self, target: str) -> list[AuditEntry]:
        """The person's trail, oldest first."""
        return [AuditEntry.from_dict(d) for d in await self._read(target)]

    async def _read(self, target: str) -> list[dict[str, Any]]:
        doc = await self.store.get_doc(target, AUDIT_DOC) or {}
        raw = doc.get("entries")
        return list(raw) if isinstance(raw, list) else []
