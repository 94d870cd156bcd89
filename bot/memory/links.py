"""Identity links: several platform identities of one person sharing one memory.

Proof of ownership: ``/memory link`` from identity A gives a one-time code (shown only to
A, valid ``CODE_TTL_S``); ``/memory link CODE`` from identity B makes B share A's memory.
One direction everywhere: the identity that confirms joins the memory of the one that
asked. B is refused when it is linked elsewhere already, when others share B's memory,
or when B has memory of its own (reset or export it first: nothing is merged or orphaned
silently). Wrong codes are rate-limited per identity.

Durable: each link is a document in the vector store (``LINK_DOC`` under the linked
identity, ``LINKED_DOC`` listing the identities under the memory they share), so a Redis
flush loses none; Redis only caches the lookup (``NO_LINK`` caches "not linked").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable

from bot.errors import AdminError
from bot.protocols import VectorStore
from bot.stores.redis_store import RedisStore

LINK_DOC = "link"
LINKED_DOC = "linked"
NO_LINK = "-"
CODE_TTL_S = 600
NEGATIVE_TTL_S = 86_400
MAX_TRIES = 5  # wrong codes per identity per CODE_TTL_S
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class Links:
    def __init__(self, redis: RedisStore, store: VectorStore) -> None:
        self.redis = redis
        self.store = store

    async def resolve(self, identity: str) -> str:
        """The memory key an identity uses: its link target, or itself."""
        cached = await self.redis.get_alias(identity)
        if cached is not None:
            return identity if cached == NO_LINK else cached
        doc = await self.store.get_doc(identity, LINK_DOC) or {}
        target = str(doc.get("target") or "")
        await self.redis.set_alias(identity, target or NO_LINK, None if target else NEGATIVE_TTL_S)
        return target or identity

    async def linked(self, memory: str) -> list[str]:
        """The identities that share ``memory`` (besides its own)."""
        doc = await self.store.get_doc(memory, LINKED_DOC) or {}
        return sorted(str(i) for i in doc.get("identities") or [])

    # --- proof by one-time code -------------------------------------------------------------
    async def offer(self, identity: str) -> str:
        """A one-time code that lets another identity join ``identity``'s memory."""
        memory = await self.resolve(identity)
        code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        await self.redis.put_code(self.redis.keys.link_code(code),
                                  json.dumps({"memory": memory, "issuer": identity}), CODE_TTL_S)
        return code

    async def accept(self, identity: str, code: str,
                     has_memory: Callable[[str], Awaitable[bool]]) -> str:
        """Make ``identity`` share the memory the code was issued for; returns that key."""
        tries = self.redis.keys.link_tries(identity)
        if await self.redis.incr_with_ttl(tries, CODE_TTL_S) > MAX_TRIES:
            raise AdminError("too many link attempts; wait 10 minutes and ask for a new code")
        raw = await self.redis.take(self.redis.keys.link_code(code.strip().upper()))
        if raw is None:
            raise AdminError("that code is unknown or expired; run `/memory link` again on the "
                             "account whose memory you want to share")
        memory = str(json.loads(raw)["memory"])
        await self.check_can_join(identity, memory, has_memory)
        await self._link(identity, memory)
        return memory

    async def check_can_join(self, identity: str, memory: str,
                             has_memory: Callable[[str], Awaitable[bool]]) -> None:
        if identity == memory or await self.resolve(identity) == memory:
            raise AdminError(f"{identity} already uses that memory")
        if await self.resolve(identity) != identity:
            raise AdminError(f"{identity} already shares another memory; `/memory unlink` it first")
        if await self.linked(identity):
            raise AdminError(f"other identities share the memory of {identity}; unlink them first")
        if await has_memory(identity):
            raise AdminError(f"{identity} has memory of its own, which would be lost: export or "
                             "`/memory reset` it first, then link again (nothing changed)")

    # --- changes ------------------------------------------------------------------------------
    async def link(self, identity: str, memory: str,
                   has_memory: Callable[[str], Awaitable[bool]]) -> None:
        """Operators (CLI): link without a code, with the same refusals."""
        await self.check_can_join(identity, memory, has_memory)
        await self._link(identity, memory)

    async def restore(self, identity: str, memory: str) -> None:
        """An import of an export: re-create a link it lists (checked by the importer)."""
        await self._link(identity, memory)

    async def _link(self, identity: str, memory: str) -> None:
        await self.store.put_doc(identity, LINK_DOC, {"target": memory})
        others = set(await self.linked(memory)) | {identity}
        await self.store.put_doc(memory, LINKED_DOC, {"identities": sorted(others)})
        await self.redis.set_alias(identity, memory)

    async def _unlink(self, identity: str, memory: str) -> None:
        await self.store.put_doc(identity, LINK_DOC, {})
        others = set(await self.linked(memory)) - {identity}
        await self.store.put_doc(memory, LINKED_DOC, {"identities": sorted(others)})
        await self.redis.set_alias(identity, NO_LINK, NEGATIVE_TTL_S)

    async def unlink(self, identity: str) -> list[str]:
        """A linked identity leaves the shared memory; a memory's own identity lets every
        other go. Returns the identities unlinked."""
        memory = await self.resolve(identity)
        gone = [identity] if memory != identity else await self.linked(identity)
        for other in gone:
            await self._unlink(other, memory)
        return gone

    async def forget(self, memory: str) -> int:
        """Reset: every link to ``memory`` goes, both ways. Returns how many."""
        gone = await self.linked(memory)
        for other in gone:
            await self._unlink(other, memory)
        return len(gone)
