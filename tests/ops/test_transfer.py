"""Data that moves: export -> import between deployments and backends is lossless and
idempotent, checks every line first, and never touches another user's items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.errors import AdminError
from bot.ops import transfer
from bot.stores.qdrant_server import ServerVectorStore
from bot.testing.fake_openai import call, tool_call, tool_calls
from tests.conftest import Harness, make_settings, start_service

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


async def _populate(h: Harness) -> str:
    """A user with a conversation (tool calls included), core memory, a summary, archival
    notes and a link."""
    h.fake.push(tool_calls([call("core_memory_append", label="human", content="Ana climbs.",
                                 request_heartbeat=True)]),
                tool_call("send_message", message="Kalymnos is lovely!"))
    await h.say("I climb at Kalymnos every May.")
    h.fake.push(tool_call("archival_memory_insert", content="Ana's dog is Pretzel, a beagle.",
                          request_heartbeat=True),
                tool_call("send_message", message="Noted."))
    await h.say("My beagle is called Pretzel.")
    user = h.key()
    await h.svc.admin.edit(user, lambda s: setattr(s, "summary", "Ana talked about climbing.") or "")
    await h.svc.links.restore("slack:T1:UANA", user)  # links are durable (bot.memory.links)
    await h.svc.writer.flush()
    return user


def _comparable(lines: list[str]) -> list[dict[str, Any]]:
    records = [json.loads(x) for x in lines]
    records[0].pop("exported_at")
    return records


async def test_export_import_round_trip_into_the_server_backend_is_lossless(
        harness: Harness, tmp_path: Path, embedder: Any) -> None:
    """Everything of a user (core, summary, recall with tool calls, archival, links,
    timestamps) exported from the embedded engine and imported into a Qdrant-server-backed
    deployment exports identically; importing it again adds nothing."""
    user = await _populate(harness)
    exported = await harness.svc.admin.export_lines(user)
    kinds = [json.loads(x)["type"] for x in exported]
    assert kinds.count("recall") >= 4 and kinds.count("archival") == 1 and "link" in kinds

    other = make_settings(tmp_path / "b", harness.fake.base_url)
    svc_b, _ = await start_service(other, embedder, store=ServerVectorStore(location=":memory:"))
    try:
        first = await svc_b.admin.import_lines(user, exported)
        again = await svc_b.admin.import_lines(user, exported)
        assert first["recall"] + first["archival"] == first["lines"] > 0
        assert again["recall"] == again["archival"] == 0
        assert _comparable(await svc_b.admin.export_lines(user)) == _comparable(exported)
        state = await svc_b.states.load(user)
        assert "Ana climbs." in state.human.value and state.summary == "Ana talked about climbing."
        assert state.fifo, "a user moved to a new deployment gets their recent context back"
        assert await svc_b.admin.resolve("slack:T1:UANA") == user
    finally:
        await svc_b.stop()


async def test_the_chat_download_document_imports_too(harness: Harness) -> None:
    """The JSON document the chat commands send (Admin.export) is accepted by import."""
    user = await _populate(harness)
    doc = json.dumps(await harness.svc.admin.export(user), indent=2)
    again = await harness.svc.admin.import_lines(user, doc.splitlines())
    assert again["lines"] > 0 and again["recall"] == again["archival"] == 0


async def test_import_under_another_user_leaves_the_source_untouched(harness: Harness) -> None:
    """Importing alice's export as bob on the same deployment copies it: alice's items keep
    their owner and count, bob gets the same number of his own."""
    user = await _populate(harness)
    exported = [x for x in await harness.svc.admin.export_lines(user) if '"type": "link"' not in x]
    before = await harness.svc.memory.counts(user)
    bob = harness.key("bob")
    await harness.svc.admin.import_lines(bob, exported)
    assert await harness.svc.memory.counts(user) == before
    assert await harness.svc.memory.counts(bob) == before
    items = await harness.svc.memory.by_time("recall", user, limit=100)
    assert {i.user for i in items} == {user}


async def test_every_bad_line_is_reported_up_to_a_cap_and_nothing_is_written(harness: Harness) -> None:
    """25 bad lines among good ones: the error names 20 and counts the rest; nothing stored."""
    good = json.dumps({"role": "user", "content": "fine", "timestamp": 1})
    lines = [good] + [json.dumps({"role": "robot", "content": "x", "timestamp": 1})] * 25 + [good]
    with pytest.raises(AdminError) as err:
        await harness.svc.admin.import_lines(harness.key("c"), lines)
    text = str(err.value)
    assert "25 bad line(s)" in text and "line 2:" in text and "line 21:" in text
    assert "line 22:" not in text and "and 5 more" in text
    assert await harness.svc.memory.counts(harness.key("c")) == (0, 0)
    assert not await harness.svc.admin.has_memory(harness.key("c"))


def test_parse_rejects_a_foreign_header_and_unknown_records() -> None:
    """A header of another format and an unknown record type are bad lines."""
    with pytest.raises(AdminError) as err:
        transfer.parse([json.dumps({"type": "header", "format": "other", "version": 1}),
                        json.dumps({"type": "gossip"})], "t:-:u")
    assert "line 1" in str(err.value) and "line 2" in str(err.value)
