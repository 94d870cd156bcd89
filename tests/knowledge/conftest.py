"""Knowledge fixtures: a real embedded Qdrant store and the real embedder; a store wrapper
that fails one chosen operation (to prove a failed write leaves the previous version)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import StoreError


class FailingStore:
    """Delegates to a real store; ``fail_on`` = (method, name-or-collection) raises once set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_on: tuple[str, str] | None = None

    def _check(self, method: str, arg: str) -> None:
        if self.fail_on == (method, arg):
            raise StoreError(f"injected failure in {method}({arg})")

    async def put_doc(self, user: str, name: str, doc: dict[str, Any]) -> None:
        self._check("put_doc", name.split(":")[0])
        await self.inner.put_doc(user, name, doc)

    async def upsert(self, collection: Any, items: Any, vectors: Any) -> None:
        self._check("upsert", collection)
        await self.inner.upsert(collection, items, vectors)

    async def delete(self, collection: Any, user: str, ids: Any = None) -> int:
        if ids is None or await self.inner.get(collection, user, ids):  # only real deletions
            self._check("delete", collection)
        return int(await self.inner.delete(collection, user, ids))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def store(tmp_path: Path, embedder: Any) -> AsyncIterator[Any]:
    from bot.stores.qdrant_edge import EdgeVectorStore

    s = EdgeVectorStore(tmp_path / "qdrant", prefix="k")
    await s.start(embedder.dim)
    yield s
    await s.close()


@pytest.fixture
def kb(store: Any, embedder: Any) -> Any:
    from bot.knowledge.base import KnowledgeBase

    return KnowledgeBase(store, embedder, max_bytes=200_000, chunk_chars=400)


@pytest.fixture
def failing(store: Any, embedder: Any) -> tuple[Any, FailingStore]:
    from bot.knowledge.base import KnowledgeBase

    wrapped = FailingStore(store)
    return KnowledgeBase(wrapped, embedder, max_bytes=200_000, chunk_chars=400), wrapped
