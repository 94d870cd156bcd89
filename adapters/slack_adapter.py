"""The Slack adapter (slack-bolt, asyncio): DMs and @mentions in, threaded replies out,
the ``/memory`` command.

Socket Mode by default (SLACK_APP_TOKEN); HTTP mode (SLACK_MODE=http) serves
``POST /slack/events`` on SLACK_PORT with signature verification. Events are journaled
(``service.submit``) before Slack gets its acknowledgement — so a failure to journal
answers 500 and Slack retries — and the reply follows through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_http
from adapters.render import parse_ids
from adapters.slack_commands import SlackCommands
from adapters.slack_inbound import ChannelNames, is_from_person, to_event
from adapters.slack_knowledge import SlackKnowledge
from adapters.slack_outbox import SlackOutbox
from adapters.tasks import TaskSet
from bot.errors import ConfigError, MembotError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Service

log = logging.getLogger("membot.slack")
PATH = "/slack/events"


def web_client(settings: Settings) -> AsyncWebClient:
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    base = settings.slack_api_url or AsyncWebClient.BASE_URL
    # the SDK retries connection errors and waits out one 429's Retry-After itself; what
    # still fails goes to the core's background delivery retry
    handlers = [AsyncConnectionErrorRetryHandler(max_retry_count=1),
                AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    return AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                          base_url=base if base.endswith("/") else base + "/", timeout=15,
                          retry_handlers=handlers)


class SlackAdapter:
    def __init__(self, service: Service, client: AsyncWebClient | None = None) -> None:
        s = service.settings
        self.svc = service
        self.settings = s
        self.client = client or web_client(s)
        http = s.slack_mode == "http"
        if http and s.slack_signing_secret is None:
            raise ConfigError("SLACK_SIGNING_SECRET is required when SLACK_MODE=http")
        self.app = AsyncApp(
            client=self.client, process_before_response=True,
            signing_secret=s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else "",
            request_verification_enabled=http, logger=logging.getLogger("membot.slack.bolt"))
        self._secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
        self.outbox = SlackOutbox(self.client)
        self.tasks = TaskSet()
        self.names = ChannelNames(self.client)
        self.commands = SlackCommands(service, parse_ids(s.slack_admin_ids), self.tasks)
        self.app.event("message")(self.on_message)
        self.app.event("app_mention")(self.on_mention)
        self.commands.register(self.app)
        self.knowledge = SlackKnowledge(service, self.client, self.commands.is_admin, self.tasks)
        self.knowledge.register(self.app)
        self._socket: AsyncSocketModeHandler | None = None
        self._http: web.AppRunner | None = None

    # --- events: journal before the ack ------------------------------------------------------
    async def on_message(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if event.get("subtype") == "message_deleted":  # deleted in Slack: out of recall too
            await self.forget_deleted(body, event, context)
        elif event.get("channel_type") == "im":  # channel messages arrive as app_mention
            await self.submit(body, event, context)

    async def forget_deleted(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        team = str(body.get("team_id") or context.get("team_id"))
        event_id = f"slack:{team}:{event.get('channel')}:{event.get('deleted_ts')}"
        try:
            await self.svc.admin.forget_message(event_id)
        except MembotError:
            log.exception("could not forget a deleted message")

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        await self.submit(body, event, context)

    async def submit(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> str:
        bot_user = context.get("bot_user_id")
        if not is_from_person(event, bot_user):
            return "ignored"
        if self.knowledge.is_upload(event):  # a document for the knowledge base, not a chat
            self.knowledge.take(str(body.get("team_id") or context.get("team_id")), event)
            return "knowledge"
        team = str(body.get("team_id") or context.get("team_id"))
        try:
            ev = to_event(team, event, bot_user, await self.names.channel(event, team))
        except (KeyError, ValueError, TypeError) as exc:  # Socket Mode has no HTTP check
            log.warning("slack event without usable fields ignored: %s", type(exc).__name__)
            return "ignored"
        status = await self.svc.submit(ev)
        log.info("slack message %s: %s", ev.event_id, status)
        if status == "closed":  # not journaled: a non-2xx answer makes Slack retry later
            raise MembotError("not accepting events (shutting down)")
        return status

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self, host: str = "0.0.0.0", port: int | None = None) -> None:
        self.svc.router.register("slack", self.outbox)
        self.svc.add_check("slack", self.ready)
        if self.settings.slack_mode == "http":
            await self._start_http(host, self.settings.slack_port if port is None else port)
            return
        if self.settings.slack_app_token is None:
            raise ConfigError("SLACK_APP_TOKEN (xapp-...) is required for Socket Mode")
        self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
        await self._socket.connect_async()
        log.info("slack connected (socket mode)")

    async def _start_http(self, host: str, port: int) -> None:
        web_app = web.Application()
        web_app.router.add_post(PATH, self._http_handler)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._http = runner  # ready only once the port accepts connections
        log.info("slack listening on %s:%d%s (http mode)", host, self.port, PATH)

    async def _http_handler(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, reason = slack_http.check(self._secret, body, request.headers, request.content_type)
        if status:
            log.warning("slack request refused: %d %s", status, reason)
            return web.json_response({"ok": False, "error": reason}, status=status)
        return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

    @property
    def port(self) -> int:
        return int(self._http.addresses[0][1]) if self._http else 0

    async def ready(self) -> bool:
        if self._socket is not None:
            return bool(await self._socket.client.is_connected())
        return self._http is not None

    async def close(self) -> None:
        """Stop taking events, finish running commands. The outbox stays registered: the
        Web API needs no connection, so replies of steps still running are delivered."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        await self.tasks.close(grace_s=10)
        log.info("slack adapter stopped")


async def run(service: Service, stop: asyncio.Event) -> None:
    """Serve Slack until ``stop`` is set."""
    adapter = SlackAdapter(service)
    await adapter.start()
    try:
        await stop.wait()
    finally:
        await adapter.close()
