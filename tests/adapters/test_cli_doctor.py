"""`membot doctor`: every dependency checked, each problem named with what to fix."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.cli_doctor import check_discord, check_slack, cmd_doctor, run_checks
from bot.testing.fake_openai import text, tool_call
from bot.testing.slack_api import FakeSlack
from tests.conftest import make_settings

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _by_name(results: list[Any]) -> dict[str, Any]:
    return {r.name: r for r in results}


async def test_a_healthy_setup_passes_every_check(tmp_path: Path, fake_llm: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Redis, embedded engine, a tool-calling model, the model files and tiktoken: all ok, exit 0."""
    fake_llm.push(tool_call("send_message", message="ok"))
    code = await cmd_doctor(make_settings(tmp_path, fake_llm.base_url))
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("redis", "vectors", "llm", "llm tools", "embeddings", "tokenizer"):
        assert f"ok    {name} " in out, name
    assert "all checks passed" in out


async def test_each_broken_dependency_is_named_with_a_fix(tmp_path: Path, fake_llm: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """No Redis at REDIS_URL, no LLM endpoint, a bad model path: three FAILs with fixes, exit 1."""
    settings = make_settings(tmp_path, fake_llm.base_url, redis_url=f"redis://127.0.0.1:{_free_port()}/0",
                             embedding_model_path=str(tmp_path / "nowhere"))
    settings.llm_base_url, settings.llm_api_key = None, None
    code = await cmd_doctor(settings)
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  redis" in out and "set REDIS_URL" in out
    assert "FAIL  llm" in out and "OPENAI_API_KEY" in out
    assert "FAIL  embeddings" in out and "membot setup-assets" in out
    assert "3 problem(s)" in out


async def test_a_model_that_does_not_call_tools_is_a_warning(tmp_path: Path, fake_llm: Any) -> None:
    """Asked to call send_message, a plain-text answer gives 'llm tools' a warning, not ok."""
    fake_llm.push(text("ok"))
    results = _by_name(await run_checks(make_settings(tmp_path, fake_llm.base_url)))
    assert results["llm"].status == "ok" and results["llm tools"].status == "warn"


async def test_slack_token_is_checked_with_auth_test(tmp_path: Path, fake_llm: Any) -> None:
    """A valid bot token answers auth.test (ok); a wrong one is refused with the setting named."""
    async with FakeSlack() as api:
        good = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="xoxb-test",
                             slack_app_token="xapp-test", slack_api_url=api.api_url)
        assert (await check_slack(good)).status == "ok"
        bad = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="not-a-token",
                            slack_app_token="xapp-test", slack_api_url=api.api_url)
        result = await check_slack(bad)
    assert result.status == "FAIL" and "SLACK_BOT_TOKEN" in result.fix


async def _serve(routes: list[web.RouteDef]) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def scoped_slack() -> AsyncIterator[str]:
    """A Slack auth.test that reports only two of the scopes membot needs."""
    async def auth_test(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "user": "membot", "team_id": "T1"},
                                 headers={"x-oauth-scopes": "chat:write,im:history"})
    async for url in _serve([web.post("/auth.test", auth_test)]):
        yield url + "/"


async def test_missing_slack_scopes_are_listed(tmp_path: Path, fake_llm: Any, scoped_slack: str) -> None:
    """Scopes Slack reports as granted are compared with the manifest's: the missing are named."""
    settings = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="xoxb-test",
                             slack_app_token="xapp-test", slack_api_url=scoped_slack)
    result = await check_slack(settings)
    assert result.status == "FAIL" and "app_mentions:read" in result.detail
    assert "chat:write," not in result.detail


@pytest.fixture
async def discord_api() -> AsyncIterator[str]:
    """Discord's /users/@me and /applications/@me: token 'good' only, no privileged intents."""
    def authorized(request: web.Request) -> bool:
        return request.headers.get("Authorization") == "Bot good"

    async def me(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"message": "401: Unauthorized"}, status=401)
        return web.json_response({"username": "membot"})

    async def app(request: web.Request) -> web.Response:
        return web.json_response({"flags": 0})
    async for url in _serve([web.get("/users/@me", me), web.get("/applications/@me", app)]):
        yield url


async def test_discord_token_and_intent_are_checked(tmp_path: Path, fake_llm: Any, discord_api: str) -> None:
    """A refused token names DISCORD_TOKEN; DISCORD_MESSAGE_CONTENT without the portal's
    intent names the switch; a good token without that setting is ok."""
    def settings(token: str, content: bool) -> Any:
        return make_settings(tmp_path, fake_llm.base_url, discord_token=token,
                             discord_message_content=content)
    refused = await check_discord(settings("bad", False), api=discord_api)
    assert refused.status == "FAIL" and "DISCORD_TOKEN" in refused.fix
    intent = await check_discord(settings("good", True), api=discord_api)
    assert intent.status == "FAIL" and "Message Content" in intent.detail
    assert (await check_discord(settings("good", False), api=discord_api)).status == "ok"
