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

    def attempts(self, user: str) -> str:
        """Hash event id -> JSON attempt record (count, next try, last error) of failed steps."""
        return f"{self.prefix}:{{{user}}}:attempts"

    def outbox_state(self, user: str) -> str:
        """Hash reply id -> JSON delivery record (chunks posted, in flight, attempts, next try)."""
        return f"{self.prefix}:{{{user}}}:outstate"

    def rate_notice(self, user: str, minute: int) -> str:
        return f"{self.prefix}:{{{user}}}:ratenote:{minute}"

    def memory_health(self, user: str) -> str:
        """Hash: searches/used/empty counters, search seconds (bot.memory.health)."""
        return f"{self.prefix}:{{{user}}}:health"

    def memory_growth(self, user: str) -> str:
        """Hash: UTC day -> items stored (recall + archival) first seen that day."""
        return f"{self.prefix}:{{{user}}}:growth"

    # --- global -------------------------------------------------------------------------
    def dedupe(self, event_id: str) -> str:
        return f"{self.prefix}:dedupe:{event_id}"

    # the run queue: one hash tag, so its scripts stay in one Redis Cluster slot
    @property
    def ready(self) -> str:
        """List of users to process (each at most once: see ``queued``)."""
        return f"{self.prefix}:{{q}}:ready"

    @property
    def queued(self) -> str:
        """Set of the users now in ``ready``."""
        return f"{self.prefix}:{{q}}:queued"

    @property
    def delayed(self) -> str:
        """Sorted set user -> time: retry after a backoff, a due delivery, a busy lock."""
        return f"{self.prefix}:{{q}}:delayed"

    @property
    def dead_letters(self) -> str:
        """List of JSON entries: events and replies given up on, for an operator."""
        return f"{self.prefix}:deadletters"

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
