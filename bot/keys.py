"""Every Redis key name membot uses. Per-user keys carry the user in a hash tag ``{user}``
so one user's keys share a Redis Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "membot"

    # --- per user -----------------------------------------------------------------------
    def state(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:state"

    def inbox(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:inbox"

    def outbox(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:outbox"

    def lock(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:lock"

    def recall_queue(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:recallq"

    def rate(self, user: str, minute: int) -> str:
        return f"{self.prefix}:{{{user}}}:rate:{minute}"

    def heartbeat_budget(self, user: str, day: str) -> str:
        return f"{self.prefix}:{{{user}}}:hbbudget:{day}"

    def heartbeat_meta(self, user: str) -> str:
        return f"{self.prefix}:{{{user}}}:hbmeta"

    # --- global -------------------------------------------------------------------------
    def dedupe(self, event_id: str) -> str:
        return f"{self.prefix}:dedupe:{event_id}"

    @property
    def ready(self) -> str:
        return f"{self.prefix}:ready"

    @property
    def active(self) -> str:
        """Set of users that may have journaled events not yet processed."""
        return f"{self.prefix}:active"

    @property
    def recall_dirty(self) -> str:
        """Set of users whose recall queue may hold unwritten messages."""
        return f"{self.prefix}:recalldirty"

    @property
    def heartbeat_due(self) -> str:
        return f"{self.prefix}:heartbeat:due"

    def alias(self, user: str) -> str:
        return f"{self.prefix}:alias:{user}"

    @property
    def users(self) -> str:
        """Set of every user key that has state (for admin listing)."""
        return f"{self.prefix}:users"
