"""Every `membot` command that reads or changes memory works while `membot run` holds the
embedded engine: it goes through the bot's admin socket and prints what it prints offline;
`membot chat`, which cannot go through it, says what to do instead."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.runtime.delivery import dead_letter
from bot.stores.redis_store import RedisStore
from tests.conftest import REDIS_URL, wait_until_ready
from tests.test_cli import REPO, _free_port, cli_env, membot  # noqa: F401  (cli_env is a fixture)
from tests.test_cli import _import as import_file

pytestmark = pytest.mark.slow


@pytest.fixture
async def live(cli_env: dict[str, str], fake_llm: Any) -> AsyncIterator[dict[str, str]]:  # noqa: F811
    """A running `membot run` on ``cli_env``'s stores; yields that environment."""
    port = _free_port()
    env = {**os.environ, **cli_env, "LLM_BASE_URL": fake_llm.base_url, "LLM_API_KEY": "test",
           "OPS_PORT": str(port), "HEARTBEAT_ENABLED": "false"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "--env-file", "/nonexistent", "run",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert await wait_until_ready(port, 60), "membot run did not become ready"
        yield cli_env
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert not await asyncio.to_thread(Path(cli_env["ADMIN_SOCKET"]).exists)  # removed on exit
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def cli(env: dict[str, str], *args: str) -> Any:
    res = await asyncio.to_thread(membot, list(args), env)
    assert "Traceback" not in res.stderr and "another process" not in res.stderr, res.stderr
    return res


async def _import(env: dict[str, str], tmp_path: Path, user: str, texts: list[str]) -> None:
    src = tmp_path / f"{user.replace(':', '_')}.jsonl"
    src.write_text("".join(json.dumps({"role": "user", "content": t, "timestamp": 1717000000 + i}) + "\n"
                           for i, t in enumerate(texts)))
    res = await cli(env, "memory", "import", "--user", user, str(src))
    assert res.returncode == 0, res.stderr


async def test_reorganize_and_stats_on_a_live_bot(live: dict[str, str], tmp_path: Path) -> None:
    """`memory reorganize` (one user, --all, --dry-run, a bad threshold) and `stats` (plain
    and --json) answer from the running bot."""
    await _import(live, tmp_path, "terminal:local:reo1", ["I keep bees."])
    await _import(live, tmp_path, "terminal:local:reo2", ["I grow tomatoes.", "I like rain."])
    dry = await cli(live, "memory", "reorganize", "--user", "reo1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True
    every = await cli(live, "memory", "reorganize", "--all")
    assert every.returncode == 0, every.stderr
    reports = [json.loads(line) for line in every.stdout.splitlines()]
    assert sorted(r["user"] for r in reports) == ["terminal:local:reo1", "terminal:local:reo2"]
    assert all(r["dry_run"] is False for r in reports)
    bad = await cli(live, "memory", "reorganize", "--user", "reo1", "--threshold", "3")
    assert bad.returncode == 1 and "--threshold" in bad.stderr
    stats = await cli(live, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    doc = json.loads(stats.stdout)
    assert doc["items"] == 3 and len(doc["users"]) == 2
    plain = await cli(live, "stats")
    assert plain.returncode == 0 and plain.stdout.startswith("users 2  items 3"), plain.stderr
    assert "terminal:local:reo2" in plain.stdout


async def test_dead_letters_on_a_live_bot(live: dict[str, str]) -> None:
    """`dead-letters list|drop|retry` act on the running bot's dead letters."""
    redis = RedisStore(REDIS_URL, live["REDIS_PREFIX"])
    try:
        for n in (1, 2):
            await redis.add_dead_letter(dead_letter("reply", f"terminal:local:dl{n}",
                                                    json.dumps({"text": f"lost {n}"}), "503", 10))
        listing = await cli(live, "dead-letters", "list", "--json")
        assert listing.returncode == 0, listing.stderr
        entries = [json.loads(line) for line in listing.stdout.splitlines()]
        assert [e["user"] for e in entries] == ["terminal:local:dl1", "terminal:local:dl2"]
        plain = await cli(live, "dead-letters", "list")
        assert "terminal:local:dl1" in plain.stdout and "lost 1" in plain.stdout
        dropped = await cli(live, "dead-letters", "drop", entries[0]["id"])
        assert dropped.returncode == 0 and "dropped 1" in dropped.stdout, dropped.stderr
        unknown = await cli(live, "dead-letters", "drop", "nope")
        assert unknown.returncode == 1 and "no dead letter with id nope" in unknown.stderr
        retried = await cli(live, "dead-letters", "retry", "--all")
        assert retried.returncode == 0 and "queued 1 again" in retried.stdout, retried.stderr
    finally:
        await redis.close()


async def test_knowledge_on_a_live_bot(live: dict[str, str], tmp_path: Path) -> None:
    """`knowledge add|sync|list|show|search|remove` go through the running bot, with a bad
    file named as it is found and the same summaries as offline."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rules.md").write_text("# Rules\n\n## Voice\n\nNo music bots in the study room.\n")
    (docs / "logo.txt").write_bytes(b"\x89PNG\x00\x00binary")
    res = await cli(live, "knowledge", "add", "--scope", "discord:77", str(docs))
    assert res.returncode == 1
    assert "logo.txt: looks binary" in res.stdout + res.stderr
    assert "1 added, 1 failed" in res.stdout
    (docs / "logo.txt").unlink()
    (docs / "rules.md").write_text("# Rules\n\n## Voice\n\nMusic bots only in #music.\n")
    res = await cli(live, "knowledge", "sync", "--scope", "discord:77", str(docs), "--by", "ops")
    assert res.returncode == 0 and "1 updated" in res.stdout, res.stdout + res.stderr
    listing = json.loads((await cli(live, "knowledge", "list", "--scope", "discord:77", "--json")).stdout)
    assert [(d["source"], d["version"], d["by"]) for d in listing["docs"]] == [("rules.md", 2, "ops")]
    every = await cli(live, "knowledge", "list")
    assert "discord:77: 1 documents" in every.stdout, every.stderr
    shown = json.loads((await cli(live, "knowledge", "show", "--scope", "discord:77", "rules.md")).stdout)
    assert [e["version"] for e in shown["history"]] == [1, 2]
    found = await cli(live, "knowledge", "search", "--scope", "discord:77", "where can music bots play?")
    assert "Rules > Voice (rules.md v2)" in found.stdout, found.stderr
    res = await cli(live, "knowledge", "remove", "--scope", "discord:77", "rules.md")
    assert res.returncode == 0 and "removed rules.md" in res.stdout, res.stderr
    res = await cli(live, "knowledge", "add", "--scope", "nonsense", str(docs))
    assert res.returncode == 1 and "not a knowledge scope" in res.stderr


async def test_chat_beside_a_live_bot_says_what_to_do(live: dict[str, str]) -> None:
    """`membot chat` while `membot run` holds the embedded engine exits 1 with one line that
    says why and what to do, instead of a lock error."""
    res = await asyncio.to_thread(membot, ["chat", "--user", "x"],
                                  {**live, "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_API_KEY": "k"})
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "membot run" in res.stderr and "admin socket" in res.stderr
    assert "Traceback" not in res.stderr and "another process" not in res.stderr


async def test_memory_commands_work_on_a_live_bot(live: dict[str, str], tmp_path: Path) -> None:
    """While `membot run` holds the embedded engine, memory import/show/search/export/reset
    reach it through its admin socket; without the socket they cannot open the engine."""
    out = await asyncio.to_thread(import_file, live, tmp_path, "terminal:local:live", [
        {"role": "user", "content": "I keep bees on my roof.", "timestamp": "2024-05-02T10:00:00Z"}])
    assert "1 new" in out
    show = await asyncio.to_thread(membot, ["memory", "show", "--user", "live"], live)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["recall_messages"] == 1
    found = await asyncio.to_thread(membot, ["memory", "search", "--user", "live", "bees"], live)
    assert "I keep bees on my roof." in found.stdout, found.stderr
    exported = await asyncio.to_thread(membot, ["memory", "export", "--user", "live"], live)
    assert json.loads(exported.stdout.splitlines()[0])["type"] == "header"
    direct = await asyncio.to_thread(membot, ["memory", "show", "--user", "terminal:local:live"],
                                     {**live, "ADMIN_SOCKET": "off"})
    assert direct.returncode == 1 and "another process" in direct.stderr
    reset = await asyncio.to_thread(membot, ["memory", "reset", "--user", "live", "--yes"], live)
    assert reset.returncode == 0 and "deleted" in reset.stdout, reset.stderr
