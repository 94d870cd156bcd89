"""Prometheus metrics of one membot process, kept in a registry of their own.

``Metrics`` owns a private ``CollectorRegistry`` instead of prometheus_client's global
one, so two service instances (or two tests) in one interpreter never collide. Build one
``Metrics`` at start-up, hand it to the components that count things and to
``bot.ops.server.OpsServer``, which serves ``render()`` at ``/metrics``.

Every name carries the ``membot_`` prefix (``membot_messages_total``, ...). Label values
must come from small fixed sets: platform names, the purposes and outcomes listed on each
metric, and registered tool names only (``record_tool`` folds anything else into
``"unknown"`` when given the known names), never user ids or texts. The one exception is
the knowledge gauges' ``scope`` (a guild or workspace id, one series per knowledge base an
operator or admin created, bounded by the places that added documents).
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Purpose = Literal["chat", "summary", "heartbeat"]

_NS = "membot"
_SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_STEP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """All counters, gauges and histograms of membot, registered in ``self.registry``."""

    content_type: str = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        counter = partial(Counter, namespace=_NS, registry=self.registry)
        histogram = partial(Histogram, namespace=_NS, registry=self.registry)
        self.messages = counter(
            "messages", "Inbound events accepted, by platform and kind.", ["platform", "kind"]
        )
        self.replies = counter("replies", "Replies delivered to users.", ["platform"])
        self.llm_calls = counter(
            "llm_calls",
            "LLM calls by purpose (chat|summary|heartbeat) and outcome.",
            ["purpose", "outcome"],
        )
        self.llm_tokens = counter(
            "llm_tokens",
            "Tokens reported by the LLM, by purpose and direction (prompt|completion).",
            ["purpose", "direction"],
        )
        self.tool_calls = counter(
            "tool_calls", "Tool calls by tool and outcome (ok|error).", ["tool", "outcome"]
        )
        self.summaries = counter("summaries", "Recursive summaries written.")
        self.evictions = counter("evictions", "FIFO flushes (evictions) performed.")
        self.evicted_messages = counter("evicted_messages", "Messages evicted from FIFO queues.")
        self.heartbeats = counter("heartbeats", "Timed heartbeats by outcome.", ["outcome"])
        self.errors = counter("errors", "Errors by the place they were caught.", ["where"])
        self.dead_letters = counter(
            "dead_letters", "Events or replies moved to the dead-letter list, by kind.", ["kind"]
        )
        self.delivery_failures = counter(
            "delivery_failures",
            "Failed reply deliveries by platform and class (permanent|temporary).",
            ["platform", "cls"],
        )
        self.step_failures = counter(
            "step_failures", "Steps that raised and will be retried or dead-lettered."
        )
        self.memory_searches = counter(
            "memory_searches",
            "Agent memory searches by outcome: used (results repeated in what the agent wrote next), "
            "ignored (results not used), empty (nothing found). Hit rate = used / all.",
            ["outcome"])
        self.queue_depth = Gauge(
            "queue_depth",
            "Events waiting in the inbound queue.",
            namespace=_NS,
            registry=self.registry,
        )
        gauge = partial(Gauge, namespace=_NS, registry=self.registry)
        self.knowledge_drift = gauge(
            "knowledge_drift",
            "Share of a knowledge scope's chunks changed within KNOWLEDGE_DRIFT_DAYS "
            "(scope: global, discord:GUILD or slack:TEAM; one series per knowledge base).",
            ["scope"],
        )
        self.knowledge_chunks = gauge("knowledge_chunks", "Current chunks per knowledge scope.",
                                      ["scope"])
        self.knowledge_documents = gauge("knowledge_documents",
                                         "Current documents per knowledge scope.", ["scope"])
        self.search_latency = histogram(
            "search_latency_seconds",
            "Vector search latency by collection.",
            ["collection"],
            buckets=_SEARCH_BUCKETS,
        )
        self.step_latency = histogram(
            "step_latency_seconds",
            "Duration of one agent step (one event, all chained calls).",
            buckets=_STEP_BUCKETS,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format (``content_type`` names the format)."""
        return generate_latest(self.registry)

    # --- small helpers for the multi-metric cases ---------------------------------------
    def record_llm_call(
        self, purpose: Purpose, outcome: str, *, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        """Count one LLM call and the tokens it used."""
        self.llm_calls.labels(purpose=purpose, outcome=outcome).inc()
        if prompt_tokens > 0:
            self.llm_tokens.labels(purpose=purpose, direction="prompt").inc(prompt_tokens)
        if completion_tokens > 0:
            self.llm_tokens.labels(purpose=purpose, direction="completion").inc(completion_tokens)

    def record_tool(self, tool: str, ok: bool, known: Collection[str] | None = None) -> None:
        """Count one tool call; names outside ``known`` (if given) count as ``unknown``."""
        name = tool if known is None or tool in known else "unknown"
        self.tool_calls.labels(tool=name, outcome="ok" if ok else "error").inc()

    def record_eviction(self, evicted: int) -> None:
        """Count one FIFO flush that evicted ``evicted`` messages."""
        self.evictions.inc()
        if evicted > 0:
            self.evicted_messages.inc(evicted)
