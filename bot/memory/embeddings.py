"""Dense text embeddings: local ONNX models through fastembed, or an OpenAI-compatible API.

- ``FastEmbedEmbedder``: fastembed ``TextEmbedding`` (default all-MiniLM-L6-v2, 384-dim,
  L2-normalized). With a model directory it loads from there and never touches the network;
  otherwise fastembed downloads into the cache dir on first use. The model is loaded lazily,
  once. Bulk batches (recall writes, imports) run one at a time on a low-priority thread
  using all cores but one; single texts (search queries) use their own one-thread session,
  so a query never waits behind a bulk batch, and go through a small LRU cache.
  Bulk texts are grouped by token length (``plan_batches``): a batch is padded to its
  longest text, so mixing a 512-token answer with 63 short turns cost 64 x 512 tokens of
  work and memory (6.9 GB peak RSS importing long turns at batch 64). Sorted by length and
  cut at ``batch_tokens`` (items x longest), short turns go in large batches and long ones
  in small batches.
- ``OpenAIEmbedder``: ``/v1/embeddings`` through ``AsyncOpenAI``; its errors become
  ``EmbeddingError`` here.

Both expose ``dim`` and an optional ``load()`` to pay the model load (or learn an API
model's dimension) at startup instead of on the first message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import EmbeddingError

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from bot.config import Settings
    from bot.protocols import Embedder

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DOWNLOAD_PROBE_S = 5.0
QUERY_CACHE_SIZE = 512
MAX_TOKENS = 512  # fastembed truncates longer texts to this
BATCH_TOKENS = 2048
_OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                "text-embedding-ada-002": 1536}


class _LRU:
    """Thread-safe small LRU of text -> float32 vector."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[str, np.ndarray[Any, np.dtype[np.float32]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> list[float] | None:
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                return None
            self._data.move_to_end(key)
        return [float(x) for x in vec]

    def put(self, key: str, vec: Sequence[float]) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._data[key] = np.asarray(vec, dtype=np.float32)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def plan_batches(lengths: Sequence[int], budget: int, max_items: int) -> list[list[int]]:
    """Indices of texts grouped into batches, shortest first, so that each batch's padded
    size (items x its longest text, in tokens) stays within ``budget`` and it has at most
    ``max_items`` texts. A text longer than the budget goes alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda n: lengths[n]):
        if current and ((len(current) + 1) * lengths[i] > budget or len(current) >= max_items):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _background_priority() -> None:
    """Lower this worker thread's CPU priority (Linux: per-thread nice); best effort."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class FastEmbedEmbedder:
    """Local embeddings with fastembed (ONNX on CPU)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        model_path: str | Path | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        batch_tokens: int = BATCH_TOKENS,
        threads: int | None = None,
        query_cache_size: int = QUERY_CACHE_SIZE,
        quantize: str = "none",
    ) -> None:
        self.model = model
        self.quantize = quantize
        self.batch_tokens = batch_tokens
        self.model_path = Path(model_path).expanduser() if model_path else None
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.batch_size = batch_size
        self._threads = threads if threads else max(1, (os.cpu_count() or 2) - 1)
        self._engine: Any = None  # bulk writes (recall, imports)
        self._query_engine: Any = None  # single texts (search queries): never waits on bulk
        self._dim: int | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._bulk: ThreadPoolExecutor | None = None
        self._cache = _LRU(query_cache_size)

    @property
    def dim(self) -> int:
        """Vector size; known from the model registry or config.json without loading."""
        if self._dim is None:
            self._dim = self._declared_dim()
        return self._dim

    async def load(self) -> None:
        """Load the model now (slow: ~1 s) instead of on the first ``embed``."""
        await asyncio.to_thread(self._load)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if len(texts) == 1:
            hit = self._cache.get(texts[0])
            if hit is not None:
                return [hit]
        if len(texts) == 1:
            one = await asyncio.to_thread(self._embed_query, texts[0])
            self._cache.put(texts[0], one[0])
            return one
        # Bulk work runs on one low-priority thread so replies and queries keep the CPU.
        if self._bulk is None:
            self._bulk = ThreadPoolExecutor(1, "membot-embed", initializer=_background_priority)
        loop = asyncio.get_running_loop()
        lengths = await loop.run_in_executor(self._bulk, self._lengths, list(texts))
        out: list[list[float]] = [[] for _ in texts]
        for batch in plan_batches(lengths, self.batch_tokens, self.batch_size):
            vectors = await loop.run_in_executor(self._bulk, self._embed_sync, [texts[i] for i in batch])
            for i, vec in zip(batch, vectors, strict=True):
                out[i] = vec
        return out

    # --- worker-thread side ------------------------------------------------------------------
    def _embed_query(self, text: str) -> list[list[float]]:
        self._load()
        with self._query_lock:
            if self._query_engine is None:
                self._query_engine = self._open(threads=1)
            try:
                arrays = list(self._query_engine.embed([text], batch_size=1))
            except Exception as exc:
                raise EmbeddingError(f"fastembed failed on a query: {exc}") from exc
        return [np.asarray(a, dtype=np.float32).tolist() for a in arrays]

    def _lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text (as the model will see it, at most ``MAX_TOKENS``)."""
        engine = self._load()
        try:
            return [min(int(engine.token_count(t)), MAX_TOKENS) for t in texts]
        except Exception as exc:
            raise EmbeddingError(f"fastembed could not tokenize a batch of {len(texts)} texts: {exc}") from exc

    def _embed_sync(self, texts: list[str]) -> list[list[float]]:
        engine = self._load()
        try:
            with self._run_lock:
                arrays = list(engine.embed(texts, batch_size=len(texts)))
        except Exception as exc:
            raise EmbeddingError(f"fastembed failed on a batch of {len(texts)} texts: {exc}") from exc
        return [np.asarray(a, dtype=np.float32).tolist() for a in arrays]

    def _load(self) -> Any:
        if self._engine is not None:
            return self._engine
        with self._load_lock:
            if self._engine is None:
                engine = self._open()
                try:
                    size = len(next(iter(engine.embed(["probe"]))))
                except Exception as exc:
                    raise EmbeddingError(f"embedding model {self.model!r} failed a probe: {exc}") from exc
                if self._dim is not None and size != self._dim:
                    raise EmbeddingError(f"embedding model {self.model!r} gives {size}-dim vectors, "
                                         f"not the {self._dim} its description declares")
                self._dim, self._engine = size, engine
        return self._engine

    def _open(self, threads: int | None = None) -> Any:
        from fastembed import TextEmbedding

        kwargs: dict[str, Any] = {"cache_dir": self.cache_dir, "threads": threads or self._threads}
        if self.model_path is not None:
            self._check_model_dir()
            self._register_custom_model()
            kwargs["specific_model_path"] = str(self._quantized() if self.quantize == "int8" else self.model_path)
        elif self.quantize == "int8":
            raise EmbeddingError("EMBEDDING_QUANTIZE=int8 needs a local model directory: set "
                                 "EMBEDDING_MODEL_PATH, or run `membot setup-assets` first")
        else:
            cached = _quietly(lambda: TextEmbedding(self.model, local_files_only=True, **kwargs))
            if cached is not None:
                return cached
            self._check_download_source()  # offline: say so now, not after ~40 s of retries
            log.warning("downloading embedding model %s into EMBEDDING_CACHE_DIR=%s (once)",
                        self.model, self.cache_dir)
        try:
            return TextEmbedding(self.model, **kwargs)
        except Exception as exc:
            raise EmbeddingError(self._load_failure(exc)) from exc

    def _check_download_source(self) -> None:
        """Fail fast (one request, 5 s) when the model's download source cannot be reached."""
        import huggingface_hub

        repo = _registry_source(self.model)
        if repo is None:
            return
        try:
            huggingface_hub.model_info(repo, timeout=DOWNLOAD_PROBE_S)
        except Exception as exc:  # offline, DNS, proxy, HF_HUB_OFFLINE...
            raise EmbeddingError(self._load_failure(exc)) from None

    def _load_failure(self, exc: Exception) -> str:
        if self.model_path is not None:
            return (f"could not load embedding model {self.model!r} from EMBEDDING_MODEL_PATH="
                    f"{self.model_path}: {exc}")
        reason = f"{type(exc).__name__}: {exc}"[:200]
        return (f"could not load embedding model {self.model!r}: it is not in EMBEDDING_CACHE_DIR="
                f"{self.cache_dir} and could not be downloaded ({reason}). Offline? Put the model "
                "in ../shared/models/all-MiniLM-L6-v2-onnx beside the checkout (or any ASSETS_DIRS "
                "entry), or set EMBEDDING_MODEL_PATH to a local ONNX model directory (model.onnx, "
                "tokenizer.json, config.json), or EMBEDDING_PROVIDER=openai; "
                "`membot setup-assets` fetches it where there is a network.")

    def _quantized(self) -> Path:
        """The model directory with int8 weights (``quantize_dynamic``), made once per source
        model file under ``cache_dir/int8`` and reused; tokenizer and config are copied."""
        assert self.model_path is not None
        rel = self._model_file() or "model.onnx"
        src = self.model_path / rel
        stat = src.stat()
        tag = hashlib.sha1(f"{src.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        dst = Path(self.cache_dir or "./data/models") / "int8" / f"{self.model_path.name}-{tag}"
        if (dst / rel).is_file():
            return dst
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError as exc:
            raise EmbeddingError("EMBEDDING_QUANTIZE=int8 needs the onnx package: "
                                 f"pip install 'membot[quantize]' ({exc})") from None
        log.warning("quantizing embedding model %s to int8 into %s (once)", self.model_path, dst)
        tmp = dst.with_name(f"{dst.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(self.model_path, tmp, ignore=lambda d, names: [
                n for n in names if n.endswith(".onnx") or n.endswith(".onnx_data")])
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            quantize_dynamic(str(src), str(tmp / rel), weight_type=QuantType.QInt8)
            try:
                tmp.rename(dst)
            except OSError:  # made meanwhile by another process: use theirs
                if not (dst / rel).is_file():
                    raise
        except Exception as exc:
            raise EmbeddingError(f"could not quantize {src} to int8 in {dst}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dst

    # --- model description -------------------------------------------------------------------
    def _declared_dim(self) -> int:
        known = _registry_dim(self.model)
        if known is not None:
            return known
        if self.model_path is not None:
            return self._config_dim()
        raise EmbeddingError(
            f"fastembed does not know EMBEDDING_MODEL={self.model!r}; set EMBEDDING_MODEL_PATH to "
            "its ONNX export or use EMBEDDING_PROVIDER=openai")

    def _check_model_dir(self) -> None:
        assert self.model_path is not None
        if not self.model_path.is_dir():
            raise EmbeddingError(f"EMBEDDING_MODEL_PATH={self.model_path} is not a directory")
        if self._model_file() is None:
            raise EmbeddingError(f"EMBEDDING_MODEL_PATH={self.model_path} has no model.onnx "
                                 "(looked for model.onnx and onnx/model.onnx)")

    def _model_file(self) -> str | None:
        assert self.model_path is not None
        for name in ("model.onnx", "onnx/model.onnx"):
            if (self.model_path / name).is_file():
                return name
        return None

    def _config_dim(self) -> int:
        assert self.model_path is not None
        try:
            config = json.loads((self.model_path / "config.json").read_text())
            return int(config["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"cannot read the vector size (hidden_size) from "
                                 f"{self.model_path}/config.json: {exc}") from exc

    def _register_custom_model(self) -> None:
        """Teach fastembed an unknown model name: mean pooling + L2 normalization."""
        if _registry_dim(self.model) is not None:
            return
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        try:
            TextEmbedding.add_custom_model(
                self.model, pooling=PoolingType.MEAN, normalization=True,
                sources=ModelSource(hf=self.model), dim=self._config_dim(),
                model_file=self._model_file() or "model.onnx")
        except ValueError as exc:  # registered meanwhile (another instance)
            if "already registered" not in str(exc):
                raise EmbeddingError(str(exc)) from exc


def _quietly(open_model: Callable[[], Any]) -> Any:
    """``open_model()``, or None when it fails, without fastembed's ERROR log lines."""
    from loguru import logger

    logger.disable("fastembed")
    try:
        return open_model()
    except Exception:
        return None
    finally:
        logger.enable("fastembed")


def _registry_source(model: str) -> str | None:
    """The Hugging Face repository fastembed downloads ``model`` from, if any."""
    from fastembed import TextEmbedding

    for desc in TextEmbedding.list_supported_models():
        if str(desc["model"]).lower() == model.lower():
            return (desc.get("sources") or {}).get("hf") or None
    return None


def _registry_dim(model: str) -> int | None:
    from fastembed import TextEmbedding

    for desc in TextEmbedding.list_supported_models():
        if str(desc["model"]).lower() == model.lower():
            return int(desc["dim"])
    return None


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        dim: int | None = None,
        client: AsyncOpenAI | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.batch_size = batch_size
        self._dim = dim or _OPENAI_DIMS.get(model)
        self._client = client or AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
            max_retries=max_retries)
        self._cache = _LRU(QUERY_CACHE_SIZE)

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise EmbeddingError(f"the vector size of embedding model {self.model!r} is not known "
                                 "yet: call `await embedder.load()` first")
        return self._dim

    async def load(self) -> None:
        """Learn the vector size with one request (no-op when already known)."""
        if self._dim is None:
            await self.embed(["probe"])

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if len(texts) == 1 and (hit := self._cache.get(texts[0])) is not None:
            return [hit]
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(await self._request(list(texts[start : start + self.batch_size])))
        if self._dim is None:
            self._dim = len(out[0])
        elif any(len(v) != self._dim for v in out):
            raise EmbeddingError(f"embedding model {self.model!r} returned vectors of another "
                                 f"size than {self._dim}")
        if len(texts) == 1:
            self._cache.put(texts[0], out[0])
        return out

    async def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        inputs = [t if t.strip() else " " for t in texts]  # the API rejects empty strings
        try:
            resp = await self._client.embeddings.create(model=self.model, input=inputs,
                                                        encoding_format="float")
        except openai.APITimeoutError as exc:
            raise EmbeddingError(f"embeddings endpoint timed out ({self.model})") from exc
        except openai.APIStatusError as exc:
            raise EmbeddingError(f"embeddings endpoint answered {exc.status_code} for model "
                                 f"{self.model!r}: {exc.message}") from exc
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"embeddings endpoint failed ({self.model}): {exc}") from exc
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingError(f"embeddings endpoint returned {len(data)} vectors for "
                                 f"{len(texts)} texts")
        return [list(d.embedding) for d in data]

    async def close(self) -> None:
        await self._client.close()


def build_embedder(settings: Settings) -> Embedder:
    """The embedder selected by EMBEDDING_PROVIDER."""
    if settings.embedding_provider == "openai":
        key = settings.embedding_api_key or settings.llm_api_key
        model = settings.embedding_model
        if model == DEFAULT_MODEL:  # the fastembed default means "not chosen" for an API
            model = "text-embedding-3-small"
        return OpenAIEmbedder(
            model, base_url=settings.embedding_base_url or settings.llm_base_url,
            api_key=key.get_secret_value() if key else None,
            batch_size=settings.embedding_batch_size, timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries)
    return FastEmbedEmbedder(
        settings.embedding_model, model_path=settings.embedding_model_path,
        cache_dir=settings.embedding_cache_dir, batch_size=settings.embedding_batch_size,
        batch_tokens=settings.embedding_batch_tokens, threads=settings.embedding_threads or None,
        quantize=settings.embedding_quantize)
