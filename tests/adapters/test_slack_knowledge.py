"""Slack knowledge: a file shared with `knowledge add` by a workspace admin becomes a
document of that workspace (downloaded with the bot token); `/knowledge` lists, removes and
searches; members cannot add; bad files are refused and change nothing."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.testing.slack_api import FakeSlack
from bot.testing.slack_payloads import TEAM, command, dm, event_body, mention
from tests.adapters.conftest import SlackEnv, slack_env

RULES = b"# Rules\n\n## Voice\n\nMusic bots only in #music.\n\n## Roles\n\nAsk a moderator for roles.\n"


class FilesSlack(FakeSlack):
    """The fake Web API plus private file downloads that need the bot token."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/files/{name}", self._file)

    async def _file(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.Response(status=403)
        self.downloads.append(request.match_info["name"])
        return web.Response(body=self.files[request.match_info["name"]])

    def shared(self, name: str, data: bytes) -> dict[str, Any]:
        self.files[name] = data
        return {"id": f"F{len(self.files)}", "name": name, "size": len(data),
                "url_private_download": f"{self.url}/files/{name}"}


@pytest.fixture
async def slack(tmp_path: Path, fake_llm: Any, embedder: Any) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, fake_llm, embedder, FilesSlack) as env:
        yield env


def knowledge_cmd(text: str, user: str, url: str) -> str:
    return urllib.parse.urlencode({**command(text, user, url), "command": "/knowledge"})


def ephemerals(env: SlackEnv) -> list[str]:
    return [str(p.get("text")) for p in env.api.calls_to("chat.postEphemeral")]


async def respond_texts(env: SlackEnv, n: int) -> list[str]:
    await env.api.wait(lambda: len(env.api.responses) >= n)
    return [str(r.get("text")) for r in env.api.responses]


async def test_admin_shares_a_file_and_members_search_it(slack: SlackEnv) -> None:
    """A DM with a file and `knowledge add` from an admin adds v1 (downloaded with the bot
    token, not sent to the agent); /knowledge search finds its section for any member."""
    api: FilesSlack = slack.api  # type: ignore[assignment]
    ev = dm("knowledge add", user="UADM", subtype="file_share", files=[api.shared("rules.md", RULES)])
    assert await slack.post(event_body(ev)) == 200
    await api.wait(lambda: len(ephemerals(slack)) == 1)
    assert "rules.md* added: version 1" in ephemerals(slack)[0] and api.downloads == ["rules.md"]
    assert slack.fake.requests == []  # the upload never reached the agent
    assert await slack.post_form(knowledge_cmd("search where can music bots play", "U1",
                                               api.response_url("s"))) == 200
    found = (await respond_texts(slack, 1))[0]
    assert "Rules &gt; Voice (rules.md v1)" in found and "#music" in found
    assert await slack.post_form(knowledge_cmd("list", "UADM", api.response_url("l"))) == 200
    assert "rules.md — Rules (v1" in (await respond_texts(slack, 2))[1]
    assert await slack.post_form(knowledge_cmd("remove rules.md", "UOPS", api.response_url("r"))) == 200
    assert "Removed rules.md" in (await respond_texts(slack, 3))[2]
    assert await slack.svc.store.count("knowledge", f"slack:{TEAM}") == 0


async def test_members_cannot_add_or_list_and_bad_files_change_nothing(slack: SlackEnv) -> None:
    """A member's shared file is refused without download; an admin's binary file is refused
    with its reason and the stored version stays."""
    api: FilesSlack = slack.api  # type: ignore[assignment]
    ev = mention("<@UBOT> knowledge add", user="U1", files=[api.shared("rules.md", RULES)])
    assert await slack.post(event_body(ev, event_id="Ev2")) == 200
    await api.wait(lambda: len(ephemerals(slack)) == 1)
    assert "Only workspace admins" in ephemerals(slack)[0] and api.downloads == []
    assert await slack.post_form(knowledge_cmd("list", "U1", api.response_url("l"))) == 200
    assert "Only workspace admins" in (await respond_texts(slack, 1))[0]
    good = dm("knowledge add", user="UADM", subtype="file_share", files=[api.shared("rules.md", RULES)],
              ts="1700000000.000300")
    assert await slack.post(event_body(good, event_id="Ev3")) == 200
    await api.wait(lambda: len(ephemerals(slack)) == 2)
    api.files["rules.md"] = b"\x00\x01binary"
    bad = dm("/knowledge add", user="UADM", subtype="file_share",
             files=[{**api.shared("rules.md", b"\x00\x01binary")}], ts="1700000000.000400")
    assert await slack.post(event_body(bad, event_id="Ev4")) == 200
    await api.wait(lambda: len(ephemerals(slack)) == 3)
    assert "looks binary" in ephemerals(slack)[2] and "nothing changed" in ephemerals(slack)[2]
    rec, _ = await slack.svc.knowledge.show(f"slack:{TEAM}", "rules.md")
    assert rec.version == 1


async def test_slash_add_explains_how_to_share_a_file(slack: SlackEnv) -> None:
    """`/knowledge add` cannot carry a file: admins are told how to share one."""
    assert await slack.post_form(knowledge_cmd("add", "UADM", slack.api.response_url("a"))) == 200
    assert "share the file" in (await respond_texts(slack, 1))[0]
    assert json.dumps(slack.api.errors) == "[]"
