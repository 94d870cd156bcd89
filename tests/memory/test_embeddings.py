"""Embedding batches grouped by token length: bounded padded size, same vectors, same order."""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.memory.embeddings import MAX_TOKENS, FastEmbedEmbedder, plan_batches
from tests.conftest import MODEL_DIR


def test_plan_keeps_each_batch_within_the_token_budget() -> None:
    """Every batch's padded size (texts x longest) stays within the budget, each index once."""
    lengths = [5, 512, 12, 300, 7, 512, 40, 9, 128, 3] * 7
    batches = plan_batches(lengths, budget=1024, max_items=16)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 1024


def test_plan_puts_short_texts_together_and_a_too_long_text_alone() -> None:
    """Short texts share big batches; a text longer than the budget gets a batch of its own."""
    batches = plan_batches([10] * 50 + [2000], budget=1000, max_items=64)
    assert [len(b) for b in batches] == [50, 1]


async def test_grouped_batches_give_the_vectors_of_single_embeddings(embedder: Any) -> None:
    """Mixed short and long texts come back in input order, as each text embedded alone."""
    texts = ["hi", "word " * 600, "I prefer minimal dependencies.", "```python\nprint(1)\n```\n" * 40, "ok"]
    grouped = FastEmbedEmbedder(embedder.model, model_path=MODEL_DIR, batch_size=64, batch_tokens=1024)
    got = np.asarray(await grouped.embed(texts))
    alone = np.asarray([(await embedder.embed([t, t]))[0] for t in texts])
    assert got.shape == (5, embedder.dim)
    assert np.abs(got - alone).max() < 1e-4
    assert grouped._lengths(["word " * 600])[0] == MAX_TOKENS
