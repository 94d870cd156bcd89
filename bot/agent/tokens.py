"""Token counts for prompt budgeting: tiktoken when its files load, ~4 chars/token otherwise.

tiktoken reads an encoding's file from ``TIKTOKEN_CACHE_DIR`` (files named by the SHA-1
of their URL, hash-checked) and, when absent, downloads it with ``requests.get`` and no
timeout, holding a process-wide lock. So the load runs in a daemon thread that we wait
on for a bounded time: offline without the files, counting degrades to an approximation
(one warning per encoding per process) instead of hanging. Counts of other servers'
tokenizers differ anyway; ``calibrate``/``scaled`` correct for that with the
``prompt_tokens`` the server reports.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import tiktoken

from bot.agent.wire import content_text

log = logging.getLogger(__name__)

FALLBACK_ENCODING = "o200k_base"  # unknown models (local servers): a modern BPE is closest
CHARS_PER_TOKEN = 4.0
PER_MESSAGE = 3  # role/separators of each message (OpenAI's cookbook figure)
PER_NAME = 1
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
PER_TOOL_CALL = 3
RATIO_MIN, RATIO_MAX = 0.5, 2.0
EMA_ALPHA = 0.2

_unavailable: set[str] = set()  # encodings that failed to load in this process


def encoding_name(model: str) -> str:
    """tiktoken's encoding for an OpenAI model name; ``o200k_base`` for any other model."""
    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return FALLBACK_ENCODING


def load_encoding(name: str, timeout_s: float = 5.0) -> tiktoken.Encoding | None:
    """The encoding, or None (after one warning) if it cannot be loaded within timeout_s."""
    if name in _unavailable:
        return None
    loaded: list[tiktoken.Encoding] = []
    failed: list[BaseException] = []

    def load() -> None:
        try:
            loaded.append(tiktoken.get_encoding(name))
        except Exception as exc:  # network, hash mismatch, unknown name...
            failed.append(exc)

    worker = threading.Thread(target=load, name=f"tiktoken-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if loaded:
        return loaded[0]
    _unavailable.add(name)
    reason = (
        f"{type(failed[0]).__name__}: {failed[0]}" if failed else f"no file within {timeout_s:g}s"
    )
    log.warning(
        "tiktoken encoding %s unavailable (%s); counting ~%g characters per token. "
        "Point TIKTOKEN_CACHE_DIR at a directory holding its file, or put tiktoken's files "
        "in ../shared/tiktoken_cache beside the checkout; `membot setup-assets` fetches them.",
        name,
        reason[:300],
        CHARS_PER_TOKEN,
    )
    return None


class TokenCounter:
    """Counts tokens of texts, chat messages and tool schemas for one model."""

    def __init__(self, model: str, *, load_timeout_s: float = 5.0) -> None:
        self.encoding_name = encoding_name(model)
        self._encoding = load_encoding(self.encoding_name, load_timeout_s)
        self._ratio = 1.0
        self._samples = 0

    @property
    def approximate(self) -> bool:
        """True when counting by characters because no tiktoken encoding could be loaded."""
        return self._encoding is None

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return len(self._encoding.encode_ordinary(text))  # special tokens count as text

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        """Tokens of OpenAI-style chat messages, including the reply priming."""
        total = REPLY_PRIMING if messages else 0
        for message in messages:
            total += PER_MESSAGE + self.count_text(str(message.get("role", "")))
            total += self.count_text(content_text(message.get("content")))
            if message.get("name"):
                total += PER_NAME + self.count_text(str(message["name"]))
            if message.get("tool_call_id"):
                total += self.count_text(str(message["tool_call_id"]))
            for call in message.get("tool_calls") or []:
                total += PER_TOOL_CALL + self._count_call(call)
        return total

    def count_tools(self, tools: Sequence[dict[str, Any]]) -> int:
        """Approximate cost of the tool definitions: their compact JSON."""
        if not tools:
            return 0
        return self.count_text(json.dumps(list(tools), separators=(",", ":")))

    # --- calibration against the server's prompt_tokens ---------------------------------
    @property
    def ratio(self) -> float:
        """Reported / estimated prompt tokens, smoothed (1.0 until calibrated)."""
        return self._ratio

    def calibrate(self, estimated: int, reported: int) -> None:
        """Fold one (our estimate, server's usage.prompt_tokens) pair into the ratio."""
        if estimated <= 0 or reported <= 0:
            return
        sample = min(max(reported / estimated, RATIO_MIN), RATIO_MAX)
        if self._samples == 0:
            self._ratio = sample  # the first real figure beats the 1.0 guess
        else:
            self._ratio += EMA_ALPHA * (sample - self._ratio)
        self._samples += 1

    def scaled(self, n: int) -> int:
        """An estimate corrected by the calibrated ratio (rounded up)."""
        return math.ceil(n * self._ratio)

    def _count_call(self, call: dict[str, Any]) -> int:
        fn = call.get("function") or {}
        args = fn.get("arguments", "")
        args_text = args if isinstance(args, str) else json.dumps(args)
        return self.count_text(str(fn.get("name", ""))) + self.count_text(args_text)

