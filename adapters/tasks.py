"""Owned background tasks of an adapter: started by name, logged when they fail, cancelled
on shutdown. Nothing an adapter starts outlives it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("membot.adapters")


class TaskSet:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._seq = 0

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> str:
        """Start ``coro``; returns its key (``name``, replacing a task of that name)."""
        if not name:
            self._seq += 1
            name = f"task-{self._seq}"
        self.cancel(name)
        task = asyncio.create_task(coro, name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._done(name, t))
        return name

    def _done(self, name: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", name, exc_info=task.exception())

    def cancel(self, name: str) -> bool:
        task = self._tasks.pop(name, None)
        if task is None:
            return False
        task.cancel()
        return True

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self, timeout_s: float = 10.0) -> None:
        """Wait for the running tasks (tests, graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=timeout_s)

    async def close(self, grace_s: float = 5.0) -> None:
        """Let running tasks finish for ``grace_s``, then cancel the rest."""
        await self.join(grace_s)
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
