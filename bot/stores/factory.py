"""Choose the vector store backend from Settings: a Qdrant server when ``QDRANT_URL`` is
set, otherwise the embedded engine under ``QDRANT_PATH``."""

from __future__ import annotations

from bot.config import Settings
from bot.protocols import VectorStore


def build_vector_store(settings: Settings) -> VectorStore:
    prefix = settings.qdrant_collection_prefix
    if settings.qdrant_url:
        from bot.stores.qdrant_server import ServerVectorStore

        key = settings.qdrant_api_key
        return ServerVectorStore(settings.qdrant_url, prefix=prefix,
                                 api_key=key.get_secret_value() if key else None)
    from bot.stores.qdrant_edge import EdgeVectorStore

    return EdgeVectorStore(settings.qdrant_path, prefix=prefix)
