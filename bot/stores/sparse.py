"""Lexical BM25 sparse vectors for the hybrid search of both Qdrant backends.

The tokenizer and weighting are Qdrant's own BM25 (``qdrant_edge.Bm25``, Rust, no model
download): lowercase word tokens including numbers, English stopwords removed, Snowball
stemming, tokens hashed with murmur3 into a stable 32-bit index, so vectors are the same in
every process and match what Qdrant's server-side BM25 would produce.

- documents get BM25 term-frequency saturation ``tf*(k+1) / (tf + k*(1-b+b*len/avg_len))``;
- queries get 1.0 per distinct term;
- IDF is applied inside Qdrant at query time (sparse vector ``Modifier.IDF``), so nothing
  corpus-wide is stored here.

k, b and ``AVG_LEN`` are Qdrant's defaults. Chat turns are much shorter (LoCoMo: ~12
distinct non-stopword tokens) but a realistic ``AVG_LEN`` of 8-16 measured worse on LoCoMo
evidence recall (sparse r@5 0.54 vs 0.57 at 256): longer turns tend to hold the answer, so
weak length normalization suits chat. Changing k, b or AVG_LEN changes stored document
weights: existing points keep the old ones until re-upserted, so keep them stable.
"""

from __future__ import annotations

from qdrant_edge import Bm25, Bm25Config

SparseVec = tuple[list[int], list[float]]
"""(indices, values) of one sparse vector; indices are unique and unsorted."""

K1 = 1.2
B = 0.75
AVG_LEN = 256.0


class SparseEncoder:
    """BM25 sparse vectors for documents and queries; thread-safe and cheap (~6 µs/text)."""

    def __init__(self, *, k: float = K1, b: float = B, avg_len: float = AVG_LEN) -> None:
        self._bm25 = Bm25(Bm25Config(k=k, b=b, avg_len=avg_len, language="english"))

    def document(self, text: str) -> SparseVec:
        """Stored vector of a text: BM25 tf weights (IDF is applied by Qdrant)."""
        vec = self._bm25.embed_document(text)
        return list(vec.indices), list(vec.values)

    def query(self, text: str) -> SparseVec:
        """Query vector of a text: 1.0 per distinct term; empty when only stopwords."""
        vec = self._bm25.embed_query(text)
        return list(vec.indices), list(vec.values)
