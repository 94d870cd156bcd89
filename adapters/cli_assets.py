"""``membot setup-assets``: locate or fetch the embedding model and tiktoken's files.

Found in ASSETS_DIRS (``../shared`` beside the checkout, ``data/assets``) they are used as
they are; otherwise the model is downloaded into EMBEDDING_CACHE_DIR (with fastembed's
progress bar) and the tokenizer files into TIKTOKEN_CACHE_DIR, once. Prints where each went
and what to set to use them elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.config import Settings
from bot.errors import EmbeddingError

ENCODINGS = ("cl100k_base", "o200k_base")  # gpt-4o* / gpt-4*, and every other model
TOKENIZER_TIMEOUT_S = 120.0


def _tokenizer_files(settings: Settings) -> tuple[bool, str, str]:
    from bot.agent.tokens import load_encoding

    directory = str(Path(settings.tiktoken_cache_dir or ".").resolve())
    before = set(os.listdir(directory)) if os.path.isdir(directory) else set()
    ok = all(load_encoding(name, TOKENIZER_TIMEOUT_S) is not None for name in ENCODINGS)
    after = set(os.listdir(directory)) if os.path.isdir(directory) else set()
    return ok, "downloaded into" if after - before else "found in", directory


async def cmd_setup_assets(settings: Settings) -> int:
    """Locate or download both assets; exit 1 (saying what to do) if either is missing."""
    from bot.memory.embeddings import FastEmbedEmbedder, build_embedder

    code = 0
    if settings.embedding_provider != "fastembed":
        print(f"embedding model: EMBEDDING_PROVIDER={settings.embedding_provider} (nothing to fetch)")
    elif settings.embedding_model_path:
        print(f"embedding model: found in {settings.embedding_model_path}")
    else:
        embedder = build_embedder(settings)
        assert isinstance(embedder, FastEmbedEmbedder)
        print(f"embedding model: fetching {settings.embedding_model} into "
              f"{Path(settings.embedding_cache_dir).resolve()} ...", file=sys.stderr)
        try:
            await embedder.load()
        except EmbeddingError as exc:
            print(f"embedding model: MISSING: {exc}")
            code = 1
        else:
            print(f"embedding model: cached in {Path(settings.embedding_cache_dir).resolve()} "
                  "(found there from now on, also offline)")
    ok, how, directory = await asyncio.to_thread(_tokenizer_files, settings)
    if ok:
        print(f"tokenizer files: {how} {directory}")
    else:
        print(f"tokenizer files: MISSING in {directory}: could not download "
              f"{', '.join(ENCODINGS)}; copy tiktoken's files there (or into "
              "../shared/tiktoken_cache) or token counts stay approximate")
        code = 1
    return code
