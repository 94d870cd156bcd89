"""Discord delivery failures: permanent vs temporary classification, chunk progress, and the
nonce that makes a re-send after a crash idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from adapters.discord_outbox import DiscordOutbox, nonce
from bot.errors import DeliveryError
from bot.events import Reply, UserRef
from tests.adapters.discord_fakes import FakeChannel, FakeClient


@dataclass
class _Resp:
    status: int
    reason: str = "error"
    headers: dict[str, str] = field(default_factory=dict)


def http_error(status: int, code: int, retry_after: str | None = None) -> discord.HTTPException:
    resp = _Resp(status, headers={"Retry-After": retry_after} if retry_after else {})
    cls = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    if status >= 500:
        cls = discord.DiscordServerError
    return cls(resp, {"code": code, "message": "nope"})


@dataclass
class FailingChannel(FakeChannel):
    errors: list[Exception | None] = field(default_factory=list)

    async def send(self, content: str | None = None, **kw: Any) -> None:
        err = self.errors.pop(0) if self.errors else None
        if err is not None:
            raise err
        await super().send(content, **kw)


def _reply(text: str, part: int = 0) -> Reply:
    return Reply(user=UserRef("discord", "1", "-"), text=text, reply_to="50:60", event_id="ev", part=part)


@pytest.mark.parametrize(("status", "code", "permanent"), [
    (403, 50013, True), (403, 50001, True), (404, 10003, True), (403, 50007, True),
    (400, 160002, True), (500, 0, False), (503, 0, False)])
async def test_discord_errors_are_classified(status: int, code: int, permanent: bool) -> None:
    """Missing permissions/access, unknown channel, cannot DM, cannot reply: permanent; 5xx: temporary."""
    ch = FailingChannel(id=50, errors=[http_error(status, code)])
    with pytest.raises(DeliveryError) as info:
        await DiscordOutbox(FakeClient().add(ch)).deliver(_reply("hi"))
    assert info.value.permanent is permanent


async def test_rate_limited_beyond_the_cap_is_temporary_with_retry_after() -> None:
    """discord.py's RateLimited (its wait would exceed our cap) becomes a temporary error
    carrying Retry-After, for the background retry."""
    ch = FailingChannel(id=50, errors=[discord.RateLimited(42.0)])
    with pytest.raises(DeliveryError) as info:
        await DiscordOutbox(FakeClient().add(ch)).deliver(_reply("hi"))
    assert not info.value.permanent and info.value.retry_after == 42.0


async def test_chunks_carry_nonces_and_resume_at_the_failed_one() -> None:
    """Each chunk has its own nonce; a 500 on part 2 reports one part done, and the retry
    (part=1) posts only the rest, with the same nonces."""
    text = "\n\n".join(f"Part {i}. " + "lorem ipsum " * 90 for i in range(3))
    ch = FailingChannel(id=50, errors=[None, http_error(500, 0)])
    outbox = DiscordOutbox(FakeClient().add(ch))
    with pytest.raises(DeliveryError) as info:
        await outbox.deliver(_reply(text))
    assert info.value.parts_done == 1 and len(ch.sent) == 1
    await outbox.deliver(_reply(text, part=1))
    assert len(ch.sent) == 3
    assert [m["nonce"] for m in ch.sent] == [nonce("ev:0", i) for i in range(3)]
    assert len({m["nonce"] for m in ch.sent}) == 3 and all(len(m["nonce"]) <= 25 for m in ch.sent)


def test_membot_bot_caps_discord_pys_own_rate_limit_wait() -> None:
    """The client raises RateLimited instead of sleeping minutes inside a send."""
    from adapters.discord_adapter import RATELIMIT_WAIT_S, MembotBot
    from bot.config import Settings

    bot = MembotBot(Settings(_env_file=None, discord_token="x"), service=None)  # type: ignore[call-arg]
    assert bot.http.max_ratelimit_timeout == RATELIMIT_WAIT_S
