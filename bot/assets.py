"""Where the offline assets are: the embedding model directory and tiktoken's files.

Searched, in order, in each directory of ``ASSETS_DIRS`` (default ``../shared`` beside the
checkout, then ``data/assets`` inside it; relative entries are relative to the checkout):

- ``models/all-MiniLM-L6-v2-onnx/`` (a directory holding ``model.onnx``) for the default
  fastembed model, used as ``EMBEDDING_MODEL_PATH`` when that is not set;
- ``tiktoken_cache/`` (tiktoken's files) used as ``TIKTOKEN_CACHE_DIR`` when that is not set.

Without them the model is downloaded into ``EMBEDDING_CACHE_DIR`` and tiktoken's files
into ``data/tiktoken`` on first use (``membot setup-assets`` does both up front).
Pure path logic: nothing here reads the environment or touches the network.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]  # the clone (editable install) or site-packages
DEFAULT_ASSETS_DIRS = "../shared:data/assets"
MODEL_DIRS = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2-onnx"}
TIKTOKEN_DIRNAME = "tiktoken_cache"
TIKTOKEN_DOWNLOAD_DIR = "data/tiktoken"  # relative to the working directory, like data/qdrant


def search_dirs(spec: str) -> list[Path]:
    """The directories named by an ``ASSETS_DIRS`` value (':'-separated), absolute."""
    out = []
    for part in spec.split(":"):
        if part.strip():
            p = Path(part.strip()).expanduser()
            out.append(p if p.is_absolute() else (CHECKOUT / p).resolve())
    return out


def model_dirname(model: str) -> str | None:
    """The asset directory name of a known fastembed model (case-insensitive)."""
    return {k.lower(): v for k, v in MODEL_DIRS.items()}.get(model.lower())


def find_model_dir(model: str, dirs: list[Path]) -> Path | None:
    """The first ``<dir>/models/<name>`` holding a ``model.onnx`` for ``model``."""
    name = model_dirname(model)
    if name is None:
        return None
    for d in dirs:
        cand = d / "models" / name
        if (cand / "model.onnx").is_file() or (cand / "onnx" / "model.onnx").is_file():
            return cand
    return None


def find_tiktoken_dir(dirs: list[Path]) -> Path | None:
    """The first ``<dir>/tiktoken_cache`` that holds at least one file."""
    for d in dirs:
        cand = d / TIKTOKEN_DIRNAME
        if cand.is_dir() and any(p.is_file() for p in cand.iterdir()):
            return cand
    return None
