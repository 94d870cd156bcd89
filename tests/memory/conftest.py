"""Fixtures of the memory tests: long-term memory over each vector store backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.memory.longterm import LongTermMemory
from bot.protocols import VectorStore
from bot.stores.qdrant_edge import EdgeVectorStore
from bot.stores.qdrant_server import ServerVectorStore


@pytest.fixture(params=["edge", "server"])
async def memory(request: pytest.FixtureRequest, tmp_path: Path, embedder: Any) -> AsyncIterator[LongTermMemory]:
    store: VectorStore = (EdgeVectorStore(tmp_path / "q", prefix="t") if request.param == "edge"
                          else ServerVectorStore(location=":memory:", prefix="t"))
    await store.start(embedder.dim)
    yield LongTermMemory(store, embedder)
    await store.close()
