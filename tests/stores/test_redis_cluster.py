"""The service on a real Redis Cluster (three masters started here): the same store
interface through redis-py's cluster client, each Lua script inside one slot, and the
durability and heartbeat-once tests passing unchanged against it.

The tests imported below are the single-server tests themselves, collected again in this
module with REDIS_URL pointing at the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.conftest
from bot.keys import Keys
from bot.stores.redis_store import RedisStore
from tests.runtime.test_durability import (  # noqa: F401 (collected here against the cluster)
    test_crash_mid_step_is_replayed_exactly_once,
    test_failed_journal_lets_the_platform_retry_through,
    test_many_users_run_in_parallel,
    test_per_user_steps_are_serialized,
    test_redis_flush_loses_nothing,
    test_replies_committed_but_undelivered_are_sent_after_restart,
    test_restart_keeps_memory,
)
from tests.runtime.test_heartbeat import (  # noqa: F401
    hb,
    test_schedule_survives_a_restart,
    test_two_redis_clients_never_claim_the_same_member,
    test_two_schedulers_fire_each_due_heartbeat_once,
)
from tests.stores.redis_cluster import redis_cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as url:
        yield url


@pytest.fixture(autouse=True)
def _on_the_cluster(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every settings object made by the shared fixtures points at the cluster."""
    monkeypatch.setattr(tests.conftest, "REDIS_URL", cluster_url)


def _slot(key: str) -> int:
    """CRC16 (XMODEM) of the hash tag, mod 16384: Redis Cluster's key slot."""
    start = key.find("{")
    if start != -1 and (end := key.find("}", start + 1)) > start + 1:
        key = key[start + 1:end]
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


def test_a_users_keys_share_one_slot() -> None:
    """Every per-user key lands in the user's slot; different users spread over slots."""
    k = Keys("membot")
    for user in ("discord:-:1", "slack:T1:U1", "test:g1:alice"):
        keys = [k.state(user), k.inbox(user), k.outbox(user), k.lock(user), k.recall_queue(user),
                k.rate(user, 1), k.heartbeat_budget(user, "2026-01-01"), k.heartbeat_meta(user)]
        assert len({_slot(x) for x in keys}) == 1
    assert len({_slot(k.state(f"test:g1:u{i}")) for i in range(20)}) > 10


async def test_store_runs_on_the_cluster(cluster_url: str, settings: Any) -> None:
    """The store talks to the cluster: a commit (one multi-key script) across users on
    different masters, the journal, claims, and the prefix sweep over every node."""
    store = RedisStore(cluster_url, settings.redis_prefix)
    try:
        assert await store.ping()
        users = [f"test:g1:u{i}" for i in range(12)]
        for user in users:
            await store.journal(user, '{"event_id":"e1"}')
            token = await store.acquire(user, 5.0)
            assert token is not None
            assert await store.commit(user, token, "{}", event_id="e1", replies=["r"], recall=["m"])
            assert await store.inbox_len(user) == 0 and await store.outbox_head(user) == "r"
        nodes = {store._r.get_node_from_key(store.keys.state(u)).port for u in users}
        assert len(nodes) > 1  # the users really live on different masters
        assert sorted(await store.known_users()) == sorted(users)
        assert await store.delete_prefix() > 0
        assert await store.known_users() == []
    finally:
        await store.close()
