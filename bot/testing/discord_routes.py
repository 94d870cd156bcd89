"""How the Discord emulator answers REST calls: the world's side of ``bot.testing.discord_rest``
(which checks auth and injects faults first). Mixed into ``DiscordEmulator``."""

from __future__ import annotations

import time
from typing import Any

from bot.testing.discord_gateway import DIRECT_MESSAGES, GUILD_MESSAGES, Gateway
from bot.testing.discord_models import EPHEMERAL, Channel, Guild, User, snowflake
from bot.testing.discord_rest import (
    ACK_WINDOW_S,
    FOLLOWUP_WINDOW_S,
    ApiError,
    Interaction,
    check_commands,
    check_content,
    new_message,
    public,
)


class Routes:
    """REST endpoints over the emulator's world (attributes set by DiscordEmulator)."""

    app_id: int
    bot: User
    users: dict[int, User]
    shards: int
    channels: dict[int, Channel]
    messages: dict[int, dict[str, Any]]
    sent: list[dict[str, Any]]
    typing: list[int]
    commands: dict[str, list[dict[str, Any]]]
    interactions: dict[int, Interaction]
    gateway: Gateway

    @property
    def gateway_url(self) -> str:
        raise NotImplementedError

    def guild_of(self, channel: Channel) -> Guild | None:
        raise NotImplementedError

    def dm_with(self, user: User) -> Channel:
        raise NotImplementedError

    async def route(self, method: str, path: str, payload: dict[str, Any],
                    files: list[tuple[str, bytes]], query: dict[str, str]) -> Any:
        parts = path.strip("/").split("/")
        if path == "/gateway/bot":
            return {"url": self.gateway_url, "shards": self.shards,
                    "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                            "max_concurrency": 1}}
        if path == "/users/@me":
            return self.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0}
        if path == "/oauth2/applications/@me":
            return {"id": str(self.app_id), "name": "membot", "icon": None, "description": "",
                    "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                    "owner": self.bot.payload(), "flags": 0, "team": None, "summary": "",
                    "interactions_endpoint_url": None, "bot": self.bot.payload()}
        if parts[0] == "applications":
            return self._commands(method, parts, payload)
        if parts[0] == "channels":
            return await self._channels(method, parts, payload, files)
        if parts[:3] == ["users", "@me", "channels"]:
            return self.dm_with(self.users[int(payload["recipient_id"])]).payload()
        if parts[0] == "users" and len(parts) == 2:
            user = self.users.get(int(parts[1]))
            if user is None:
                raise ApiError(404, 10013, "Unknown User")
            return user.payload()
        if parts[0] == "interactions":
            return await self._callback(int(parts[1]), parts[2], payload, files)
        if parts[0] == "webhooks":
            return self._webhook(method, parts, payload, files)
        raise ApiError(404, 0, f"404: Not Found ({method} {path})")

    def _commands(self, method: str, parts: list[str], payload: Any) -> Any:
        scope = parts[3] if len(parts) > 4 and parts[2] == "guilds" else "global"
        if method == "PUT":
            check_commands(payload)
            self.commands[scope] = [{**c, "id": str(snowflake()), "application_id": str(self.app_id),
                                     "version": str(snowflake()), "type": c.get("type", 1),
                                     "default_member_permissions": _perm_str(c)} for c in payload]
        return self.commands.get(scope, [])

    def _channel(self, cid: int, send: bool = False) -> Channel:
        ch = self.channels.get(cid)
        if ch is None:
            raise ApiError(404, 10003, "Unknown Channel")
        if not ch.bot_can_view:
            raise ApiError(403, 50001, "Missing Access")
        if send and not ch.bot_can_send:
            raise ApiError(403, 50013, "Missing Permissions")
        return ch

    async def _channels(self, method: str, parts: list[str], payload: dict[str, Any],
                        files: list[tuple[str, bytes]]) -> Any:
        ch = self._channel(int(parts[1]), send=method == "POST")
        tail = parts[2:]
        if not tail:
            return ch.payload()
        if tail == ["typing"]:
            self.typing.append(ch.id)
            return None
        if tail == ["messages"] and method == "POST":
            check_content(payload, files)
            ref = payload.get("message_reference")
            if ref and ref.get("fail_if_not_exists", True) and int(ref["message_id"]) not in self.messages:
                raise ApiError(400, 50035, "Invalid Form Body: message_reference: Unknown message")
            msg = new_message(ch, self.bot, payload, files, guild=self.guild_of(ch))
            self.messages[int(msg["id"])] = msg
            self.sent.append(msg)
            guild = self.guild_of(ch)
            await self.gateway.dispatch("MESSAGE_CREATE", public(msg), guild.id if guild else None,
                                        GUILD_MESSAGES if guild else DIRECT_MESSAGES)
            return public(msg)
        if len(tail) == 2 and tail[0] == "messages":
            found = self.messages.get(int(tail[1]))
            if found is None:
                raise ApiError(404, 10008, "Unknown Message")
            msg = found
            if method == "DELETE":
                del self.messages[int(tail[1])]
                return None
            check_content({**msg, **payload}, [])
            msg.update({k: v for k, v in payload.items() if k in ("content", "components", "embeds")})
            return public(msg)
        raise ApiError(404, 0, "404: Not Found")

    # --- interactions --------------------------------------------------------------------
    def _interaction(self, token: str) -> Interaction:
        inter = next((i for i in self.interactions.values() if i.token == token), None)
        if inter is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        return inter

    async def _callback(self, iid: int, token: str, payload: dict[str, Any],
                        files: list[tuple[str, bytes]]) -> dict[str, Any]:
        inter = self.interactions.get(iid)
        if inter is None or inter.token != token or time.monotonic() - inter.created > ACK_WINDOW_S:
            raise ApiError(404, 10062, "Unknown interaction")
        if inter.responded is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        kind, data = int(payload["type"]), payload.get("data") or {}
        if kind in (4, 7):
            check_content(data, files)
        inter.responded, inter.responded_at = payload, time.monotonic()
        channel = self.channels[int(inter.payload["channel_id"])]
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):  # a message (or "thinking...") answers the command
            flags = int(data.get("flags") or 0) | (1 << 7 if kind == 5 else 0)
            inter.original = new_message(channel, self.bot, data, files, flags=flags)
            self.messages[int(inter.original["id"])] = inter.original
            resource["message"] = public(inter.original)
        elif kind == 7 and inter.payload.get("message"):  # update the message the button is on
            target = self.messages[int(inter.payload["message"]["id"])]
            target.update({k: v for k, v in data.items() if k in ("content", "components")})
        return {"interaction": {"id": str(iid), "type": inter.payload["type"],
                                "response_message_id": resource.get("message", {}).get("id"),
                                "response_message_loading": kind == 5,
                                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL)},
                "resource": resource}

    def _webhook(self, method: str, parts: list[str], payload: dict[str, Any],
                 files: list[tuple[str, bytes]]) -> Any:
        inter = self._interaction(parts[2])
        if inter.responded is None:
            raise ApiError(404, 10015, "Unknown Webhook")  # no follow-up before the first answer
        if time.monotonic() - inter.created > FOLLOWUP_WINDOW_S:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        channel = self.channels[int(inter.payload["channel_id"])]
        if method == "POST" and len(parts) == 3:
            check_content(payload, files)
            msg = new_message(channel, self.bot, payload, files)
            self.messages[int(msg["id"])] = msg
            assert inter.followups is not None
            inter.followups.append(msg)
            return public(msg)
        if len(parts) == 5 and parts[3] == "messages":
            found: dict[str, Any] | None
            if parts[4] == "@original":
                found = inter.original or (self.messages.get(int(inter.payload["message"]["id"]))
                                           if inter.payload.get("message") else None)
            else:
                found = self.messages.get(int(parts[4]))
            if found is None:
                raise ApiError(404, 10008, "Unknown Message")
            msg = found
            if method == "PATCH":
                msg.update({k: v for k, v in payload.items() if k in ("content", "components", "embeds")})
                msg["flags"] = int(msg.get("flags") or 0) & ~(1 << 7)  # no longer "thinking"
                check_content(msg, [])
            return public(msg)
        raise ApiError(404, 0, "404: Not Found")



def _perm_str(cmd: dict[str, Any]) -> str | None:
    """Discord stores and returns default_member_permissions as a string."""
    value = cmd.get("default_member_permissions")
    return None if value is None else str(value)
