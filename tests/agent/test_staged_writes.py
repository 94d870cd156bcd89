"""No side effects from abandoned steps: archival writes a tool makes are staged and go out
with the step's commit; a step given up on after the tool ran leaves nothing in Qdrant."""

from __future__ import annotations

from bot.testing.fake_openai import delay, text, tool_call
from tests.conftest import Harness


async def test_archival_insert_of_an_abandoned_step_is_not_kept(harness: Harness) -> None:
    """insert, then the chained call times out: the user gets the failure notice and the note
    is not in archival storage (nor counted)."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice's locker code is 5521",
                                request_heartbeat=True),
                      delay(8.0), delay(8.0))  # the chained call (and its retry) time out
    ev = await harness.say("remember my locker code 5521")
    assert harness.outbox.texts(ev.event_id, kind="notice")
    await harness.svc.writer.flush()
    key = harness.key()
    assert await harness.svc.store.count("archival", key) == 0
    assert (await harness.state()).n_archival == 0


async def test_archival_insert_of_a_committed_step_is_kept(harness: Harness) -> None:
    """The same insert in a step that completes is stored (and searchable next step)."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice's locker code is 5521",
                                request_heartbeat=True), text("noted"))
    await harness.say("remember my locker code 5521")
    key = harness.key()
    assert await harness.svc.store.count("archival", key) == 1
    await harness.svc.writer.flush()  # the queued copy repeats the write: still one note
    assert await harness.svc.store.count("archival", key) == 1
    assert (await harness.state()).n_archival == 1
