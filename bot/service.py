"""Wiring: builds every core component from Settings and runs them under one owner.

Adapters receive a ``Service`` and use ``submit`` (events in), ``router`` (register their
outbox) and ``admin`` (memory operations); the CLI also ``knowledge_admin``. Tests pass their own seams (LLM, embedder,
vector store) to ``Service.build``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from bot.agent import tools
from bot.agent.context import ContextManager
from bot.agent.loop import Agent, StepResult
from bot.agent.probe import ProbeReport, probe
from bot.agent.tokens import TokenCounter
from bot.config import NO_LLM, Settings
from bot.errors import ConfigError, StoreError
from bot.events import Event, Reply, UserRef
from bot.knowledge.admin import KnowledgeAdmin
from bot.knowledge.base import KnowledgeBase
from bot.memory import health
from bot.memory.forgetting import Curve
from bot.memory.links import Links
from bot.memory.longterm import LongTermMemory
from bot.memory.recall_writer import RecallWriter
from bot.memory.states import StateRepo
from bot.ops.access import Access
from bot.ops.admin import Admin
from bot.ops.admission import Admission
from bot.ops.audit import AuditLog
from bot.ops.metrics import Metrics, Purpose
from bot.ops.server import Check, OpsServer
from bot.protocols import LLM, Completion, Embedder, VectorStore
from bot.runtime.heartbeat import Heartbeats
from bot.runtime.inbox import Inbox, Submitted
from bot.runtime.router import Router
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)


def _no_password(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


class DisabledLLM:
    """Stands in when no LLM endpoint is configured (memory CLI commands)."""

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       *, max_tokens: int | None = None,
                       response_format: dict[str, Any] | None = None) -> Completion:
        raise ConfigError(NO_LLM)

    async def close(self) -> None:
        return None


class Service:
    def __init__(self, settings: Settings, *, llm: LLM, embedder: Embedder, store: VectorStore,
                 redis: RedisStore) -> None:
        self.settings = settings
        self.llm = llm
        self.embedder = embedder
        self.store = store
        self.redis = redis
        self.metrics = Metrics()
        self.memory = LongTermMemory(store, embedder, on_search=self._observe_search, curve=Curve(
            settings.forget_use_weight, settings.forget_importance_weight, settings.forget_decay_weight,
            settings.forget_half_life_days))
        self.memory.pending = redis.queued_writes  # a new note supersedes queued ones too
        self.knowledge = KnowledgeBase(store, embedder, locker=redis,
                                       max_bytes=settings.knowledge_max_bytes,
                                       chunk_chars=settings.knowledge_chunk_chars,
                                       on_change=self.observe_knowledge)
        self.tokens = TokenCounter(settings.llm_model)
        self.context = ContextManager(settings, self.tokens, llm, tools.schemas())
        self.agent = Agent(settings, llm, self.context, self.memory, self.knowledge)
        self.states = StateRepo(settings, redis, self.memory)
        self.router = Router()
        self.writer = RecallWriter(redis, self.memory, settings.embedding_batch_size)
        self.inbox = Inbox(settings, redis, self.states, self.agent, self.router, self.writer,
                           self.metrics)
        self.audit_log = AuditLog(store)
        self.links = Links(redis, store)
        self.inbox.links = self.links
        self.admission = Admission(settings, store)
        self.inbox.admission = self.admission
        self.admin = Admin(self)
        self.knowledge_admin = KnowledgeAdmin(self.knowledge)
        self.health = health.HealthLog(redis)
        self._sized: set[tuple[str, int]] = set()  # (user, day) whose size was noted
        self.access = Access(self.admin, self.audit_log, self.notify_person)
        self.inbox.on_step.append(self._observe_step)
        self.heartbeats = Heartbeats(self) if settings.heartbeat_enabled else None
        if self.heartbeats is not None:
            self.inbox.on_step.append(self.heartbeats.on_step)
        self.checks: dict[str, Check] = {"redis": self.redis.ping, "qdrant": self._qdrant_ready}
        ping = getattr(llm, "ping", None)
        if ping is not None:
            self.checks["llm"] = ping
        self.ops: OpsServer | None = None
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    @classmethod
    def build(cls, settings: Settings, *, llm: LLM | None = None, embedder: Embedder | None = None,
              store: VectorStore | None = None, redis: RedisStore | None = None) -> Service:
        """Real implementations for every seam not given."""
        if llm is None:
            from bot.agent.llm import OpenAIChat
            settings.require_llm()
            llm = OpenAIChat(settings)
        if embedder is None:
            from bot.memory.embeddings import build_embedder
            embedder = build_embedder(settings)
        if store is None:
            from bot.stores.factory import build_vector_store
            store = build_vector_store(settings)
        if redis is None:
            redis = RedisStore(settings.redis_url, settings.redis_prefix)
        return cls(settings, llm=llm, embedder=embedder, store=store, redis=redis)

    # --- lifecycle --------------------------------------------------------------------------
    async def open(self, load_embedder: bool = True) -> None:
        """Connect stores and check dimensions; no background work yet (CLI commands).
        ``load_embedder=False`` defers the model load to first use (memory admin commands
        that may not embed anything still work offline)."""
        if self._started:
            return
        try:
            await self.redis.ping()
        except StoreError as exc:
            raise StoreError(f"Redis is not reachable at REDIS_URL={_no_password(self.settings.redis_url)}"
                             f" ({exc}); start Redis or point REDIS_URL at it") from None
        load = getattr(self.embedder, "load", None)
        if load is not None and load_embedder:  # pay the model load now, fail fast
            await load()
        await self.store.start(self.embedder.dim)
        self._started = True

    async def probe_llm(self) -> ProbeReport | None:
        """Check the LLM endpoint, model and window once (``membot run``/``chat``); caps
        LLM_CONTEXT_WINDOW to the server's window. Raises ConfigError naming the setting."""
        if not hasattr(self.llm, "fetch_json"):
            return None  # a seam given by a test or a disabled LLM
        report = await probe(self.llm, self.settings)  # type: ignore[arg-type]
        if report.window:
            self.context.cap_window(report.window, report.window_source)
        for note in report.notes:
            log.warning("LLM check: %s", note)
        log.info("LLM check passed: %s (window %s)", self.settings.llm_model,
                 report.window or "not reported")
        return report

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def start(self) -> None:
        """Open stores and start the recall writer and the inbox workers."""
        await self.open()
        if self.settings.ops_port and self.ops is None:
            self.ops = OpsServer(self.settings.ops_host, self.settings.ops_port, self.metrics,
                                 self.checks)
            await self.ops.start()
        self.stop_event.clear()
        self.inbox.accepting, self.inbox.draining = True, False
        self.spawn(self.writer.run(self.stop_event), "recall-writer")
        self.spawn(self.inbox.run(self.stop_event), "inbox")
        self.spawn(self._watch_knowledge(self.stop_event), "knowledge-drift")
        if self.heartbeats is not None:
            await self.heartbeats.start()

    async def drain(self, grace_s: float = 30.0) -> None:
        """Stop starting steps and wait (up to ``grace_s``) for running ones to commit.
        Events submitted meanwhile are still journaled: another replica, or this one after
        a restart, processes them. Adapters stay connected so replies can be delivered."""
        if self.heartbeats is not None:
            await self.heartbeats.stop()
        self.inbox.draining = True
        self.stop_event.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._tasks.clear()

    async def stop(self, grace_s: float = 30.0) -> None:
        """Drain, flush recall, stop the ops server and close the stores."""
        await self.drain(grace_s)
        self.inbox.accepting = False
        with contextlib.suppress(Exception):
            await self.writer.flush()
        if self.ops is not None:
            await self.ops.stop()
            self.ops = None
        await self.close()

    async def close(self) -> None:
        for closer in (self.store.close, self.redis.close, self.llm.close):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
        self._started = False

    # --- observation ----------------------------------------------------------------------------
    def _observe_search(self, collection: str, seconds: float) -> None:
        self.metrics.search_latency.labels(collection=collection).observe(seconds)

    async def _observe_memory(self, user: str, result: StepResult) -> None:
        """Memory health (bot.memory.health): search outcomes, and the user's size once a day."""
        uses = health.step_searches(result.new_messages)
        for use in uses:
            outcome = "used" if use.used else "ignored" if use.found else "empty"
            self.metrics.memory_searches.labels(outcome=outcome).inc()
        if not user:
            return
        await self.health.record(user, uses)
        day = (user, int(time.time() // 86_400))
        if day not in self._sized:
            self._sized.add(day)
            await self.health.note_size(user, sum(await self.memory.counts(user)))

    async def _observe_step(self, event: Event, state: object, result: StepResult,
                            seconds: float) -> None:
        m = self.metrics
        m.messages.labels(platform=event.user.platform, kind=event.kind).inc()
        m.step_latency.observe(seconds)
        purpose: Purpose = "heartbeat" if event.kind == "heartbeat" else "chat"
        outcome = result.failed or "ok"
        for _ in range(max(result.llm_calls, 1 if result.failed else 0)):
            m.record_llm_call(purpose, outcome)
        m.llm_tokens.labels(purpose=purpose, direction="prompt").inc(result.prompt_tokens)
        m.llm_tokens.labels(purpose=purpose, direction="completion").inc(result.completion_tokens)
        for name, ok in result.tools:
            m.record_tool(name, ok, known=tools.TOOLS)
        await self._observe_memory(getattr(state, "user", ""), result)
        if result.evicted:
            m.summaries.inc()
            m.record_llm_call("summary", "ok")
            m.record_eviction(result.evicted)
        m.replies.labels(platform=event.user.platform).inc(
            sum(1 for r in result.replies if r.kind != "trace"))
        m.queue_depth.set(await self.redis.queue_depth())

    async def observe_knowledge(self, scope: str) -> None:
        """Refresh one scope's knowledge gauges (drift over KNOWLEDGE_DRIFT_DAYS)."""
        catalog = await self.knowledge.catalog(scope)
        since = time.time() - self.settings.knowledge_drift_days * 86_400
        self.metrics.knowledge_drift.labels(scope=scope).set(catalog.drift(since))
        self.metrics.knowledge_chunks.labels(scope=scope).set(
            sum(r.chunks for r in catalog.docs.values()))
        self.metrics.knowledge_documents.labels(scope=scope).set(len(catalog.docs))

    async def _watch_knowledge(self, stop: asyncio.Event, every_s: float = 600.0) -> None:
        """Drift moves with time as well as with changes: refresh every scope now and then."""
        while not stop.is_set():
            try:
                for scope in await self.knowledge.scopes():
                    await self.observe_knowledge(scope)
            except Exception as exc:  # metrics only; try again at the next round
                log.warning("knowledge drift refresh failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    async def _qdrant_ready(self) -> bool:
        await self.store.count("recall", "readiness-probe")
        return True

    def add_check(self, name: str, check: Check) -> None:
        """Adapters add their platform connection here (shown by /readyz)."""
        self.checks[name] = check

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def notify_person(self, key: str, text: str) -> None:
        """A notice to a person's DM (their memory key names their primary identity)."""
        platform, scope, uid = (key.split(":", 2) + ["", ""])[:3]
        if not uid or not self.router.has(platform):
            log.warning("no way to notify %s; the audit trail keeps the entry", key)
            return
        await self.router.deliver(Reply(user=UserRef(platform, uid, scope), text=text,
                                        kind="notice"))

    # --- adapters' entry point ------------------------------------------------------------------
    async def submit(self, event: Event) -> Submitted:
        return await self.inbox.submit(event)
