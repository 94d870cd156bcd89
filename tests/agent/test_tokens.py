"""TokenCounter: exact counts from offline tiktoken files, a bounded degraded mode, calibration."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.agent.tokens import PER_MESSAGE, REPLY_PRIMING, TokenCounter, encoding_name
from tests.conftest import TIKTOKEN_DIR

REPO = Path(__file__).resolve().parents[2]


def tiktoken_dir() -> Path:
    return TIKTOKEN_DIR


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> TokenCounter:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_dir()))
    return TokenCounter("gpt-4o-mini")


@pytest.fixture
def silent_proxy() -> Iterator[str]:
    """A proxy that accepts connections and never answers: a network that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


SCRIPT = """
import json, logging, sys, time
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
started = time.monotonic()
from bot.agent.tokens import TokenCounter
first = TokenCounter(sys.argv[1], load_timeout_s=float(sys.argv[2]))
second = TokenCounter(sys.argv[1], load_timeout_s=float(sys.argv[2]))
print(json.dumps({
    "approximate": first.approximate and second.approximate,
    "encoding": first.encoding_name,
    "hello": first.count_text("hello world"),
    "long": first.count_text("hello world " * 100),
    "seconds": time.monotonic() - started,
}))
"""


def run_counter(
    cache: Path, proxy: str, model: str = "gpt-4o-mini", timeout_s: float = 1.0
) -> tuple[dict[str, object], str]:
    """Count in a fresh interpreter (tiktoken caches encodings per process), network cut off."""
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache),
        "PYTHONPATH": str(REPO),
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, model, str(timeout_s)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout), done.stderr


# --- encodings -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("llama3.1:8b", "o200k_base"),
        ("qwen2.5-7b-instruct", "o200k_base"),
    ],
)
def test_encoding_for_model(model: str, expected: str) -> None:
    """OpenAI models get their tiktoken encoding; unknown (local) models get o200k_base."""
    assert encoding_name(model) == expected


def test_exact_counts_offline_from_cache(silent_proxy: str) -> None:
    """With TIKTOKEN_CACHE_DIR holding the files, counts are exact and no network is needed."""
    for model, encoding in (("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")):
        result, stderr = run_counter(tiktoken_dir(), silent_proxy, model, timeout_s=20)
        assert result["approximate"] is False and result["encoding"] == encoding
        assert (
            result["hello"] == 2 and result["long"] == 201
        )  # 100 × "hello world" + a trailing space
        assert "unavailable" not in stderr


def test_degrades_quickly_when_network_hangs(tmp_path: Path, silent_proxy: str) -> None:
    """Empty cache + a hanging network: one warning, approximate counts, back within the bound."""
    started = time.monotonic()
    result, stderr = run_counter(tmp_path, silent_proxy, timeout_s=1.0)
    assert time.monotonic() - started < 15  # interpreter start + one 1 s bounded wait
    assert result["approximate"] is True and float(str(result["seconds"])) < 5
    assert stderr.count("tiktoken encoding o200k_base unavailable") == 1
    assert result["hello"] == 3  # ceil(11 / 4)
    assert result["long"] == 300


def test_degrades_when_network_refuses(tmp_path: Path) -> None:
    """Empty cache + a refused connection: approximate counts without waiting for the bound."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result, stderr = run_counter(tmp_path, dead, timeout_s=30)
    assert result["approximate"] is True and float(str(result["seconds"])) < 10
    assert stderr.count("unavailable") == 1


# --- counting ------------------------------------------------------------------------------
def test_count_text(counter: TokenCounter) -> None:
    """Text counts come from the encoding; special-token text is counted, not rejected."""
    assert not counter.approximate
    assert counter.count_text("") == 0
    assert counter.count_text("hello world") == 2
    assert counter.count_text("<|endoftext|>") > 1


def test_count_messages_overheads(counter: TokenCounter) -> None:
    """Each message costs its texts plus a fixed overhead; the reply priming is added once."""
    assert counter.count_messages([]) == 0
    one = counter.count_messages([{"role": "user", "content": "hello world"}])
    assert one == REPLY_PRIMING + PER_MESSAGE + counter.count_text("user") + 2
    two = counter.count_messages([{"role": "user", "content": "hello world"}] * 2)
    assert two == 2 * one - REPLY_PRIMING
    named = counter.count_messages([{"role": "user", "content": "hello world", "name": "ann"}])
    assert named > one


def test_count_messages_includes_tool_call_arguments(counter: TokenCounter) -> None:
    """Assistant tool calls count their name and arguments; tool results count their content."""
    args = json.dumps({"message": "a fairly long reply to the user " * 10})
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "send_message", "arguments": args},
        }
    ]
    bare = counter.count_messages([{"role": "assistant", "content": None}])
    with_call = counter.count_messages(
        [{"role": "assistant", "content": None, "tool_calls": calls}]
    )
    assert with_call - bare >= counter.count_text(args)
    result = counter.count_messages(
        [{"role": "tool", "tool_call_id": "call_1", "content": "Sent."}]
    )
    assert result > REPLY_PRIMING + PER_MESSAGE


def test_count_tools(counter: TokenCounter) -> None:
    """Tool schemas cost about their JSON; no tools cost nothing."""
    schema = {
        "type": "function",
        "function": {
            "name": "archival_memory_search",
            "description": "Search archival memory by meaning.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
    assert counter.count_tools([]) == 0
    assert 20 < counter.count_tools([schema]) < 60
    assert counter.count_tools([schema, schema]) > counter.count_tools([schema])


# --- calibration ---------------------------------------------------------------------------
def test_calibration_math(counter: TokenCounter) -> None:
    """The first sample sets the ratio, later ones move it by an EMA; scaled() rounds up."""
    assert counter.ratio == 1.0 and counter.scaled(100) == 100
    counter.calibrate(100, 150)
    assert counter.ratio == pytest.approx(1.5)
    counter.calibrate(100, 100)
    assert counter.ratio == pytest.approx(1.4)  # 1.5 + 0.2 * (1.0 - 1.5)
    assert counter.scaled(100) == 140
    assert counter.scaled(7) == 10  # ceil(9.8)


def test_calibration_clamped_and_ignores_empty(counter: TokenCounter) -> None:
    """Samples are clamped to [0.5, 2.0]; zero or negative figures are ignored."""
    counter.calibrate(0, 500)
    counter.calibrate(100, 0)
    assert counter.ratio == 1.0
    counter.calibrate(100, 10_000)
    assert counter.ratio == 2.0
    for _ in range(100):
        counter.calibrate(1000, 1)
    assert counter.ratio == pytest.approx(0.5)
