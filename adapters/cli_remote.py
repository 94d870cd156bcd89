"""The CLI's side of the admin socket (bot.ops.control): memory commands on a live bot.

``RemoteAdmin`` has the ``Admin`` methods the CLI uses and ``RemoteKnowledge`` those of
``KnowledgeAdmin``, each one request to the running service, so ``membot memory ...``,
``knowledge ...``, ``stats`` and ``dead-letters ...`` print the same whether the CLI opened
the stores itself or asked the bot that holds them. Callbacks (progress, a failed file)
arrive as event lines before the answer and are called as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import AdminError, KnowledgeError, MembotError
from bot.ops.control import OP_TIMEOUT_S, REQUEST_LIMIT, answers

REFUSALS: dict[str, type[MembotError]] = {"AdminError": AdminError, "KnowledgeError": KnowledgeError}


class Remote:
    """One request per call to the admin socket at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def call(self, op: str, callbacks: dict[str, Callable[..., None] | None] | None = None,
                   **args: Any) -> Any:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path), limit=REQUEST_LIMIT), 5.0)
        except (OSError, TimeoutError) as exc:
            raise MembotError(f"the running bot's admin socket {self.path} does not answer ({exc})") from None
        try:
            writer.write(json.dumps({"op": op, "args": args}, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
            while (answer := await self._line(reader)).get("event"):
                fn = (callbacks or {}).get(answer["event"])
                if fn is not None:
                    fn(*answer.get("args", []))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if answer.get("ok"):
            return answer.get("result")
        refusal = REFUSALS.get(str(answer.get("kind")))
        if refusal is not None:
            raise refusal(answer.get("error", "refused"))
        raise MembotError(f"{answer.get('kind')}: {answer.get('error')}")

    @staticmethod
    async def _line(reader: asyncio.StreamReader) -> dict[str, Any]:
        line = await asyncio.wait_for(reader.readline(), OP_TIMEOUT_S + 30)
        if not line:
            raise MembotError("the running bot closed the admin socket without an answer")
        return dict(json.loads(line))


class RemoteAdmin(Remote):
    """Admin operations through the admin socket of a running ``membot run``."""

    async def find_user(self, name: str) -> str:
        return str(await self.call("find_user", name=name))

    async def known_users(self) -> list[str]:
        return list(await self.call("known_users"))

    async def require_memory(self, user: str) -> None:
        await self.call("require_memory", user=user)

    async def show(self, user: str) -> dict[str, Any]:
        return dict(await self.call("show", user=user))

    async def search(self, user: str, kind: str, query: str, limit: int = 5) -> list[dict[str, Any]]:
        return list(await self.call("search", user=user, kind=kind, query=query, limit=limit))

    async def stats(self) -> dict[str, Any]:
        return dict(await self.call("stats"))

    async def reorganize(self, user: str, threshold: float, dry_run: bool = False,
                         actor: str = "cli") -> dict[str, Any]:
        return dict(await self.call("reorganize", user=user, threshold=threshold,
                                    dry_run=dry_run, actor=actor))

    async def export_lines(self, user: str, actor: str = "cli") -> list[str]:
        return list(await self.call("export_lines", user=user, actor=actor))

    async def import_lines(self, user: str, lines: Iterable[str],
                           progress: Callable[[int, int], None] | None = None,
                           actor: str = "cli") -> dict[str, int]:
        return dict(await self.call("import_lines", {"progress": progress}, user=user,
                                    lines=list(lines), actor=actor))

    async def reset(self, user: str, actor: str = "cli") -> dict[str, int]:
        return dict(await self.call("reset", user=user, actor=actor))

    async def link(self, identity: str, target: str, actor: str = "cli") -> None:
        await self.call("link", identity=identity, target=target, actor=actor)

    async def heartbeat_now(self, user: str, actor: str = "cli") -> str:
        return str(await self.call("heartbeat_now", user=user, actor=actor))

    async def dead_letters(self) -> list[dict[str, Any]]:
        return list(await self.call("dead_letters"))

    async def retry_dead_letters(self, ids: list[str], everything: bool = False) -> int:
        return int(await self.call("retry_dead_letters", ids=ids, everything=everything))

    async def drop_dead_letters(self, ids: list[str], everything: bool = False) -> int:
        return int(await self.call("drop_dead_letters", ids=ids, everything=everything))


class RemoteKnowledge(Remote):
    """``KnowledgeAdmin`` through the admin socket; paths go absolute (the bot reads them)."""

    async def add(self, scope: str, paths: list[str], actor: str = "cli",
                  report: Callable[[dict[str, Any]], None] | None = None,
                  advance: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        return list(await self.call("knowledge_add", {"report": report, "advance": advance},
                                    scope=scope, paths=[_absolute(p) for p in paths], actor=actor))

    async def sync(self, scope: str, directory: str, actor: str = "cli",
                   report: Callable[[dict[str, Any]], None] | None = None,
                   advance: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        return list(await self.call("knowledge_sync", {"report": report, "advance": advance},
                                    scope=scope, directory=_absolute(directory), actor=actor))

    async def remove(self, scope: str, source: str, actor: str = "cli") -> dict[str, Any]:
        return dict(await self.call("knowledge_remove", scope=scope, source=source, actor=actor))

    async def listing(self, scope: str | None, since: float) -> list[dict[str, Any]]:
        return list(await self.call("knowledge_listing", scope=scope, since=since))

    async def show(self, scope: str, source: str) -> dict[str, Any]:
        return dict(await self.call("knowledge_show", scope=scope, source=source))

    async def search(self, scope: str, query: str, limit: int = 5) -> list[dict[str, Any]]:
        return list(await self.call("knowledge_search", scope=scope, query=query, limit=limit))


def _absolute(path: str) -> str:
    """The path as this shell means it, for a process with another working directory
    (symlinks kept: a linked file is named as the link)."""
    return os.path.abspath(os.path.expanduser(path))


class RemoteService:
    """What the CLI's commands need of a service: ``admin``, ``knowledge_admin``, ``settings``."""

    def __init__(self, path: Path, settings: Settings | None = None) -> None:
        self.admin = RemoteAdmin(path)
        self.knowledge_admin = RemoteKnowledge(path)
        self.settings = settings


async def running_bot(socket_path: str | None, settings: Settings | None = None) -> RemoteService | None:
    """The running bot serving ``socket_path``, or None when no bot answers there."""
    if not socket_path:
        return None
    path = Path(socket_path).resolve()
    if not path.exists() or not await answers(path):
        return None
    return RemoteService(path, settings)
