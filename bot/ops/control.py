"""The local admin socket: memory commands of the CLI served by the running bot.

The embedded Qdrant engine allows one process, so while ``membot run`` holds it a second
``membot memory ...`` cannot open it. The running service therefore listens on a Unix
socket (``ADMIN_SOCKET``, default ``./data/admin.sock``, created owner-only: whoever may
use it may read the data directory anyway) and runs the same ``Admin`` operations for the
CLI. One JSON request line per connection, one JSON answer line::

    {"op": "show", "args": {"user": "terminal:local:alice"}}
    {"ok": true, "result": {...}}   or   {"ok": false, "kind": "AdminError", "error": "..."}

Only the operations in ``OPS`` can be called: those of ``bot.ops.admin.Admin`` by their
name, those of ``bot.knowledge.admin.KnowledgeAdmin`` as ``knowledge_<name>``. Long ones
(``STREAMS``) report as they go, one line per callback before the answer, which the CLI
shows as it would offline (a progress bar, a failed file)::

    {"event": "advance", "args": [3, 10]}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.errors import AdminError, KnowledgeError, MembotError

log = logging.getLogger(__name__)

ADMIN_OPS = frozenset({"show", "search", "export_lines", "import_lines", "reset", "link",
                       "heartbeat_now", "find_user", "has_memory", "require_memory", "status",
                       "stats", "reorganize", "known_users", "dead_letters",
                       "retry_dead_letters", "drop_dead_letters"})
KNOWLEDGE_OPS = frozenset({"listing", "show", "remove", "search", "add", "sync"})
OPS = frozenset({"ping", *ADMIN_OPS, *(f"knowledge_{op}" for op in KNOWLEDGE_OPS)})
# operation -> its callback arguments, each sent to the CLI as an event line
STREAMS: dict[str, tuple[str, ...]] = {"import_lines": ("progress",),
                                       "knowledge_add": ("report", "advance"),
                                       "knowledge_sync": ("report", "advance")}
REQUEST_LIMIT = 256 * 1024 * 1024  # an import travels in one request
READ_TIMEOUT_S = 60.0
OP_TIMEOUT_S = 900.0


async def answers(path: str | Path, timeout_s: float = 2.0) -> bool:
    """Whether a control server listens on ``path``."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class ControlServer:
    """Serves ``OPS`` of an ``Admin`` and a ``KnowledgeAdmin`` on a Unix socket until ``stop``."""

    def __init__(self, path: str, admin: Any, knowledge: Any = None) -> None:
        self.path = Path(path).resolve()
        self.admin = admin
        self.knowledge = knowledge
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        """Listen; False (and a warning) when another live process already serves the path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            if await answers(self.path):
                log.warning("admin socket %s is served by another process; not serving it here",
                            self.path)
                return False
            self.path.unlink()  # left by a process that died
        old = os.umask(0o177)  # the socket is created owner-only (rw-------)
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path),
                                                           limit=REQUEST_LIMIT)
        finally:
            os.umask(old)
        log.info("admin socket listening", extra={"path": str(self.path)})
        return True

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5.0)
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(name: str) -> Callable[..., None]:
            def event(*args: Any) -> None:  # written in order; drained with the answer
                writer.write(json.dumps({"event": name, "args": list(args)},
                                        ensure_ascii=False).encode() + b"\n")
            return event

        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
            answer = await self._answer(line, send)
        except (TimeoutError, ValueError, OSError) as exc:  # ValueError: over the size limit
            answer = {"ok": False, "kind": "AdminError", "error": f"bad request: {exc}"}
        try:
            writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    def _method(self, op: str) -> Callable[..., Awaitable[Any]] | None:
        if op in ADMIN_OPS:
            return getattr(self.admin, op)  # type: ignore[no-any-return]
        if op.startswith("knowledge_") and self.knowledge is not None:
            return getattr(self.knowledge, op.removeprefix("knowledge_"))  # type: ignore[no-any-return]
        return None

    async def _answer(self, line: bytes, send: Callable[[str], Callable[..., None]]) -> dict[str, Any]:
        try:
            req = json.loads(line)
            op, args = req["op"], req.get("args", {})
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "kind": "AdminError", "error": "bad request: not JSON {op, args}"}
        if op not in OPS or not isinstance(args, dict):
            return {"ok": False, "kind": "AdminError", "error": f"unknown operation {op!r}"}
        if op == "ping":
            return {"ok": True, "result": "pong"}
        method = self._method(op)
        if method is None:
            return {"ok": False, "kind": "AdminError", "error": f"{op!r} is not served by this bot"}
        callbacks = {name: send(name) for name in STREAMS.get(op, ())}
        try:
            result = await asyncio.wait_for(method(**args, **callbacks), OP_TIMEOUT_S)
        except TypeError as exc:
            return {"ok": False, "kind": "AdminError", "error": f"bad arguments for {op}: {exc}"}
        except (AdminError, KnowledgeError) as exc:
            return {"ok": False, "kind": _kind(exc), "error": str(exc)}
        except MembotError as exc:
            return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        except Exception as exc:  # the bot keeps running; the CLI sees what went wrong
            log.exception("admin socket operation failed", extra={"op": op})
            return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        return {"ok": True, "result": result}


def _kind(exc: MembotError) -> str:
    """The refusal class the CLI raises again: AdminError or KnowledgeError."""
    return "KnowledgeError" if isinstance(exc, KnowledgeError) else "AdminError"

