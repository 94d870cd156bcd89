"""``membot run``: the service plus every configured platform adapter, until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable

from bot.config import Settings
from bot.ops.control import ControlServer
from bot.service import Service

log = logging.getLogger("membot.run")


async def run_service(settings: Settings, terminal_user: str = "local") -> int:
    svc = Service.build(settings)
    stop = asyncio.Event()  # set by SIGTERM/SIGINT
    adapters_stop = asyncio.Event()  # set once running steps have committed
    install_signal_handlers(stop)
    await svc.probe_llm()
    await svc.start()
    control = await serve_admin_socket(svc)
    runners: list[Awaitable[None]] = []
    if settings.discord_enabled:
        from adapters.discord_adapter import run as run_discord
        runners.append(run_discord(svc, adapters_stop))
    if settings.slack_enabled:
        from adapters.slack_adapter import run as run_slack
        runners.append(run_slack(svc, adapters_stop))
    code = 0
    try:
        if runners:
            log.info("membot running with %d platform adapter(s)", len(runners))
            tasks = [asyncio.ensure_future(r) for r in runners]
            await asyncio.wait([*tasks, asyncio.ensure_future(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            log.info("shutting down: finishing running steps")
            await svc.drain()
            adapters_stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for exc in failed:  # e.g. a wrong DISCORD_TOKEN: say so instead of a traceback
                log.error("platform adapter stopped: %s: %s", type(exc).__name__, exc)
            if failed:
                code = 1
        elif sys.stdin.isatty():
            from adapters.terminal import run_chat
            from bot.ops.logs import configure_logging
            log.info("no platform tokens set; starting the terminal chat")
            if settings.log_level == "INFO":  # keep the conversation readable
                configure_logging("WARNING", settings.log_format)
            chat = asyncio.ensure_future(run_chat(svc, terminal_user))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({chat, stopper}, return_when=asyncio.FIRST_COMPLETED)
            chat.cancel()
            stopper.cancel()
        else:  # e.g. a container without platform tokens: keep serving queues and heartbeats
            log.warning("no platform tokens set and no terminal attached: running headless "
                        "(set DISCORD_TOKEN or SLACK_BOT_TOKEN + SLACK_APP_TOKEN)")
            await stop.wait()
            await svc.drain()
    finally:
        if control is not None:
            await control.stop()
        await svc.stop()
    return code


async def serve_admin_socket(svc: Service) -> ControlServer | None:
    """The admin socket of this bot (ADMIN_SOCKET), for the CLI on this machine."""
    path = svc.settings.admin_socket_path
    if path is None:
        return None
    control = ControlServer(path, svc.admin, svc.knowledge_admin)
    return control if await control.start() else None


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
