"""The agent's knowledge_search tool over a real ingested folder: cites document and
section, searches the place's scope and global only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.events import Event, UserRef
from bot.knowledge import ingest
from bot.knowledge.scopes import scopes_of
from bot.testing.fake_openai import text, tool_call
from tests.conftest import Harness


def _last_tool_result(request: dict[str, Any]) -> str:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"][-1]


async def test_knowledge_search_cites_documents_of_this_place_only(harness: Harness, tmp_path: Path) -> None:
    """A member of g1 finds g1's and the global documents with document and section named;
    a member of g2 asking the same never sees g1's document."""
    docs = tmp_path / "g1docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# Server FAQ\n\n## Events\n\nGame night is every Friday at 20:00 UTC.\n\n"
                                 "## Roles\n\nAsk a moderator for the artist role.\n")
    (docs / "rules.txt").write_text("Be kind.\n\nNo spam.\n")
    kb = harness.svc.knowledge
    out = await ingest.add_files(kb, "test:g1", ingest.collect([docs]), actor="test")
    assert [o.status for o in out] == ["added", "added"]
    await kb.add("global", "about.md", b"# About membot\n\n## Privacy\n\nMemory is never shared between users.\n",
                 actor="op")

    harness.fake.push(tool_call("knowledge_search", query="when is game night", request_heartbeat=True),
                      text("Fridays"))
    await harness.say("when is game night?")
    result = _last_tool_result(harness.fake.requests[-1])
    assert "Server FAQ > Events (faq.md v1)" in result and "every Friday at 20:00" in result

    harness.fake.push(tool_call("knowledge_search", query="when is game night", request_heartbeat=True),
                      text("no idea"))
    await harness.say("when is game night?", user="bob", scope="g2")
    other = _last_tool_result(harness.fake.requests[-1])
    assert "Friday" not in other and "faq.md" not in other

    harness.fake.push(tool_call("knowledge_search", query="is memory shared between users", request_heartbeat=True),
                      text("no"))
    await harness.say("do you share memory?", user="bob", scope="g2")
    assert "About membot > Privacy (about.md v1, deployment-wide)" in _last_tool_result(harness.fake.requests[-1])


async def test_knowledge_search_tool_is_offered_and_the_prompt_says_when(harness: Harness) -> None:
    """The tool schema is sent to the model and the system instructions name it."""
    harness.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    await harness.say("hello")
    body = harness.fake.requests[-1]
    names = [t["function"]["name"] for t in body["tools"]]
    assert "knowledge_search" in names
    assert "knowledge_search" in body["messages"][0]["content"]
    harness.fake.push(tool_call("knowledge_search", query="", request_heartbeat=False), text("ok"))
    await harness.say("search nothing")
    assert "query is empty" in _last_tool_result(harness.fake.requests[-1])


def test_scopes_of_an_event_are_its_place_and_global() -> None:
    """Discord events carry their guild as place; Slack users' workspace is their place; a
    Discord DM (scope '-', no place) searches global only."""
    dm = Event(kind="user_message", user=UserRef("discord", "1", "-"))
    guild = Event(kind="user_message", user=UserRef("discord", "1", "-"), place="discord:55")
    slack = Event(kind="user_message", user=UserRef("slack", "U1", "T9"))
    assert scopes_of(dm) == ["global"]
    assert scopes_of(guild) == ["discord:55", "global"]
    assert scopes_of(slack) == ["slack:T9", "global"]
