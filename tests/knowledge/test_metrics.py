"""Knowledge drift, chunks and documents per scope on /metrics."""

from __future__ import annotations

import re

from tests.conftest import Harness


def gauge(text: str, name: str, scope: str) -> float:
    m = re.search(rf'^membot_{name}{{scope="{re.escape(scope)}"}} (\S+)$', text, re.M)
    assert m, f"{name} for {scope} missing"
    return float(m.group(1))


async def test_drift_gauge_follows_changes(harness: Harness) -> None:
    """After an add every chunk is new (drift 1.0); the gauges count chunks and documents;
    observe_knowledge (what the periodic refresh runs) sets them again from the catalog."""
    kb, metrics = harness.svc.knowledge, harness.svc.metrics
    await kb.add("slack:T7", "faq.md", b"# FAQ\n\n## A\n\nOne.\n\n## B\n\nTwo.\n", actor="t")
    text = metrics.render().decode()
    assert gauge(text, "knowledge_drift", "slack:T7") == 1.0
    assert gauge(text, "knowledge_chunks", "slack:T7") == 2.0
    assert gauge(text, "knowledge_documents", "slack:T7") == 1.0
    metrics.knowledge_drift.clear()
    await harness.svc.observe_knowledge("slack:T7")
    assert gauge(metrics.render().decode(), "knowledge_drift", "slack:T7") == 1.0
