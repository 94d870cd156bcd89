"""Both VectorStore backends (embedded qdrant-edge, and the qdrant-client code path in
local mode) against the real fastembed embedder with the offline MiniLM model."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.errors import DimensionMismatch, EmbeddingError, StoreError
from bot.memory.embeddings import FastEmbedEmbedder, OpenAIEmbedder
from bot.protocols import Collection, MemoryItem, VectorStore
from bot.stores.qdrant_edge import EdgeVectorStore
from bot.stores.qdrant_server import ServerVectorStore
from bot.testing.fake_openai import FakeOpenAI
from tests.conftest import MODEL_CACHE, MODEL_DIR

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "all-MiniLM-L6-v2-onnx"


@pytest.fixture(scope="session")
def embedder() -> FastEmbedEmbedder:
    return FastEmbedEmbedder(model_path=MODEL_DIR, cache_dir=MODEL_CACHE, batch_size=16)


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                embedder: FastEmbedEmbedder) -> AsyncIterator[VectorStore]:
    s: VectorStore
    if request.param == "edge":
        s = EdgeVectorStore(tmp_path / "qdrant", prefix="t")
    else:
        s = ServerVectorStore(location=":memory:", prefix="t")
    await s.start(embedder.dim)
    yield s
    await s.close()


async def put(store: VectorStore, embedder: FastEmbedEmbedder, user: str, texts: Sequence[str],
              *, ts0: float = 1000.0, collection: Collection = "recall") -> list[MemoryItem]:
    items = [MemoryItem(id=uuid.uuid4().hex, user=user, text=t, ts=ts0 + i, role="user",
                        kind="message", meta={"n": i}) for i, t in enumerate(texts)]
    await store.upsert(collection, items, await embedder.embed(texts))
    return items


async def texts_of(store: VectorStore, embedder: FastEmbedEmbedder, user: str, query: str,
                   **kw: object) -> list[str]:
    vector = (await embedder.embed([query]))[0]
    hits = await store.search("recall", user, text=query, vector=vector, **kw)  # type: ignore[arg-type]
    return [h.item.text for h in hits]


CORPUS = [
    "I adopted a golden retriever puppy named Biscuit last month",
    "My flight to Lisbon leaves on Friday morning",
    "I can't stand cilantro, it tastes like soap to me",
    "Work has been stressful because of the product launch",
    "My sister Emma is getting married in June",
    "I started learning to play the cello",
]

TRIP = [
    "Okonkwo from accounting finally answered my email about the invoices",
    "My friend Sam loved the hiking trip to the lake last weekend",
    "We went on a long hike with friends and everyone enjoyed it",
    "Did my sister like the camping trip? She said it was fun",
    "The mountain trail was beautiful, my friends want to go again",
    "Our hiking group met at the trailhead at seven",
    "My buddy Chris hated the rain during our trek",
    "Planning another outdoor trip with my college friends",
    "The hike was tough but my friend said it was worth it",
    "Everyone in the group liked the picnic after the walk",
    "My friend Priya asked if the trail was dog friendly",
]


# --- embedder --------------------------------------------------------------------------------
async def test_fastembed_vectors_are_normalized_and_semantic(embedder: FastEmbedEmbedder) -> None:
    """MiniLM gives 384-dim unit vectors and paraphrases score above unrelated text."""
    v = np.array(await embedder.embed(["I adopted a puppy", "My new dog is so cute",
                                       "The quarterly tax deadline is in April"]))
    assert embedder.dim == 384 and v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]


async def test_fastembed_batches_and_caches_queries(embedder: FastEmbedEmbedder) -> None:
    """Batched output equals one-by-one output; a repeated single text hits the query cache."""
    texts = [f"message number {i} about the garden" for i in range(40)]
    batched = await embedder.embed(texts)
    single = await embedder.embed([texts[7]])
    assert len(batched) == 40 and np.allclose(batched[7], single[0], atol=1e-5)
    assert await embedder.embed([texts[7]]) == single
    assert await embedder.embed([]) == []


async def test_fastembed_offline_without_model_raises_embedding_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline with an empty cache and no model path: EmbeddingError naming EMBEDDING_MODEL_PATH."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = FastEmbedEmbedder(cache_dir=tmp_path / "empty-cache")
    assert e.dim == 384  # known from fastembed's registry without loading
    with pytest.raises(EmbeddingError, match="EMBEDDING_MODEL_PATH"):
        await e.embed(["hello"])


async def test_fastembed_bad_model_path_raises_embedding_error(tmp_path: Path) -> None:
    """A model path without model.onnx fails with EmbeddingError, not a raw traceback."""
    e = FastEmbedEmbedder(model_path=tmp_path)
    with pytest.raises(EmbeddingError, match="EMBEDDING_MODEL_PATH"):
        await e.load()


async def test_int8_embeddings_agree_with_the_model_and_are_made_once(
        tmp_path: Path, embedder: FastEmbedEmbedder) -> None:
    """EMBEDDING_QUANTIZE=int8 quantizes the local model once into the cache dir (reused by
    the next instance) and gives unit vectors close to the full model's, same ordering."""
    if MODEL_DIR is None:
        pytest.skip("needs a local model directory (MEMBOT_TEST_MODEL_DIR or ../shared)")
    texts = ["I adopted a puppy", "My new dog is so cute", "The quarterly tax deadline is in April"]
    q = FastEmbedEmbedder(model_path=MODEL_DIR, cache_dir=tmp_path, quantize="int8")
    v = np.array(await q.embed(texts))
    full = np.array(await embedder.embed(texts))
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert all(float(a @ b) > 0.95 for a, b in zip(v, full, strict=True))
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]
    [made] = list((tmp_path / "int8").iterdir())
    onnx = made / "model.onnx"
    assert onnx.stat().st_size < (MODEL_DIR / "model.onnx").stat().st_size / 2  # int8 weights
    before = onnx.stat().st_mtime_ns
    again = FastEmbedEmbedder(model_path=MODEL_DIR, cache_dir=tmp_path, quantize="int8")
    assert np.allclose(await again.embed(texts), v, atol=1e-5)  # (activations are quantized per batch)
    assert onnx.stat().st_mtime_ns == before and len(list((tmp_path / "int8").iterdir())) == 1


async def test_int8_without_a_local_model_or_onnx_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No local model directory, or no onnx package: an EmbeddingError saying what to do."""
    with pytest.raises(EmbeddingError, match="EMBEDDING_MODEL_PATH"):
        await FastEmbedEmbedder(cache_dir=tmp_path, quantize="int8").load()
    if MODEL_DIR is None:
        return
    import sys
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(EmbeddingError, match=r"membot\[quantize\]"):
        await FastEmbedEmbedder(model_path=MODEL_DIR, cache_dir=tmp_path, quantize="int8").load()
    assert not (tmp_path / "int8").exists() or not any((tmp_path / "int8").iterdir())


async def test_fastembed_loads_unknown_model_name_from_path() -> None:
    """An unregistered model name with a local dir is registered (mean pooling + normalize)."""
    if MODEL_DIR is None:
        pytest.skip("needs a local model directory (MEMBOT_TEST_MODEL_DIR or ../shared)")
    e = FastEmbedEmbedder("acme/my-minilm", model_path=MODEL_DIR)
    assert e.dim == 384
    [v] = await e.embed(["hello there"])
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4


async def test_openai_embedder_batches_and_learns_dim() -> None:
    """The API embedder splits inputs into batches, keeps order and learns the size on load."""
    async with FakeOpenAI(embedding_dim=8) as fake:
        e = OpenAIEmbedder("nomic-embed-text", base_url=fake.base_url, batch_size=4)
        with pytest.raises(EmbeddingError, match="load"):
            _ = e.dim
        await e.load()
        assert e.dim == 8
        texts = [f"t{i}" for i in range(10)] + [""]
        vecs = await e.embed(texts)
        assert len(vecs) == 11 and vecs[3] == (await e.embed(["t3"]))[0]
        assert [len(r["input"]) for r in fake.embedding_requests[1:4]] == [4, 4, 3]
        await e.close()


async def test_openai_embedder_unreachable_is_embedding_error() -> None:
    """A refused connection to the embeddings endpoint surfaces as EmbeddingError."""
    e = OpenAIEmbedder("m", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=2, dim=8)
    with pytest.raises(EmbeddingError):
        await e.embed(["hello"])
    await e.close()


# --- search ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
async def test_search_returns_relevant_item_first(store: VectorStore, embedder: FastEmbedEmbedder,
                                                  mode: str) -> None:
    """A paraphrased question finds the matching message first."""
    await put(store, embedder, "alice", CORPUS)
    got = await texts_of(store, embedder, "alice", "what is the name of my new puppy?", limit=3, mode=mode)
    assert got[0] == CORPUS[0]
    hits = await store.search("recall", "alice", text="cello", vector=None, limit=2, mode="sparse")
    assert [h.item.text for h in hits] == [CORPUS[5]]
    assert hits[0].item.meta == {"n": 5} and hits[0].item.role == "user"


async def test_hybrid_finds_rare_name_dense_misses(store: VectorStore,
                                                   embedder: FastEmbedEmbedder) -> None:
    """A rare name ranks first in hybrid search while dense alone ranks it low."""
    await put(store, embedder, "alice", TRIP)
    query = "was Okonkwo happy on our trip"
    dense = await texts_of(store, embedder, "alice", query, limit=11, mode="dense")
    hybrid = await texts_of(store, embedder, "alice", query, limit=11, mode="hybrid")
    assert dense.index(TRIP[0]) >= 3
    assert hybrid[0] == TRIP[0]


async def test_search_of_stopwords_only_has_no_sparse_hits(store: VectorStore,
                                                           embedder: FastEmbedEmbedder) -> None:
    """Sparse search of stopwords returns nothing; hybrid still answers from the dense side."""
    await put(store, embedder, "alice", CORPUS)
    assert await store.search("recall", "alice", text="the and of", vector=None, limit=5,
                              mode="sparse") == []
    assert len(await texts_of(store, embedder, "alice", "the and of", limit=5)) == 5


async def test_search_pages_are_stable_and_disjoint(store: VectorStore,
                                                    embedder: FastEmbedEmbedder) -> None:
    """Offset pages concatenate to the single long result list, with no overlap."""
    await put(store, embedder, "alice", TRIP)
    query = "hiking with friends"
    full = await texts_of(store, embedder, "alice", query, limit=9)
    for _ in range(5):  # fused-score ties once made the engine's order vary between calls
        pages = [await texts_of(store, embedder, "alice", query, limit=3, offset=o)
                 for o in (0, 3, 6)]
        flat = [t for p in pages for t in p]
        assert flat == full and len(set(flat)) == 9


async def test_since_until_filter_search_and_by_time(store: VectorStore,
                                                     embedder: FastEmbedEmbedder) -> None:
    """since is inclusive, until exclusive, in search and in by_time."""
    items = await put(store, embedder, "alice", TRIP, ts0=100.0)
    window = {i.text for i in items if 103.0 <= i.ts < 106.0}
    got = await texts_of(store, embedder, "alice", "trip", limit=20, since=103.0, until=106.0)
    assert set(got) == window
    by_time = await store.by_time("recall", "alice", since=103.0, until=106.0)
    assert [i.ts for i in by_time] == [103.0, 104.0, 105.0]
    assert [i.ts for i in await store.by_time("recall", "alice", since=109.0)] == [109.0, 110.0]


async def test_by_time_orders_both_directions_with_paging(store: VectorStore,
                                                          embedder: FastEmbedEmbedder) -> None:
    """by_time pages oldest-first or newest-first without gaps or repeats."""
    items = await put(store, embedder, "alice", TRIP)
    asc = [i.id for i in await store.by_time("recall", "alice", limit=4)]
    asc += [i.id for i in await store.by_time("recall", "alice", limit=20, offset=4)]
    assert asc == [i.id for i in items]
    desc = [i.ts for i in await store.by_time("recall", "alice", limit=3, newest_first=True)]
    assert desc == [1010.0, 1009.0, 1008.0]
    page2 = await store.by_time("recall", "alice", limit=3, offset=3, newest_first=True)
    assert [i.ts for i in page2] == [1007.0, 1006.0, 1005.0]


# --- tenancy and deletes ------------------------------------------------------------------------
async def test_user_isolation_in_every_method(store: VectorStore,
                                              embedder: FastEmbedEmbedder) -> None:
    """User B never sees, counts, fetches or deletes user A's items or docs."""
    a_items = await put(store, embedder, "A", CORPUS)
    await put(store, embedder, "B", ["I adopted a golden retriever puppy named Biscuit last month"])
    a_ids = [i.id for i in a_items]
    for mode in ("hybrid", "dense", "sparse"):
        hits = await texts_of(store, embedder, "B", "golden retriever puppy cello Lisbon",
                              limit=10, mode=mode)
        assert len(hits) == 1
    for newest in (False, True):
        assert [i.user for i in await store.by_time("recall", "B", newest_first=newest)] == ["B"]
    assert await store.get("recall", "B", a_ids) == []
    assert [i.id for i in await store.get("recall", "A", a_ids[:2])] == a_ids[:2]
    assert await store.count("recall", "B") == 1
    assert await store.delete("recall", "B", a_ids) == 0
    assert await store.count("recall", "A") == len(CORPUS)
    await store.put_doc("A", "core", {"human": "likes dogs"})
    assert await store.get_doc("B", "core") is None
    await store.delete_docs("B")
    assert await store.get_doc("A", "core") == {"human": "likes dogs"}
    assert await store.count("archival", "A") == 0


async def test_delete_by_ids_and_all_of_one_user(store: VectorStore,
                                                 embedder: FastEmbedEmbedder) -> None:
    """Deleting ids or all of a user's items returns the count and leaves other users intact."""
    a_items = await put(store, embedder, "A", CORPUS)
    await put(store, embedder, "B", CORPUS[:3])
    await put(store, embedder, "A", ["a kept fact"], collection="archival")
    assert await store.delete("recall", "A", [a_items[0].id, a_items[1].id, "f" * 32]) == 2
    assert await store.count("recall", "A") == len(CORPUS) - 2
    assert await store.get("recall", "A", [a_items[0].id]) == []
    assert await store.delete("recall", "A", []) == 0
    assert await store.delete("recall", "A") == len(CORPUS) - 2
    assert await store.count("recall", "A") == 0
    assert await store.count("recall", "B") == 3
    assert await store.count("archival", "A") == 1


async def test_upsert_same_id_replaces(store: VectorStore, embedder: FastEmbedEmbedder) -> None:
    """Re-upserting an item id replaces it instead of adding a second point."""
    [item] = await put(store, embedder, "A", ["first version"])
    item.text = "second version"
    await store.upsert("recall", [item], await embedder.embed([item.text]))
    assert await store.count("recall", "A") == 1
    assert [i.text for i in await store.get("recall", "A", [item.id])] == ["second version"]


async def test_docs_put_get_overwrite_delete(store: VectorStore) -> None:
    """Per-user docs round-trip as JSON, overwrite by name, and delete per user."""
    doc = {"persona": "helpful", "blocks": [{"name": "human", "value": "Ana, 31"}], "n": 1.5}
    await store.put_doc("A", "core", doc)
    await store.put_doc("A", "summary", {"text": "s1"})
    assert await store.get_doc("A", "core") == doc
    await store.put_doc("A", "summary", {"text": "s2"})
    assert await store.get_doc("A", "summary") == {"text": "s2"}
    assert await store.get_doc("A", "missing") is None
    await store.delete_docs("A")
    assert await store.get_doc("A", "core") is None and await store.get_doc("A", "summary") is None


async def test_dimension_mismatch_raises(store: VectorStore) -> None:
    """Starting over collections of another vector size raises DimensionMismatch."""
    with pytest.raises(DimensionMismatch, match="stored vectors are 384-dim, embedder gives 768"):
        await store.start(768)


async def test_upsert_rejects_misaligned_vectors(store: VectorStore) -> None:
    """Items and vectors must pair up one to one."""
    item = MemoryItem(id=uuid.uuid4().hex, user="A", text="x", ts=1.0)
    with pytest.raises(StoreError):
        await store.upsert("recall", [item], [])


# --- edge: durability --------------------------------------------------------------------------
async def test_edge_persists_across_close_and_reopen(tmp_path: Path,
                                                     embedder: FastEmbedEmbedder) -> None:
    """Items and docs written before close() are there after reopening the same path."""
    s = EdgeVectorStore(tmp_path, prefix="p")
    await s.start(embedder.dim)
    items = await put(s, embedder, "A", CORPUS)
    await s.put_doc("A", "core", {"k": "v"})
    await s.close()
    with pytest.raises(StoreError, match="closed"):
        await s.count("recall", "A")
    s2 = EdgeVectorStore(tmp_path, prefix="p")
    await s2.start(embedder.dim)
    try:
        assert await s2.count("recall", "A") == len(CORPUS)
        assert await s2.get_doc("A", "core") == {"k": "v"}
        assert (await texts_of(s2, embedder, "A", "my dog", limit=1))[0] == items[0].text
    finally:
        await s2.close()
    s3 = EdgeVectorStore(tmp_path, prefix="p")
    with pytest.raises(DimensionMismatch, match="set EMBEDDING_MODEL back or use a new QDRANT_PATH"):
        await s3.start(768)
    await s3.close()


CRASH_WRITER = """
import asyncio, os, sys, uuid
from bot.protocols import MemoryItem
from bot.stores.qdrant_edge import EdgeVectorStore
async def main():
    s = EdgeVectorStore(sys.argv[1], prefix="c")
    await s.start(4)
    items = [MemoryItem(id=uuid.uuid4().hex, user="A", text=f"t{i}", ts=float(i)) for i in range(5)]
    await s.upsert("recall", items, [[1.0, 0.0, 0.0, float(i)] for i in range(5)])
    await s.put_doc("A", "core", {"k": 1})
    os._exit(0)  # no close(), no flush
asyncio.run(main())
"""


async def test_edge_writes_survive_a_crash_without_close(tmp_path: Path) -> None:
    """Acknowledged writes survive a process exit without close() (engine WAL replay)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASH_WRITER, str(tmp_path),
                                                cwd=REPO)
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    s = EdgeVectorStore(tmp_path, prefix="c")
    await s.start(4)
    try:
        assert await s.count("recall", "A") == 5
        assert await s.get_doc("A", "core") == {"k": 1}
    finally:
        await s.close()


async def test_edge_second_open_of_same_path_is_a_store_error(tmp_path: Path) -> None:
    """A second store on a path already open fails with a clear StoreError."""
    s = EdgeVectorStore(tmp_path)
    await s.start(4)
    other = EdgeVectorStore(tmp_path)
    try:
        with pytest.raises(StoreError, match="another process"):
            await other.start(4)
    finally:
        await other.close()
        await s.close()


async def test_server_unreachable_is_a_store_error() -> None:
    """A Qdrant server that refuses connections surfaces as StoreError."""
    s = ServerVectorStore("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(StoreError):
        await s.start(4)
    await s.close()
