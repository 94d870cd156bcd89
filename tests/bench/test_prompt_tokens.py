"""bench.prompt_tokens reads settings from .env like the bot (tokenizer files included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TIKTOKEN_DIR

REPO = Path(__file__).resolve().parents[2]


def test_prompt_tokens_reads_dot_env(tmp_path: Path) -> None:
    """TIKTOKEN_CACHE_DIR set only in ./.env gives tiktoken counts, not the approximation."""
    empty = tmp_path / "none"
    empty.mkdir()
    (tmp_path / ".env").write_text(f"TIKTOKEN_CACHE_DIR={TIKTOKEN_DIR}\nASSETS_DIRS={empty}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOKEN_", "ASSETS_"))}
    env.update(PYTHONPATH=str(REPO), HTTPS_PROXY="http://127.0.0.1:9")
    res = subprocess.run([sys.executable, "-m", "bench.prompt_tokens"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "(tokenizer tiktoken)" in res.stdout and "MISSED" not in res.stdout
