"""A newcomer's first hour: the README's quick start in a fresh clone of this commit, the
scripts' Redis handling, offline assets found where the README says, and the README's
promises (venv activation, test variables, where the assets come from)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODEL_DIR, TIKTOKEN_DIR, wait_until_ready

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
HAVE_REDIS_SERVER = shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _shutdown_redis(port: int) -> None:
    if _answers(port):
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True,
                       timeout=10)


@pytest.fixture
def spare_port() -> Iterator[int]:
    """A free local port; a Redis the test's scripts start there is shut down afterwards."""
    port = _free_port()
    yield port
    _shutdown_redis(port)


def _section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


# --- scripts -----------------------------------------------------------------------------------
@pytest.mark.skipif(not HAVE_REDIS_SERVER, reason="redis-server is not installed")
def test_ensure_redis_starts_one_on_the_port_of_redis_url(spare_port: int) -> None:
    """scripts/ensure-redis honours REDIS_URL's port: nothing there -> a local Redis there."""
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{spare_port}/0"}
    res = subprocess.run([str(REPO / "scripts/ensure-redis")], env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert _answers(spare_port)


def test_ensure_redis_refuses_a_remote_url_that_does_not_answer() -> None:
    """A remote REDIS_URL that does not answer is an error naming it; nothing is started."""
    res = subprocess.run([str(REPO / "scripts/ensure-redis"), "redis://no-such-host.invalid:6379/0"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "REDIS_URL" in res.stderr


def test_scripts_run_checks_the_redis_url_it_will_use() -> None:
    """scripts/run hands the REDIS_URL it resolved (env, else .env) to ensure-redis instead
    of skipping Redis whenever .env sets REDIS_URL (which .env.example always does)."""
    text = (REPO / "scripts/run").read_text()
    assert "ensure-redis" in text and "grep -qE '^REDIS_URL=.+'" not in text
    assert re.search(r'scripts/ensure-redis "\$\{url', text)


def test_pyproject_license_is_an_spdx_string() -> None:
    """project.license is a plain SPDX string: setuptools prints no deprecation on install."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"


# --- README ----------------------------------------------------------------------------------
def test_readme_commands_say_to_activate_the_venv() -> None:
    """The Commands section tells how to get `membot` on PATH (activate .venv)."""
    assert ". .venv/bin/activate" in _section("Commands")


def test_readme_says_where_offline_assets_come_from() -> None:
    """The quick start names the asset directories searched and the command that fetches them."""
    quick = _section("Quick start")
    for needle in ("../shared/models/all-MiniLM-L6-v2-onnx", "../shared/tiktoken_cache",
                   "membot setup-assets", "ASSETS_DIRS"):
        assert needle in quick, needle


def test_readme_documents_the_test_variables() -> None:
    """The Development section says how to point the tests at another Redis and assets."""
    dev = _section("Development")
    for var in ("MEMBOT_TEST_REDIS_URL", "REDIS_URL", "MEMBOT_TEST_MODEL_DIR",
                "MEMBOT_TEST_TIKTOKEN_DIR"):
        assert var in dev, var


# --- the documented quick start in a temporary clone (slow) -----------------------------------------
def _site_packages() -> str:
    import sysconfig
    return sysconfig.get_paths()["purelib"]


def _clone(tmp_path: Path, with_shared: bool) -> Path:
    """A git clone of this commit with a .venv reusing this venv's packages (bounded time)."""
    work = tmp_path / "w"
    work.mkdir()
    subprocess.run(["git", "clone", "-q", str(REPO), str(work / "membot")], check=True, timeout=120)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    clone = work / "membot"
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", head], check=True, timeout=60)
    if with_shared:
        assert MODEL_DIR is not None, "this test needs the offline assets (see conftest)"
        (work / "shared" / "models").mkdir(parents=True)
        (work / "shared" / "models" / "all-MiniLM-L6-v2-onnx").symlink_to(MODEL_DIR.resolve())
        (work / "shared" / "tiktoken_cache").symlink_to(TIKTOKEN_DIR.resolve())
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(clone / ".venv")], check=True, timeout=120)
    purelib = subprocess.run([str(clone / ".venv/bin/python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_reuse_test_venv.pth").write_text(_site_packages() + "\n")
    return clone


def _clean_env(**over: str) -> dict[str, str]:
    """The environment of a new shell: none of our settings; this venv's tools (ruff, mypy,
    whose packages the clone's venv reuses) last on PATH."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLM_", "OPENAI_", "DISCORD_", "SLACK_", "QDRANT_", "EMBEDDING_",
                                 "REDIS_", "TIKTOKEN_", "MEMBOT_", "HF_", "VIRTUAL_ENV", "PYTEST"))}
    path = [p for p in keep.get("PATH", "").split(":") if ".venv" not in p]
    keep["PATH"] = ":".join([*path, str(Path(sys.executable).parent)])
    return {**keep, **over}


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_REDIS_SERVER, reason="redis-server is not installed")
async def test_quick_start_in_a_fresh_clone(tmp_path: Path, spare_port: int, fake_llm: object) -> None:
    """In a fresh clone with ../shared beside it and no Redis at REDIS_URL: scripts/run
    installs quietly, creates .env, starts Redis, finds the assets and serves until SIGTERM;
    scripts/test passes a selection and fails when pytest collects nothing."""
    import asyncio
    import signal

    clone = _clone(tmp_path, with_shared=True)
    ops = _free_port()
    env = _clean_env(REDIS_URL=f"redis://127.0.0.1:{spare_port}/0", LLM_BASE_URL=fake_llm.base_url,  # type: ignore[attr-defined]
                     OPS_PORT=str(ops), REDIS_PREFIX=f"qs{os.urandom(4).hex()}", CI="true")
    proc = await asyncio.create_subprocess_exec(
        str(clone / "scripts/run"), cwd=clone, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        ready = await wait_until_ready(ops, 600, alive=lambda: proc.returncode is None)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode()
    assert ready, log[-3000:]
    assert proc.returncode == 0, log[-3000:]
    assert (clone / ".env").is_file() and "created .env" in log
    assert "starting redis-server" in log
    assert "deprecated" not in log.lower() and "Traceback" not in log
    assert "approximate" not in log  # tiktoken files found in ../shared
    assert not list((clone / "data").rglob("*.onnx"))  # the model came from ../shared

    test_env = _clean_env(REDIS_URL=f"redis://127.0.0.1:{spare_port}/0", CI="true")
    res, none = await asyncio.to_thread(_scripts_test, clone, test_env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert none.returncode == 1 and "collected no tests" in none.stderr


def _scripts_test(clone: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], ...]:
    """scripts/test on a selection, then on a selection that matches nothing."""
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(clone / "scripts/test"), *args], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    return run("-m", "not slow", "tests/test_layout.py", "tests/test_quickstart.py"), \
        run("-k", "no_test_has_this_name")


def _commented(lines: list[str], n: int) -> bool:
    """A comment line in the block (up to a blank line) that ``lines[n]`` ends."""
    while n > 0 and lines[n - 1].strip():
        n -= 1
        if lines[n].startswith("# "):
            return True
    return False


def test_env_example_documents_every_setting() -> None:
    """Every Settings field (or one of its aliases) has a NAME= line in .env.example under a
    comment; no line there names a setting that does not exist."""
    from pydantic import AliasChoices

    from bot.config import Settings

    text = (REPO / ".env.example").read_text()
    lines = text.splitlines()
    named = {m.group(1): n for n, line in enumerate(lines)
             if (m := re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line))}
    known: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = {name.upper()} | ({str(a).upper() for a in alias.choices} if isinstance(alias, AliasChoices) else set())
        known |= choices
        found = [named[c] for c in choices if c in named]
        assert found, f"{name.upper()} is not in .env.example"
        assert any(_commented(lines, n) for n in found), f"{name.upper()} has no comment above it"
    assert set(named) <= known, f"unknown settings in .env.example: {sorted(set(named) - known)}"
