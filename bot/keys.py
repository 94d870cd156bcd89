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

    def generation(self, user: str) -> str:
        """Bumped by every reset: writers holding older data drop it (a tombstone)."""
        return f"{self.prefix}:{{{user}}}:gen"

    def seen(self, user: str) -> str:
        """Event ids journaled for the user (their dedupe keys are deleted on reset)."""
        return f"{self.prefix}:{{{user}}}:seen"

    def forgotten(self, user: str) -> str:
        """Recall item ids deleted by forget: a writer that wrote one late deletes it again."""
        return f"{self.prefix}:{{{user}}}:forgotten"

    def user_pattern(self, user: str) -> str:
        """Glob matching every per-user key of one user (reset). Braces are literal in a glob."""
        return f"{self.prefix}:{{{_glob_escape(user)}}}:*"

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
        """Cache of an identity's link (bot.memory.links keeps it durably)."""
        return f"{self.prefix}:alias:{user}"

    def link_code(self, code: str) -> str:
        return f"{self.prefix}:linkcode:{code}"

    def link_tries(self, identity: str) -> str:
        return f"{self.prefix}:linktries:{identity}"

    @property
    def users(self) -> str:
        """Set of every user key that has state (for admin listing)."""
        return f"{self.prefix}:users"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
