"""The seams of the core: small protocols with a few async methods, and their data types.

- ``LLM``: one chat completion with tools (bot.agent.llm implements it over the openai SDK).
- ``Embedder``: dense vectors for texts (bot.memory.embeddings).
- ``VectorStore``: per-user recall/archival items with hybrid search, plus a small
  per-user document slot for state snapshots (bot.stores.qdrant_edge / qdrant_server).
  The ``knowledge`` collection holds document chunks; its tenant key (the ``user``
  argument and payload field) is a knowledge scope (bot.knowledge.scopes), not a user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.messages import ToolCall

Collection = Literal["recall", "archival", "knowledge"]  # knowledge: tenant = scope
INDEX_KEY = "index"  # MemoryItem.meta key: text to index instead of ``text`` (never stored)
VIS_KEY = "vis"  # MemoryItem.meta key: where the item came from (bot.memory.visibility)
SearchMode = Literal["hybrid", "dense", "sparse"]


# --- LLM ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    content: str
    tool_calls: list[ToolCall]
    usage: Usage | None = None
    finish_reason: str = ""


class LLM(Protocol):
    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion. Raises LLMTimeout, LLMUnavailable, LLMRejected,
        ContextOverflow."""
        ...

    async def close(self) -> None: ...


# --- Embeddings ----------------------------------------------------------------------------
class Embedder(Protocol):
    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Dense vectors (one per text), batched inside. Raises EmbeddingError."""
        ...


# --- Vector storage ------------------------------------------------------------------------
@dataclass
class MemoryItem:
    """One stored text of one user: a recall message or an archival passage."""

    id: str  # uuid hex; stable, so re-upserting the same item is idempotent
    user: str
    text: str
    ts: float
    role: str = ""  # recall: user/assistant/tool/system; archival: "" or a source tag
    kind: str = ""  # message kind (recall) or "passage" (archival)
    # small extra payload (tool calls...). meta["index"], when present, is the text to index
    # for search instead of ``text`` (speaker + previous-turn context); stores index it and
    # do not keep it in the payload.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    item: MemoryItem
    score: float


class VectorStore(Protocol):
    async def start(self, dim: int) -> None:
        """Create/open collections; raise DimensionMismatch if stored dim differs."""
        ...

    async def upsert(
        self, collection: Collection, items: Sequence[MemoryItem], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Insert or replace items. An empty vector stores the item without a dense vector
        (found by time and words, not by meaning)."""
        ...

    async def search(
        self,
        collection: Collection,
        user: str,
        *,
        text: str,
        vector: Sequence[float] | None,
        limit: int,
        offset: int = 0,
        since: float | None = None,
        until: float | None = None,
        mode: SearchMode = "hybrid",
        weights: Sequence[float] | None = None,
        vis: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Best matches of this user's items only, optionally within [since, until) and,
        with ``vis``, only items whose origin (``meta["vis"]``) is one of those.
        ``weights``: (dense, sparse) weights of the hybrid fusion; None = the stores' own."""
        ...

    async def by_time(
        self,
        collection: Collection,
        user: str,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = False,
        vis: Sequence[str] | None = None,
    ) -> list[MemoryItem]:
        """This user's items ordered by timestamp within [since, until) (``vis``: as search)."""
        ...

    async def get(self, collection: Collection, user: str, ids: Sequence[str]) -> list[MemoryItem]: ...

    async def find(self, collection: Collection, ids: Sequence[str]) -> list[MemoryItem]:
        """Items with these ids, whoever they belong to: only for deletes the platform
        reports (a deleted message names no user); never shown to anyone."""
        ...

    async def set_meta(self, collection: Collection, user: str, metas: dict[str, dict[str, Any]]) -> None:
        """Replace the meta of this user's items (id -> meta); other users' ids change nothing."""
        ...

    async def count(self, collection: Collection, user: str) -> int: ...

    async def delete(self, collection: Collection, user: str, ids: Sequence[str] | None = None) -> int:
        """Delete the given ids of this user (all of the user's items when ids is None)."""
        ...

    async def put_doc(self, user: str, name: str, doc: dict[str, Any]) -> None:
        """Durable per-user JSON document (core memory + summary snapshot)."""
        ...

    async def get_doc(self, user: str, name: str) -> dict[str, Any] | None: ...

    async def delete_docs(self, user: str) -> None: ...

    async def close(self) -> None: ...
