"""The chaos suite, bounded for CI: a real `membot run` under SIGKILLs, Slack and LLM faults
and one Redis FLUSHALL loses nothing and answers nothing twice."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server for a private Redis")
def test_chaos_run_loses_nothing_and_answers_once() -> None:
    """60 messages, 8 users, 2 kill -9s, faults, one flush: 0 lost, 0 twice, 0 wrong target."""
    res = subprocess.run([sys.executable, "-m", "bench.chaos", "--users", "8", "--messages", "60",
                          "--seconds", "40", "--kills", "2", "--drain", "60", "--seed", "7"],
                         cwd=REPO, capture_output=True, text=True, timeout=240)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr[-3000:]
    assert re.search(r"lost 0  answered twice 0  wrong target 0  stuck users 0", out), out
    assert "replays after the flush answered again 0/" in out
    assert re.search(r"recovery after each kill \(s\): \d", out)
