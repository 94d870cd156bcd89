"""Dead letters an operator can see and act on: list, retry (answered then), drop; and the
`membot dead-letters` command around them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.errors import AdminError
from bot.events import Channel, Event, Reply, UserRef
from bot.ops.deadletters import DeadLetters
from bot.runtime.delivery import dead_letter
from bot.testing.fake_openai import tool_call
from tests.conftest import Harness
from tests.test_cli import cli_env, membot  # noqa: F401 (the CLI tests' fixture)


def _event(text: str) -> Event:
    return Event(kind="user_message", user=UserRef("test", "alice", "g1"), text=text,
                 channel=Channel(), reply_to="chan", event_id="ev-dead")


async def test_retry_of_a_dead_event_answers_it(harness: Harness) -> None:
    """A dead-lettered event retried by the operator is processed and answered (although
    its first failure was committed as processed)."""
    ev = _event("please answer")
    await harness.svc.redis.add_dead_letter(dead_letter("event", ev.key, ev.to_json(), "boom", 3))
    letters = DeadLetters(harness.svc.redis)
    [entry] = await letters.listing()
    assert entry["kind"] == "event" and "please answer" in entry["what"] and "raw" not in entry
    harness.fake.push(tool_call("send_message", message="answered now", request_heartbeat=False))
    assert await letters.retry([entry["id"]]) == 1
    deadline = time.monotonic() + 20
    while not harness.outbox.texts() and time.monotonic() < deadline:
        await __import__("asyncio").sleep(0.05)
    assert harness.outbox.texts() == ["answered now"]
    assert await letters.listing() == []


async def test_retry_of_a_dead_reply_delivers_it(harness: Harness) -> None:
    """A dead-lettered reply retried is delivered by the background delivery."""
    user = UserRef("test", "bob", "g1")
    reply = Reply(user=user, text="late but here", reply_to="chan", event_id="e1")
    await harness.svc.redis.add_dead_letter(dead_letter("reply", user.key, reply.to_json(), "503", 10))
    letters = DeadLetters(harness.svc.redis)
    assert await letters.retry([], everything=True) == 1
    deadline = time.monotonic() + 10
    while not harness.outbox.texts() and time.monotonic() < deadline:
        await __import__("asyncio").sleep(0.05)
    assert harness.outbox.texts() == ["late but here"]


async def test_drop_and_bad_ids(harness: Harness) -> None:
    """Drop removes the named entry; unknown ids or no ids are refused and change nothing."""
    letters = DeadLetters(harness.svc.redis)
    await harness.svc.redis.add_dead_letter(dead_letter("event", "k", _event("x").to_json(), "e", 3))
    [entry] = await letters.listing()
    with pytest.raises(AdminError):
        await letters.drop(["nope"])
    with pytest.raises(AdminError):
        await letters.retry([])
    assert len(await letters.listing()) == 1
    assert await letters.drop([entry["id"]]) == 1
    assert await letters.listing() == []


def test_cli_lists_and_drops(cli_env: dict[str, str]) -> None:  # noqa: F811
    """`membot dead-letters list --json` shows entries; `drop --all` empties the list."""
    import redis as redis_lib

    r = redis_lib.Redis.from_url(cli_env["REDIS_URL"])
    r.rpush(f"{cli_env['REDIS_PREFIX']}:deadletters",
            dead_letter("event", "test:g1:alice", _event("stuck msg").to_json(), "OverflowError: x", 3))

    def run(*args: str) -> Any:
        return membot(["dead-letters", *args], cli_env, timeout=120)
    listed = run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.strip().splitlines()
    assert json.loads(line)["error"] == "OverflowError: x"
    refused = run("drop")
    assert refused.returncode == 1 and "--all" in refused.stderr and "Traceback" not in refused.stderr
    dropped = run("drop", "--all")
    assert dropped.returncode == 0 and "dropped 1" in dropped.stdout
    assert run("list").stdout.strip() == "no dead letters"
