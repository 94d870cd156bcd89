"""The CLI's side of the admin socket (bot.ops.control): memory commands on a live bot.

``RemoteAdmin`` has the ``Admin`` methods the CLI uses, each one request to the running
service, so ``membot memory ...`` prints the same whether it opened the stores itself or
asked the bot that holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.errors import AdminError, MembotError
from bot.ops.control import OP_TIMEOUT_S, REQUEST_LIMIT, answers


class RemoteAdmin:
    """Admin operations through the admin socket of a running ``membot run``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def call(self, op: str, **args: Any) -> Any:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path), limit=REQUEST_LIMIT), 5.0)
        except (OSError, TimeoutError) as exc:
            raise MembotError(f"the running bot's admin socket {self.path} does not answer ({exc})") from None
        try:
            writer.write(json.dumps({"op": op, "args": args}, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), OP_TIMEOUT_S + 30)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if not line:
            raise MembotError("the running bot closed the admin socket without an answer")
        answer = json.loads(line)
        if answer.get("ok"):
            return answer.get("result")
        if answer.get("kind") == "AdminError":
            raise AdminError(answer.get("error", "refused"))
        raise MembotError(f"{answer.get('kind')}: {answer.get('error')}")

    # --- the Admin methods the CLI calls ---------------------------------------------------------
    async def find_user(self, name: str) -> str:
        return str(await self.call("find_user", name=name))

    async def require_memory(self, user: str) -> None:
        await self.call("require_memory", user=user)

    async def show(self, user: str) -> dict[str, Any]:
        return dict(await self.call("show", user=user))

    async def search(self, user: str, kind: str, query: str, limit: int = 5) -> list[dict[str, Any]]:
        return list(await self.call("search", user=user, kind=kind, query=query, limit=limit))

    async def export_lines(self, user: str, actor: str = "cli") -> list[str]:
        return list(await self.call("export_lines", user=user, actor=actor))

    async def import_lines(self, user: str, lines: Iterable[str],
                           progress: Callable[[int, int], None] | None = None,
                           actor: str = "cli") -> dict[str, int]:
        return dict(await self.call("import_lines", user=user, lines=list(lines), actor=actor))

    async def reset(self, user: str, actor: str = "cli") -> dict[str, int]:
        return dict(await self.call("reset", user=user, actor=actor))

    async def link(self, identity: str, target: str, actor: str = "cli") -> None:
        await self.call("link", identity=identity, target=target, actor=actor)

    async def heartbeat_now(self, user: str, actor: str = "cli") -> str:
        return str(await self.call("heartbeat_now", user=user, actor=actor))


class RemoteService:
    """What the CLI's memory commands need of a service: ``admin``."""

    def __init__(self, admin: RemoteAdmin) -> None:
        self.admin = admin


async def running_bot(socket_path: str | None) -> RemoteService | None:
    """The running bot serving ``socket_path``, or None when no bot answers there."""
    if not socket_path:
        return None
    path = Path(socket_path).resolve()
    if not path.exists() or not await answers(path):
        return None
    return RemoteService(RemoteAdmin(path))
