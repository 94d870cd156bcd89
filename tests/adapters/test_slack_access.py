"""Slack: who may act on whose memory, for every /memory path, through signed requests
into the real bolt app (docs/privacy.md)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from bot.protocols import MemoryItem
from bot.testing.slack_payloads import action_body, command_body
from tests.adapters.conftest import SlackEnv

CANARY = "canary-amber-2718"
VICTIM = "slack:T1:U999"
PATHS = {"show": "show <@U999>", "search": "search <@U999> --notes canary amber secret",
         "export": "export <@U999>", "forget": "forget <@U999> canary amber",
         "reset": "reset <@U999>", "heartbeat": "heartbeat <@U999>", "audit": "audit <@U999>"}


async def _plant(slack: SlackEnv) -> None:
    await slack.svc.memory.write("archival", [MemoryItem(
        id=uuid.uuid4().hex, user=VICTIM, text=f"said in a DM: {CANARY}", ts=time.time(),
        kind="passage")])


async def _run(slack: SlackEnv, caller: str, text: str) -> str:
    """Send /memory TEXT as ``caller``; click a confirm button if one comes; all answers."""
    api = slack.api
    assert await slack.post_form(command_body(text, caller, api.response_url("a"))) == 200
    await api.wait(lambda: len(api.responses) >= 1)
    first = api.responses[0]
    if first.get("blocks"):
        value = str(first["blocks"][1]["elements"][0]["value"])
        assert await slack.post_form(action_body("memory_confirm", value, caller,
                                                 api.response_url("b"))) == 200
        await api.wait(lambda: len(api.responses) >= 2)
    uploads = [u.decode() for u in api.uploads]
    return "\n".join([json.dumps(r) for r in api.responses] + uploads)


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_workspace_admin_is_refused_on_every_path(slack: SlackEnv, path: str) -> None:
    """A workspace admin can neither see nor change a member's memory on any /memory path
    (What was seen 1); the member's memory and audit trail are unchanged."""
    await _plant(slack)
    shown = await _run(slack, "UADM", PATHS[path])
    assert "Only the person themselves" in shown and CANARY not in shown
    assert (await slack.svc.admin.show(VICTIM))["archival_notes"] == 1
    assert await slack.svc.audit_log.entries(VICTIM) == []


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_operator_may_act_and_the_person_is_told(slack: SlackEnv, path: str) -> None:
    """An id in SLACK_ADMIN_IDS may act on anyone's memory; the person gets a DM notice
    naming who did it."""
    await _plant(slack)
    shown = await _run(slack, "UOPS", PATHS[path])
    assert "Only the person" not in shown
    await slack.api.wait(lambda: any(p.get("channel") == "U999"
                                     for p in slack.api.calls_to("chat.postMessage")))
    notice = [p for p in slack.api.calls_to("chat.postMessage") if p.get("channel") == "U999"][0]
    assert "slack:T1:UOPS" in str(notice["markdown_text"]) and notice.get("thread_ts") is None


async def test_status_is_for_workspace_admins(slack: SlackEnv) -> None:
    """/memory status (no one's memory) is allowed to workspace admins, refused to members."""
    assert "membot status" in await _run(slack, "UADM", "status")
    slack.api.responses.clear()
    assert "Only this server's admins" in await _run(slack, "U1", "status")
