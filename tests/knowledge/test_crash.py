"""A real process crash between writing a new version's chunks and the version switch:
after a restart the previous version is current and complete, the half-written one is
never returned, and adding the file again finishes the job."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.knowledge.base import KnowledgeBase
from bot.stores.qdrant_edge import EdgeVectorStore
from tests.conftest import MODEL_DIR

REPO = Path(__file__).resolve().parents[2]
V1 = "# Guide\n\n## Setup\n\nInstall with the blue installer.\n\n## Support\n\nMail the help desk.\n"
V2 = V1.replace("blue installer", "green installer") + "\n## Billing\n\nPay by card.\n"
SCRIPT = """
import asyncio, os, sys
from bot.config import Settings
from bot.knowledge.base import KnowledgeBase
from bot.memory.embeddings import build_embedder
from bot.stores.qdrant_edge import EdgeVectorStore

path, model, v1, v2 = sys.argv[1:5]

class CrashAtSwitch(EdgeVectorStore):
    armed = False
    async def put_doc(self, user, name, doc):
        if self.armed and name == "catalog":
            os._exit(9)  # the process dies: no close, no flush, no cleanup
        await super().put_doc(user, name, doc)

async def main():
    emb = build_embedder(Settings(_env_file=None, embedding_model_path=model))
    store = CrashAtSwitch(path, prefix="c")
    await store.start(emb.dim)
    kb = KnowledgeBase(store, emb)
    await kb.add("global", "guide.md", v1.encode(), actor="a")
    store.armed = True
    await kb.add("global", "guide.md", v2.encode(), actor="b")

asyncio.run(main())
"""


async def test_crash_before_the_switch_keeps_the_previous_version(tmp_path: Path, embedder: Any) -> None:
    """The writer dies right before the catalog write of v2; v1 survives intact."""
    path = tmp_path / "q"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, str(path), str(MODEL_DIR), V1, V2, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 9, err.decode()
    store = EdgeVectorStore(path, prefix="c")
    await store.start(embedder.dim)
    try:
        kb = KnowledgeBase(store, embedder)
        rec, history = await kb.show("global", "guide.md")
        assert rec.version == 1 and [e["version"] for e in history] == [1]
        assert await store.count("knowledge", "global") == 2 + 3  # v1 plus the orphaned v2 chunks
        hits = await kb.search(["global"], "which installer, billing by card", limit=10)
        assert {h.version for h in hits} == {1} and len(hits) == 2
        assert all("green" not in h.text and "card" not in h.text for h in hits)
        out = await kb.add("global", "guide.md", V2.encode(), actor="b")
        assert out.version == 2 and await store.count("knowledge", "global") == 3
        assert {h.version for h in await kb.search(["global"], "installer", limit=10)} == {2}
    finally:
        await store.close()
