"""The shared fixtures keep Redis clean: every key under a test's prefix is gone after it."""

from __future__ import annotations

import redis

from tests.conftest import REDIS_URL, new_prefix

_left: list[str] = []


def test_a_test_that_leaves_keys_behind() -> None:
    """(setup for the next test) writes keys without and with expiry and does not clean up."""
    prefix = new_prefix()
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}:{{u}}:state", "x")
    client.set(f"{prefix}:dedupe:1", "1", ex=86_400)
    client.sadd(f"{prefix}:users", "u")
    client.close()
    _left.append(prefix)


def test_the_keys_a_previous_test_left_are_gone() -> None:
    """After a test ends, nothing under its prefix is left in Redis (tests run in file order)."""
    assert _left, "runs after test_a_test_that_leaves_keys_behind"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(match=f"{_left[0]}:*")) == []
    finally:
        client.close()
