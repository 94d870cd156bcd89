"""The ``membot`` command: help, configuration errors, memory import/search/export/reset,
and start-up on a machine without the offline assets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, model_env, new_prefix

REPO = Path(__file__).resolve().parents[1]


def membot(args: list[str], env: dict[str, str], stdin: str | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLM_", "OPENAI_", "DISCORD_", "SLACK_", "QDRANT_", "EMBEDDING_", "REDIS_"))}
    return subprocess.run([sys.executable, "-m", "adapters.cli", "--env-file", "/nonexistent", *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**base, **env})


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": new_prefix(), "QDRANT_PATH": str(tmp_path / "q"),
            "ADMIN_SOCKET": str(tmp_path / "admin.sock"), **model_env(), "LOG_LEVEL": "WARNING"}


def test_help_lists_every_command() -> None:
    """`membot --help` names every subcommand and each subcommand has its own help."""
    out = membot(["--help"], {}).stdout
    for cmd in ("run", "chat", "memory", "heartbeat", "sync-commands"):
        assert cmd in out
    sub = membot(["memory", "search", "--help"], {}).stdout
    assert "--kind" in sub and "--limit" in sub and "--json" in sub and "stdin" in sub


def test_run_without_llm_names_the_settings(cli_env: dict[str, str]) -> None:
    """Without an LLM endpoint `membot run` exits with a message naming what to set."""
    res = membot(["run"], cli_env)
    assert res.returncode == 2
    assert "OPENAI_API_KEY" in res.stderr and "LLM_BASE_URL" in res.stderr and "Ollama" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_setting_is_a_clear_error(cli_env: dict[str, str]) -> None:
    """An invalid setting names the variable instead of dumping a traceback."""
    res = membot(["memory", "show", "--user", "terminal:local:a"], {**cli_env, "LLM_CONTEXT_WINDOW": "lots"})
    assert res.returncode == 2 and "LLM_CONTEXT_WINDOW" in res.stderr and "Traceback" not in res.stderr


def test_import_search_export_reset(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Imported messages are searchable (JSON lines per query), exported, then reset away."""
    user = "terminal:local:imp"
    lines = [
        {"role": "user", "content": "My favourite climbing spot is Kalymnos in Greece.", "timestamp": "2024-05-02T10:00:00Z"},
        {"role": "assistant", "content": "Kalymnos sounds wonderful!", "timestamp": "2024-05-02T10:00:05Z"},
        {"role": "user", "content": "I adopted a beagle called Pretzel.", "timestamp": 1717000000, "name": "Ana"},
    ]
    src = tmp_path / "past.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = membot(["memory", "import", "--user", user, str(src)], cli_env)
    assert res.returncode == 0, res.stderr
    assert "imported 3 messages" in res.stdout

    res = membot(["memory", "search", "--user", user, "--json", "--limit", "2"], cli_env,
                 stdin="where do I go climbing?\nwhat is my dog's name\n")
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["where do I go climbing?", "what is my dog's name"]
    assert "Kalymnos" in rows[0]["hits"][0]["text"]
    assert "Pretzel" in rows[1]["hits"][0]["text"]
    assert {"text", "timestamp", "score"} <= set(rows[0]["hits"][0])

    out = tmp_path / "export.jsonl"
    assert membot(["memory", "export", "--user", user, "--out", str(out)], cli_env).returncode == 0
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert records[0]["type"] == "header" and records[0]["user"] == user
    assert sum(r["type"] == "recall" for r in records) == 3

    refused = membot(["memory", "reset", "--user", user], cli_env, stdin="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert membot(["memory", "reset", "--user", user, "--yes"], cli_env).returncode == 0
    show = membot(["memory", "show", "--user", user], cli_env)
    assert show.returncode == 1 and f"{user} has no memory" in show.stderr


def test_import_rejects_a_bad_line_and_changes_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    """One malformed line fails the whole import with its line number; nothing is written."""
    user = "terminal:local:bad"
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"role": "user", "content": "fine", "timestamp": 1}) + "\n"
                   + json.dumps({"role": "robot", "content": "x", "timestamp": 1}) + "\n")
    res = membot(["memory", "import", "--user", user, str(src)], cli_env)
    assert res.returncode == 1 and "line 2" in res.stderr and "role" in res.stderr
    show = membot(["memory", "show", "--user", user], cli_env)
    assert show.returncode == 1 and "has no memory" in show.stderr


def test_offline_without_assets_degrades_clearly(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No local model, no tiktoken files, no network: show works, search explains what to set."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**cli_env, "EMBEDDING_CACHE_DIR": str(empty), "TIKTOKEN_CACHE_DIR": str(empty),
           "ASSETS_DIRS": str(empty), "HF_HUB_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9"}
    env.pop("EMBEDDING_MODEL_PATH", None)
    show = membot(["memory", "show", "--user", "terminal:local:off"], env)
    assert show.returncode == 1 and "has no memory" in show.stderr, show.stderr  # no model needed
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"role": "user", "content": "hello", "timestamp": 1}) + "\n")
    res = membot(["memory", "import", "--user", "terminal:local:off", str(src)], env)
    assert res.returncode == 1
    assert "EMBEDDING_MODEL_PATH" in res.stderr and "Traceback" not in res.stderr


def test_offline_without_assets_fails_fast_and_quietly(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No assets, nothing cached, no network (and no HF_HUB_OFFLINE): search fails within
    seconds with one clear message naming where to put the model, no ERROR retry lines."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**cli_env, "EMBEDDING_CACHE_DIR": str(empty), "TIKTOKEN_CACHE_DIR": str(empty),
           "ASSETS_DIRS": str(empty), "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    env.pop("EMBEDDING_MODEL_PATH", None)
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"role": "user", "content": "hello", "timestamp": 1}) + "\n")
    started = time.monotonic()
    res = membot(["memory", "import", "--user", "terminal:local:off", str(src)], env)
    took = time.monotonic() - started
    assert res.returncode == 1
    assert took < 20, f"took {took:.0f} s"
    assert "../shared/models/all-MiniLM-L6-v2-onnx" in res.stderr and "setup-assets" in res.stderr
    assert "ERROR" not in res.stderr and "retries left" not in res.stderr
    assert "Traceback" not in res.stderr


def test_assets_beside_the_checkout_are_found_without_settings(cli_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    """With EMBEDDING_MODEL_PATH and TIKTOKEN_CACHE_DIR unset, the model and tokenizer files
    are found in ASSETS_DIRS (../shared by default) and searching works offline."""
    from tests.conftest import MODEL_DIR, TIKTOKEN_DIR
    if MODEL_DIR is None:
        pytest.skip("no offline assets on this machine")
    env = {k: v for k, v in cli_env.items() if k not in ("EMBEDDING_MODEL_PATH", "TIKTOKEN_CACHE_DIR")}
    env.update(ASSETS_DIRS=f"/nonexistent:{MODEL_DIR.parent.parent}:{TIKTOKEN_DIR.parent}",
               HF_HUB_OFFLINE="1")
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"role": "user", "content": "hello", "timestamp": 1}) + "\n")
    assert membot(["memory", "import", "--user", "terminal:local:found", str(src)], env).returncode == 0
    res = membot(["memory", "search", "--user", "terminal:local:found", "hello"], env)
    assert res.returncode == 0, res.stderr
    assert "approximate" not in res.stderr


def test_setup_assets_says_where_the_assets_are(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`membot setup-assets` prints the directories it found; offline without them it says
    MISSING for each and exits 1 within seconds."""
    from tests.conftest import MODEL_DIR, TIKTOKEN_DIR
    if MODEL_DIR is None:
        pytest.skip("no offline assets on this machine")
    env = {k: v for k, v in cli_env.items() if k not in ("EMBEDDING_MODEL_PATH", "TIKTOKEN_CACHE_DIR")}
    found = membot(["setup-assets"], {**env, "ASSETS_DIRS": f"{MODEL_DIR.parent.parent}:{TIKTOKEN_DIR.parent}"})
    assert found.returncode == 0, found.stderr
    assert f"embedding model: found in {MODEL_DIR}" in found.stdout
    assert "tokenizer files: found in" in found.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = membot(["setup-assets"], {**env, "ASSETS_DIRS": str(empty), "EMBEDDING_CACHE_DIR": str(empty),
                                        "TIKTOKEN_CACHE_DIR": str(empty), "HTTPS_PROXY": "http://127.0.0.1:9"},
                     timeout=60)
    assert missing.returncode == 1
    assert "embedding model: MISSING" in missing.stdout and "tokenizer files: MISSING" in missing.stdout


def _import(cli_env: dict[str, str], tmp_path: Path, user: str, lines: list[dict[str, object]]) -> str:
    src = tmp_path / f"{user.replace(':', '_')}.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = membot(["memory", "import", "--user", user, str(src)], cli_env)
    assert res.returncode == 0, res.stderr
    return res.stdout


HELLO = [{"role": "user", "content": "Hello, I am new here.", "timestamp": "2024-05-02T10:00:00Z"}]


def test_a_short_name_resolves_when_unambiguous(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`--user alice` means terminal:local:alice when only that key ends with alice; with two
    candidates the CLI lists both and changes nothing."""
    _import(cli_env, tmp_path, "terminal:local:alice", HELLO)
    show = membot(["memory", "show", "--user", "alice"], cli_env)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["user"] == "terminal:local:alice"
    assert "alice -> terminal:local:alice" in show.stderr
    _import(cli_env, tmp_path, "slack:T1:alice", HELLO)
    both = membot(["memory", "show", "--user", "alice"], cli_env)
    assert both.returncode == 1
    assert "terminal:local:alice" in both.stderr and "slack:T1:alice" in both.stderr
    nobody = membot(["memory", "show", "--user", "zed"], cli_env)
    assert nobody.returncode == 1 and "no user matches 'zed'" in nobody.stderr


def test_operations_on_a_key_without_memory_say_so(cli_env: dict[str, str]) -> None:
    """show/export/reset of a key that has nothing stored say so (exit 1), never "deleted"."""
    for args in (["show"], ["export"], ["reset", "--yes"], ["search", "hello"]):
        res = membot(["memory", args[0], "--user", "nobody:x:y", *args[1:]], cli_env)
        assert res.returncode == 1, args
        assert "nobody:x:y has no memory" in res.stderr, args
        assert "deleted" not in res.stdout


def test_import_reports_every_bad_line_before_writing(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Three bad lines among good ones: all three are named; nothing is written."""
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join([json.dumps(HELLO[0]), "{not json", json.dumps({"role": "robot", "content": "x", "timestamp": 1}),
                              json.dumps(HELLO[0]), json.dumps({"role": "user", "content": "x"})]) + "\n")
    res = membot(["memory", "import", "--user", "terminal:local:bad3", str(src)], cli_env)
    assert res.returncode == 1
    assert "3 bad line(s)" in res.stderr
    assert "line 2" in res.stderr and "line 3" in res.stderr and "line 5" in res.stderr
    assert membot(["memory", "show", "--user", "terminal:local:bad3"], cli_env).returncode == 1  # no memory


def test_reimporting_the_same_file_stores_it_once(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The same lines imported twice: the second import reports 0 new; recall holds them once."""
    lines = [*HELLO, {"role": "assistant", "content": "Welcome!", "timestamp": "2024-05-02T10:00:05Z"}]
    assert "2 new" in _import(cli_env, tmp_path, "terminal:local:twice", lines)
    assert "0 new, 2 already there" in _import(cli_env, tmp_path, "terminal:local:twice", lines)
    show = json.loads(membot(["memory", "show", "--user", "terminal:local:twice"], cli_env).stdout)
    assert show["recall_messages"] == 2


def test_search_output_is_speaker_time_and_words(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Plain search output: score, time, speaker and text; no internal event headers."""
    _import(cli_env, tmp_path, "terminal:local:ana", [
        {"role": "user", "content": "[user Ana, DM, 2024-05-02 10:00 UTC] I climb at Kalymnos.",
         "timestamp": "2024-05-02T10:00:00Z", "name": "Ana"}])
    res = membot(["memory", "search", "--user", "terminal:local:ana", "climbing"], cli_env)
    assert res.returncode == 0, res.stderr
    assert "2024-05-02 10:00  Ana: I climb at Kalymnos." in res.stdout
    assert "[user" not in res.stdout


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reorganize_and_stats(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`memory reorganize --dry-run` reports without changing; then merges; `stats` prints health;
    a bad threshold is a clear error."""
    user = "terminal:local:reo"
    lines = [{"role": "user", "content": "hello there", "timestamp": 1717000000}]
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps(lines[0]) + "\n")
    assert membot(["memory", "import", "--user", user, str(src)], cli_env).returncode == 0
    dry = membot(["memory", "reorganize", "--user", user, "--dry-run"], cli_env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True
    bad = membot(["memory", "reorganize", "--user", user, "--threshold", "3"], cli_env)
    assert bad.returncode == 1 and "--threshold" in bad.stderr and "Traceback" not in bad.stderr
    stats = membot(["stats", "--json"], cli_env)
    assert stats.returncode == 0, stats.stderr
    assert {"users", "hit_rate", "items"} <= set(json.loads(stats.stdout))
    show = json.loads(membot(["memory", "show", "--user", user], cli_env).stdout)
    assert show["memory_health"]["searches"] == 0 and show["memory_health"]["hit_rate"] is None


async def test_commands_without_a_running_bot_embed_on_every_core(tmp_path: Path) -> None:
    """EMBEDDING_THREADS=0 means all cores but one in the bot (replies need the other); a CLI
    command that opens the stores itself (an import with no bot running) uses them all."""
    import os

    from adapters.cli import _with_service
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, "http://127.0.0.1:9/v1", admin_socket="off", embedding_threads=0)
    seen: list[int] = []

    async def probe(svc: object) -> int:
        seen.append(svc.embedder._threads)  # type: ignore[attr-defined]
        return 0

    assert await _with_service(settings, probe) == 0
    assert seen == [os.cpu_count() or 1] and settings.embedding_threads == 0  # the caller's untouched
    from bot.memory.embeddings import FastEmbedEmbedder
    assert FastEmbedEmbedder(threads=None)._threads == max(1, (os.cpu_count() or 2) - 1)
