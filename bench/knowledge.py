"""Knowledge base benchmark over a real public document set: the Node.js API reference
(64 Markdown files, 3.5 MB, ~1,170 pages of 3,000 characters) that Debian's ``nodejs``
package installs in /usr/share/doc/nodejs/api (``apt-get install nodejs``; or pass
``--docs DIR`` with the files of https://github.com/nodejs/node/tree/main/doc/api).

Run: python -m bench.knowledge [--docs DIR] [--quality-files all|small]

Prints, measured in one run:
- the whole folder (~1,170 pages) through ``bot.knowledge.ingest`` (read, chunk, BM25,
  write, version switch) without dense vectors: chunks/s and the growth of peak RSS;
- the embedder alone on 200 of its chunks (chunks/s): the dense part's cost, which
  dominates (a full dense ingestion takes chunks / that rate);
- a real ingestion with dense vectors of the quality set (``small``: the 16 smallest files
  that hold answers, ~1,100 chunks; ``all``: every file), chunks/s;
- recall@5 of the right section for the questions written for this benchmark (40; those
  whose file is in the quality set), hybrid vs BM25 (sparse) vs dense;
- knowledge_search as its own tool vs knowledge fused into archival search: the same
  questions asked by a user whose archival memory holds 400 notes about their own Node
  work; recall@5 of the right section, and the tool schema's token cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.knowledge import ingest
from bot.knowledge.base import EMBED_BATCH, KnowledgeBase, KnowledgeHit
from bot.memory.embeddings import build_embedder
from bot.memory.longterm import LongTermMemory, fuse
from bot.protocols import Hit, MemoryItem
from bot.stores.qdrant_edge import EdgeVectorStore

DOCS = Path("/usr/share/doc/nodejs/api")
MODEL = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "all-MiniLM-L6-v2-onnx"
SCOPE = "discord:1"
PAGE_CHARS = 3_000
# (question, file, a substring of the answer's section path); written for this benchmark
QUESTIONS: list[tuple[str, str, str]] = [
    ("create a directory and its parents with promises", "fs.md", "fsPromises.mkdir("),
    ("get notified when a file changes on disk", "fs.md", "fs.watch("),
    ("what do the octal permission numbers like 0o644 mean", "fs.md", "File modes"),
    ("read a whole file asynchronously with await", "fs.md", "fsPromises.readFile("),
    ("check the size and modification time of a file", "fs.md", "fs.stat("),
    ("how long an idle socket is kept before the server closes it", "http.md", "keepAliveTimeout"),
    ("start an HTTP server that answers requests", "http.md", "http.createServer("),
    ("reuse connections across HTTP requests with a pool", "http.md", "http.Agent"),
    ("raise the limit of listeners to avoid the memory leak warning", "events.md", "setMaxListeners"),
    ("wait for a single event as a promise", "events.md", "events.once("),
    ("join path segments into one path", "path.md", "path.join("),
    ("turn a relative path into an absolute one", "path.md", "path.resolve("),
    ("generate a random v4 UUID", "crypto.md", "randomUUID"),
    ("derive a key from a password with a memory-hard function", "crypto.md", "crypto.scrypt("),
    ("allocate a zero-filled buffer of a given size", "buffer.md", "Buffer.alloc("),
    ("decode a buffer into a string with an encoding", "buffer.md", "buf.toString("),
    ("set the exit code without exiting immediately", "process.md", "process.exitCode"),
    ("run a callback before other I/O on the next tick", "process.md", "process.nextTick("),
    ("schedule a callback right after I/O events", "timers.md", "setImmediate("),
    ("build and parse query strings of a URL", "url.md", "URLSearchParams"),
    ("how many CPU cores does the machine have", "os.md", "os.cpus("),
    ("connect streams and get an error if any of them fails", "stream.md", "stream.pipeline("),
    ("how much data a stream keeps in memory, highWaterMark", "stream.md", "Buffering"),
    ("start a worker thread running a script", "worker_threads.md", "new Worker("),
    ("how the primary process shares incoming connections with workers", "cluster.md", "How it works"),
    ("run a shell command and get its output", "child_process.md", "child_process.exec("),
    ("start a child Node process with an IPC channel", "child_process.md", "child_process.fork("),
    ("resolve a hostname to an IP address like getaddrinfo", "dns.md", "dns.lookup("),
    ("compress data with gzip", "zlib.md", "zlib.gzip("),
    ("ask the user a question on the terminal and read the answer", "readline.md", "rl.question("),
    ("convert a callback-style function into one returning a promise", "util.md", "util.promisify("),
    ("compare two objects deeply in a test", "assert.md", "assert.deepStrictEqual("),
    ("replace functions with mocks in the test runner", "test.md", "Mocking"),
    ("increase the heap size of V8 from the command line", "cli.md", "--max-old-space-size"),
    ("directory of the current ES module file", "esm.md", "import.meta.dirname"),
    ("error when require() loads an ES module", "errors.md", "ERR_REQUIRE_ESM"),
    ("high resolution timestamp in milliseconds for measuring", "perf_hooks.md", "performance.now("),
    ("print an array of objects as a table", "console.md", "console.table("),
    ("parse a URL query string into an object (legacy)", "querystring.md", "querystring.parse("),
    ("spawn a process with arguments and stream its output", "child_process.md", "child_process.spawn("),
]
SMALL = ["path.md", "querystring.md", "timers.md", "console.md", "cluster.md", "os.md",
         "readline.md", "esm.md", "assert.md", "dns.md", "zlib.md", "worker_threads.md",
         "url.md", "child_process.md", "perf_hooks.md", "events.md"]
NOTE_TOPICS = ["streams", "file system", "HTTP servers", "worker threads", "child processes",
               "buffers", "promises", "the event loop", "crypto", "testing", "ES modules",
               "DNS", "timers", "paths", "clusters", "compression", "readline", "errors"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _right(hit: KnowledgeHit, file: str, section: str) -> bool:
    return hit.source == file and section in hit.section


class NoDense:
    """An embedder giving no dense vectors: chunks stored with BM25 only (speed of the rest)."""

    dim = 384

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [[] for _ in texts]


async def ingest_all(kb: KnowledgeBase, refs: list[ingest.FileRef]) -> dict[str, Any]:
    chars = sum(r.path.stat().st_size for r in refs)
    rss0 = _rss_mb()
    started = time.perf_counter()
    outcomes = await ingest.add_files(kb, SCOPE, refs, actor="bench")
    seconds = time.perf_counter() - started
    chunks = sum(o.chunks for o in outcomes)
    failed = [o.error for o in outcomes if o.status == "failed"]
    return {"files": len(refs), "pages": round(chars / PAGE_CHARS), "chunks": chunks,
            "seconds": round(seconds, 1), "chunks_per_s": round(chunks / seconds, 1),
            "rss_before_mb": round(rss0), "peak_rss_mb": round(_rss_mb()), "failed": failed}


async def embed_baseline(kb: KnowledgeBase, refs: list[ingest.FileRef], n: int = 200) -> float:
    """Chunks/s of the embedder alone on ``n`` chunk texts spread over the corpus."""
    texts: list[str] = []
    for ref in refs:
        prep = kb.prepare(ref.path.name, ref.path.read_bytes())
        texts += [c.index_text(prep.parsed.title) for c in prep.chunks]
    texts = texts[::max(1, len(texts) // n)][:n]
    started = time.perf_counter()
    for i in range(0, len(texts), EMBED_BATCH):
        await kb.embedder.embed(texts[i:i + EMBED_BATCH])
    return len(texts) / (time.perf_counter() - started)


async def recall(kb: KnowledgeBase, questions: list[tuple[str, str, str]]) -> dict[str, float]:
    out = {}
    for mode in ("hybrid", "sparse", "dense"):
        found = 0
        for q, file, section in questions:
            hits = await kb.search([SCOPE, "global"], q, limit=5, mode=mode)  # type: ignore[arg-type]
            found += any(_right(h, file, section) for h in hits)
        out[mode] = round(found / len(questions), 3)
    return out


async def fused_vs_tool(kb: KnowledgeBase, memory: LongTermMemory,
                        questions: list[tuple[str, str, str]]) -> dict[str, float]:
    """Own tool: knowledge ranking alone. Fused: archival + knowledge rankings in one RRF
    list (what a fused archival_memory_search would return), top 5."""
    user = "discord:-:bench"
    notes = [f"Note {i}: the user is working on {NOTE_TOPICS[i % len(NOTE_TOPICS)]} in Node "
             f"for their project {i % 37}; they asked about {NOTE_TOPICS[(i * 7) % len(NOTE_TOPICS)]} "
             f"and prefer examples with async/await." for i in range(400)]
    items = [MemoryItem(id=f"{i:032x}", user=user, text=t, ts=1_700_000_000.0 + i, role="agent",
                        kind="passage") for i, t in enumerate(notes)]
    await memory.write("archival", items)
    tool = fused = 0
    for q, file, section in questions:
        k_hits = await kb.search([SCOPE, "global"], q, limit=20)
        tool += any(_right(h, file, section) for h in k_hits[:5])
        a_hits = await memory.search("archival", user, q, limit=20)
        as_hits = [Hit(MemoryItem(id=f"k{n}", user="", text=h.text, ts=0.0,
                                  meta={"k": n}), h.score) for n, h in enumerate(k_hits)]
        top = fuse([a_hits, as_hits], [1.0, 1.0])[:5]
        fused += any("k" in h.item.meta and _right(k_hits[h.item.meta["k"]], file, section)
                     for h in top)
    return {"own_tool": round(tool / len(questions), 3), "fused": round(fused / len(questions), 3)}


def schema_tokens() -> int:
    from bot.agent.tokens import TokenCounter
    from bot.agent.tools import TOOLS

    return TokenCounter("gpt-4o-mini").count_tools([TOOLS["knowledge_search"].schema()])


async def main(docs: Path, quality: str) -> dict[str, Any]:
    settings = Settings(_env_file=None, embedding_model_path=str(MODEL),  # type: ignore[call-arg]
                        tiktoken_cache_dir=str(MODEL.parents[1] / "tiktoken_cache"))
    embedder = build_embedder(settings)
    await embedder.embed(["warm up"])
    refs = [r for r in ingest.collect([docs]) if r.source.endswith(".md")]
    chosen = [r for r in refs if quality == "all" or r.source in SMALL]
    questions = [q for q in QUESTIONS if q[1] in {r.source for r in chosen}]
    with tempfile.TemporaryDirectory() as tmp:
        sparse_store = EdgeVectorStore(Path(tmp) / "sparse", prefix="bench")
        store = EdgeVectorStore(Path(tmp) / "q", prefix="bench")
        await sparse_store.start(embedder.dim)
        await store.start(embedder.dim)
        limits = {"max_bytes": settings.knowledge_max_bytes, "chunk_chars": settings.knowledge_chunk_chars}
        kb = KnowledgeBase(store, embedder, **limits)  # type: ignore[arg-type]
        try:
            whole = await ingest_all(KnowledgeBase(sparse_store, NoDense(), **limits), refs)  # type: ignore[arg-type]
            base = await embed_baseline(kb, refs)
            dense = await ingest_all(kb, chosen)
            scores = await recall(kb, questions)
            choice = await fused_vs_tool(kb, LongTermMemory(store, embedder), questions)
        finally:
            await sparse_store.close()
            await store.close()
    return {"bench": "knowledge", "corpus": str(docs), "whole_corpus_no_dense": whole,
            "embed_only_chunks_per_s": round(base, 1),
            "projected_full_dense_ingest_min": round(whole["chunks"] / base / 60, 1),
            "quality_set": dense, "questions": len(questions), "recall_at_5": scores,
            "hybrid_vs_bm25": round(scores["hybrid"] / max(scores["sparse"], 1e-9), 2),
            "hybrid_vs_dense": round(scores["hybrid"] / max(scores["dense"], 1e-9), 2),
            "tool_vs_fused_recall_at_5": choice, "tool_schema_tokens": schema_tokens(),
            "load_average": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}


def _print(r: dict[str, Any]) -> None:
    w, d = r["whole_corpus_no_dense"], r["quality_set"]
    print(f"corpus: {r['corpus']}: {w['files']} files, ~{w['pages']} pages of {PAGE_CHARS} chars"
          f" (machine: {r['cpus']} cores, load average {r['load_average']})")
    print(f"  whole corpus, BM25 only  {w['chunks']} chunks in {w['seconds']} s = {w['chunks_per_s']}"
          f" chunks/s; peak RSS {w['rss_before_mb']} -> {w['peak_rss_mb']} MB")
    print(f"  embedder alone           {r['embed_only_chunks_per_s']} chunks/s (the baseline; a full"
          f" dense ingestion: ~{r['projected_full_dense_ingest_min']} min here)")
    print(f"  quality set, with dense  {d['files']} files, {d['chunks']} chunks in {d['seconds']} s"
          f" = {d['chunks_per_s']} chunks/s; peak RSS {d['peak_rss_mb']} MB")
    q = r["recall_at_5"]
    print(f"  recall@5 section         hybrid {q['hybrid']}  BM25 {q['sparse']}  dense {q['dense']}"
          f"  ({r['questions']} questions; hybrid/BM25 {r['hybrid_vs_bm25']}, hybrid/dense {r['hybrid_vs_dense']})")
    c = r["tool_vs_fused_recall_at_5"]
    print(f"  own tool vs fused        knowledge_search {c['own_tool']}  fused into archival {c['fused']}"
          f"  (400 archival notes; the tool schema costs {r['tool_schema_tokens']} tokens per call)")
    for f in w["failed"] + d["failed"]:
        print(f"  failed: {f}")
    print(json.dumps(r))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DOCS)
    ap.add_argument("--quality-files", choices=["small", "all"], default="small",
                    help="files ingested with dense vectors for the recall figures (default: small)")
    a = ap.parse_args()
    if not a.docs.is_dir():
        raise SystemExit(f"{a.docs} not found: apt-get install nodejs (its docs), or --docs DIR")
    _print(asyncio.run(main(a.docs, a.quality_files)))
