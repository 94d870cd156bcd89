"""Write hygiene (no search output or tool text saved as facts), memory health's honest hit
rate, and reorganization of archival notes over the real embedded Qdrant engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.memory.health import step_searches
from bot.memory.hygiene import junk_reason
from bot.memory.longterm import LongTermMemory
from bot.memory.reorganize import reorganize
from bot.messages import Message, ToolCall
from bot.stores.qdrant_edge import EdgeVectorStore

T0 = 1.7e9


def test_pasted_search_results_are_refused() -> None:
    """A note that is our own search output (header or stamped lines) is junk."""
    assert junk_reason("> [2024-05-08 13:56] Caroline: I went to the LGBTQ support group", [])
    assert junk_reason("Past messages, best match first (page 0: matches 1-2): ...", [])


def test_copied_tool_output_is_refused_but_own_words_pass() -> None:
    """A note copied from a tool result in context is junk; the fact restated is saved."""
    tool = "Saved to archival memory. The weather service says: sunny and 24 degrees in Lisbon today."
    assert junk_reason("the weather service says: sunny and 24 degrees in Lisbon today.", [tool])
    assert junk_reason("Alice moved to Lisbon in May and likes sunny weather.", [tool]) is None


def _step(reply: str, result: str = "Past messages, best match first (page 0: matches 1-1):\n"
          "> [2024-05-08 09:00] user: My sister Ana moved to Porto in April") -> list[Message]:
    call = ToolCall("c1", "conversation_search", '{"query": "sister"}')
    send = ToolCall("c2", "send_message", '{"message": "' + reply + '"}')
    return [Message("user", "where does my sister live?", "user_message", T0),
            Message("assistant", "", "assistant", T0, tool_calls=[call]),
            Message("tool", result, "tool_result", T0, tool_call_id="c1", name="conversation_search"),
            Message("assistant", "", "assistant", T0, tool_calls=[send])]


def test_a_search_counts_as_a_hit_only_when_its_results_are_used() -> None:
    """Used = the reply repeats words of the matches not in the question; ignored and empty miss."""
    assert [u.used for u in step_searches(_step("Ana lives in Porto since April."))] == [True]
    assert [u.used for u in step_searches(_step("I don't know, sorry."))] == [False]
    empty = step_searches(_step("Porto?", result="No past messages found."))
    assert [(u.found, u.used) for u in empty] == [(False, False)]


@pytest.fixture
async def memory(tmp_path: Path, embedder: Any) -> AsyncIterator[LongTermMemory]:
    store = EdgeVectorStore(tmp_path / "q", prefix="t")
    await store.start(embedder.dim)
    yield LongTermMemory(store, embedder)
    await store.close()


async def test_reorganize_merges_copies_and_supersedes_by_topic(memory: LongTermMemory) -> None:
    """Exact copies become the first-said note; the older note on a topic is superseded and kept;
    --dry-run changes nothing; another user's notes are untouched."""
    a = await memory.insert_archival("u", "Alice has a beagle named Rex.", ts=T0)
    await memory.insert_archival("u", "alice has a beagle  named Rex.", ts=T0 + 5)
    old = await memory.insert_archival("u", "Alice lives in Denver.", ts=T0)
    await memory.store.set_meta("archival", "u", {old: {"topic": "user.city"}})
    new = await memory.insert_archival("u", "Alice moved to Seattle.", ts=T0 + 50)
    await memory.store.set_meta("archival", "u", {new: {"topic": "user.city"}})
    await memory.insert_archival("v", "Alice has a beagle named Rex.", ts=T0)
    await memory.insert_archival("v", "Alice has a beagle named Rex.", ts=T0 + 1)
    dry = await reorganize(memory, "u", 0.99, dry_run=True)
    assert dry.counts() == {"notes": 4, "duplicates_deleted": 1, "superseded": 1}
    assert len(await memory.all_items("archival", "u")) == 4
    done = await reorganize(memory, "u", 0.99)
    assert done.superseded == [(old, new, "topic user.city")]
    left = {i.id: i for i in await memory.all_items("archival", "u")}
    assert set(left) == {a, old, new} and left[old].meta["valid_to"] == T0 + 50
    assert len(await memory.all_items("archival", "v")) == 2
    again = await reorganize(memory, "u", 0.99)
    assert again.counts() == {"notes": 3, "duplicates_deleted": 0, "superseded": 0}
