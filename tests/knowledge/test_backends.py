"""The ``knowledge`` collection in both VectorStore backends (embedded qdrant-edge and the
qdrant-client code path in local mode): scope as tenant key, versions, removal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.base import KnowledgeBase
from bot.stores.qdrant_edge import EdgeVectorStore
from bot.stores.qdrant_server import ServerVectorStore

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


@pytest.fixture(params=["edge", "server"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path, embedder: Any) -> AsyncIterator[Any]:
    s: Any = (EdgeVectorStore(tmp_path / "q", prefix="kb") if request.param == "edge"
              else ServerVectorStore(location=":memory:", prefix="kb"))
    await s.start(embedder.dim)
    yield s
    await s.close()


async def test_knowledge_is_a_collection_of_its_own_keyed_by_scope(backend: Any, embedder: Any) -> None:
    """Chunks live in the knowledge collection under their scope: not in recall/archival, not
    under another scope, and a new version replaces them in either backend."""
    kb = KnowledgeBase(backend, embedder, chunk_chars=400)
    doc = b"# Rules\n\n## Voice\n\nNo music bots in the study channel.\n\n## Roles\n\nAsk a moderator.\n"
    await kb.add("discord:42", "rules.md", doc, actor="a")
    assert await backend.count("knowledge", "discord:42") == 2
    assert await backend.count("knowledge", "discord:43") == 0
    assert await backend.count("archival", "discord:42") == 0
    hits = await kb.search(["discord:42"], "music bots allowed in study?", limit=2)
    assert hits[0].section == "Voice" and hits[0].source == "rules.md"
    assert await kb.search(["discord:43", "global"], "music bots allowed in study?", limit=2) == []
    out = await kb.add("discord:42", "rules.md", doc.replace(b"Ask a moderator.", b"Ask an admin."), actor="b")
    assert out.version == 2 and await backend.count("knowledge", "discord:42") == 2
    await kb.remove("discord:42", "rules.md", actor="a")
    assert await backend.count("knowledge", "discord:42") == 0
