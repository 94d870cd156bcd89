"""``membot run``: the service plus every configured platform adapter, until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.config import Settings
from bot.service import Service

log = logging.getLogger("membot.run")


async def run_service(settings: Settings, terminal_user: str = "local") -> int:
    from adapters.cli import install_signal_handlers

    svc = Service.build(settings)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await svc.start()
    runners: list[Awaitable[None]] = []
    if settings.discord_enabled:
        from adapters.discord_adapter import run as run_discord
        runners.append(run_discord(svc, stop))
    if settings.slack_enabled:
        from adapters.slack_adapter import run as run_slack
        runners.append(run_slack(svc, stop))
    extra: list[Callable[[Service, asyncio.Event], Awaitable[None]]] = []
    for hook in extra:
        runners.append(hook(svc, stop))
    try:
        if runners:
            log.info("membot running with %d platform adapter(s)", len(runners))
            tasks = [asyncio.ensure_future(r) for r in runners]
            await stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)
        else:
            from adapters.terminal import run_chat
            log.info("no platform tokens set; starting the terminal chat")
            chat = asyncio.ensure_future(run_chat(svc, terminal_user))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({chat, stopper}, return_when=asyncio.FIRST_COMPLETED)
            chat.cancel()
            stopper.cancel()
    finally:
        await svc.stop()
    return 0
