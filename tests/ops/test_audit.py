"""The audit trail is durable: kept in the vector store, not in logs or Redis."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Harness


async def test_audit_survives_a_redis_flush_at_warning_level(harness: Harness,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """An export at LOG_LEVEL=WARNING is recorded with its details, and the entry outlives
    a flush of every Redis key (What was seen 6)."""
    caplog.set_level(logging.WARNING)
    await harness.svc.admin.export(harness.key(), actor="discord:-:77")
    await harness.svc.redis.delete_prefix()
    [entry] = await harness.svc.audit_log.entries(harness.key())
    assert (entry.actor, entry.action, entry.target) == ("discord:-:77", "export", harness.key())
    assert any("export on test:g1:alice by discord:-:77" in r.getMessage() for r in caplog.records)


async def test_reset_entry_is_kept_after_the_reset(harness: Harness) -> None:
    """A reset deletes the memory but the person still learns who reset it."""
    await harness.svc.admin.export(harness.key(), actor="cli")
    await harness.svc.admin.reset(harness.key(), actor="slack:T1:UOPS")
    trail = await harness.svc.audit_log.entries(harness.key())
    assert [(e.action, e.actor) for e in trail] == [("reset", "slack:T1:UOPS")]
