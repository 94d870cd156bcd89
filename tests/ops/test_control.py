"""The admin socket (bot.ops.control with adapters.cli_remote): long operations report as
they go, refusals arrive as the CLI's own errors, and only listed operations are served."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.cli_remote import RemoteAdmin, RemoteKnowledge
from bot.errors import AdminError, KnowledgeError, MembotError
from bot.ops.control import ControlServer
from tests.conftest import Harness


@pytest.fixture
async def sock(harness: Harness, tmp_path: Path) -> AsyncIterator[Path]:
    server = ControlServer(str(tmp_path / "admin.sock"), harness.svc.admin, harness.svc.knowledge_admin)
    assert await server.start()
    yield server.path
    await server.stop()


async def test_import_progress_arrives_before_the_answer(sock: Path) -> None:
    """An import through the socket calls the CLI's progress callback, ending at the total."""
    seen: list[tuple[int, int]] = []
    lines = [json.dumps({"role": "user", "content": f"note {i}", "timestamp": 1717000000 + i})
             for i in range(5)]
    counts = await RemoteAdmin(sock).import_lines("terminal:local:p", lines,
                                                  lambda done, total: seen.append((done, total)))
    assert counts["recall"] == 5
    assert seen and seen[-1] == (5, 5)


async def test_knowledge_add_reports_each_file_and_advances(sock: Path, tmp_path: Path) -> None:
    """`knowledge add` through the socket: a bad file is reported as found, progress advances
    to the number of files, and the outcomes come back as plain data."""
    (tmp_path / "ok.md").write_text("# Ok\n\nFine text.\n")
    (tmp_path / "bad.txt").write_bytes(b"\x89PNG\x00\x00binary")
    reported: list[dict[str, object]] = []
    advanced: list[tuple[int, int]] = []
    out = await RemoteKnowledge(sock).add("discord:1", [str(tmp_path / "ok.md"), str(tmp_path / "bad.txt")],
                                          report=reported.append,
                                          advance=lambda d, t: advanced.append((d, t)))
    assert sorted(o["status"] for o in out) == ["added", "failed"]
    assert [o["status"] for o in reported if o["status"] == "failed"] == ["failed"]
    assert advanced[0] == (0, 2) and advanced[-1] == (2, 2)


async def test_refusals_keep_their_kind_and_unknown_ops_are_refused(sock: Path) -> None:
    """An AdminError or KnowledgeError in the bot is raised as such by the CLI; an operation
    not listed is refused."""
    with pytest.raises(AdminError, match="no dead letter"):
        await RemoteAdmin(sock).drop_dead_letters(["nope"])
    with pytest.raises(KnowledgeError, match="not a knowledge scope"):
        await RemoteKnowledge(sock).listing("nonsense", 0.0)
    with pytest.raises(AdminError, match="unknown operation"):
        await RemoteAdmin(sock).call("forget_text", user="x", query="y")
    with pytest.raises(MembotError):
        await RemoteAdmin(sock).call("show", nonsense=1)
