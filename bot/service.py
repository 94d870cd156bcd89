"""Wiring: builds every core component from Settings and runs them under one owner.

Adapters receive a ``Service`` and use ``submit`` (events in), ``router`` (register their
outbox) and ``admin`` (memory operations). Tests pass their own seams (LLM, embedder,
vector store) to ``Service.build``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from bot import tools
from bot.admin import Admin
from bot.agent import Agent
from bot.config import NO_LLM, Settings
from bot.context import ContextManager
from bot.errors import ConfigError
from bot.events import Event
from bot.inbox import Inbox, Submitted
from bot.longterm import LongTermMemory
from bot.protocols import LLM, Completion, Embedder, VectorStore
from bot.recall_writer import RecallWriter
from bot.router import Router
from bot.states import StateRepo
from bot.stores.redis_store import RedisStore
from bot.tokens import TokenCounter

log = logging.getLogger(__name__)


class DisabledLLM:
    """Stands in when no LLM endpoint is configured (memory CLI commands)."""

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                       *, max_tokens: int | None = None) -> Completion:
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
        self.memory = LongTermMemory(store, embedder)
        self.tokens = TokenCounter(settings.llm_model)
        self.context = ContextManager(settings, self.tokens, llm, tools.schemas())
        self.agent = Agent(settings, llm, self.context, self.memory)
        self.states = StateRepo(settings, redis, self.memory)
        self.router = Router()
        self.writer = RecallWriter(redis, self.memory, settings.embedding_batch_size)
        self.inbox = Inbox(settings, redis, self.states, self.agent, self.router, self.writer)
        self.admin = Admin(self)
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    @classmethod
    def build(cls, settings: Settings, *, llm: LLM | None = None, embedder: Embedder | None = None,
              store: VectorStore | None = None, redis: RedisStore | None = None) -> Service:
        """Real implementations for every seam not given."""
        if llm is None:
            from bot.llm import OpenAIChat
            settings.require_llm()
            llm = OpenAIChat(settings)
        if embedder is None:
            from bot.embeddings import build_embedder
            embedder = build_embedder(settings)
        if store is None:
            from bot.stores.factory import build_vector_store
            store = build_vector_store(settings)
        if redis is None:
            redis = RedisStore(settings.redis_url, settings.redis_prefix)
        return cls(settings, llm=llm, embedder=embedder, store=store, redis=redis)

    # --- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect stores and check dimensions; no background work yet (CLI commands)."""
        if self._started:
            return
        await self.redis.ping()
        await self.store.start(self.embedder.dim)
        self._started = True

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def start(self) -> None:
        """Open stores and start the recall writer and the inbox workers."""
        await self.open()
        self.stop_event.clear()
        self.inbox.accepting = True
        self.spawn(self.writer.run(self.stop_event), "recall-writer")
        self.spawn(self.inbox.run(self.stop_event), "inbox")

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking events, let in-flight steps finish, flush recall, close stores."""
        self.inbox.accepting = False
        self.stop_event.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.writer.flush()
        await self.close()

    async def close(self) -> None:
        for closer in (self.store.close, self.redis.close, self.llm.close):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
        self._started = False

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    # --- adapters' entry point ------------------------------------------------------------------
    async def submit(self, event: Event) -> Submitted:
        return await self.inbox.submit(event)
