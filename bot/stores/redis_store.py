"""Redis: hot per-user state, the inbound journal, locks, outbox, recall write queue.

The only module importing ``redis``. Its errors become ``StoreError`` here. Key names
come from ``bot.keys``. Per-user multi-key updates are single Lua scripts over keys that
share the user's hash tag, so they are atomic and each runs in one Redis Cluster slot;
``REDIS_URL=redis+cluster://host:port`` selects redis-py's cluster client (tested against a
real 3-master cluster in tests/stores/test_redis_cluster.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.errors import StoreError
from bot.keys import Keys

# Commit one step: only while we still own the lock. Pops the journaled event (when it is
# still the head), stores state, queues replies and recall items.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  local head = redis.call('LINDEX', KEYS[3], 0)
  if head and string.find(head, ARGV[3], 1, true) then redis.call('LPOP', KEYS[3]) end
  redis.call('HDEL', KEYS[6], ARGV[4])
end
local nrep = tonumber(ARGV[5])
for i = 1, nrep do redis.call('RPUSH', KEYS[4], ARGV[5 + i]) end
for i = 6 + nrep, #ARGV do redis.call('RPUSH', KEYS[5], ARGV[i]) end
return 1
"""
# Queue a user to be processed, once: a user already waiting in the ready list is not added
# again (so re-queueing is cheap and the list never grows past the number of users).
_MARK_READY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
# Move a reply to another target (permanent failure in a channel -> the user's DM).
_OUTBOX_REPLACE = """
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
if n > 0 and ARGV[3] ~= '' then redis.call('RPUSH', KEYS[1], ARGV[3]) end
return n
"""
# Trim written recall items only while no reset happened since they were read.
_TRIM = """
local gen = redis.call('GET', KEYS[2]) or '0'
if gen ~= ARGV[2] then return -1 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
return redis.call('LLEN', KEYS[1])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Claim up to N due members of a sorted set atomically (several replicas never share one):
# each claimed member is pushed to now + lease, so a claimer that dies before writing the
# member's next time only delays it by the lease instead of dropping it.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[1] + ARGV[3], m) end
return due
"""


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def connect(url: str, timeout_s: float) -> Any:
    """A client for ``url``: ``redis+cluster://host:port`` (any node) speaks Redis Cluster
    through redis-py's cluster client; every other URL is a single Redis server."""
    scheme, _, rest = url.partition("://")
    opts: dict[str, Any] = dict(decode_responses=True, socket_timeout=timeout_s,
                                socket_connect_timeout=timeout_s)
    if scheme in CLUSTER_SCHEMES:
        return aioredis.RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", **opts)
    return aioredis.from_url(url, **opts)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


class RedisStore:
    """Async Redis access for the core. Construct with a URL; call ``close()`` at the end."""

    def __init__(self, url: str, prefix: str = "membot", timeout_s: float = 5.0) -> None:
        self.keys = Keys(prefix)
        self._timeout = timeout_s
        self._r: Any = connect(url, timeout_s)  # aioredis.Redis or aioredis.RedisCluster
        self._commit = self._r.register_script(_COMMIT)
        self._release = self._r.register_script(_RELEASE)
        self._renew = self._r.register_script(_RENEW)
        self._claim = self._r.register_script(_CLAIM_DUE)
        self._mark_ready = self._r.register_script(_MARK_READY)
        self._outbox_replace = self._r.register_script(_OUTBOX_REPLACE)
        self._trim = self._r.register_script(_TRIM)
        self._cluster_ready = not isinstance(self._r, aioredis.RedisCluster)
        self._init_lock = asyncio.Lock()

    async def _do(self, aw: Awaitable[Any]) -> Any:
        try:
            if not self._cluster_ready:
                await self._init_cluster(aw)
            return await aw
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc

    async def _init_cluster(self, pending: Awaitable[Any]) -> None:
        """Learn the slot map once: redis-py's cluster client breaks connections when many
        first commands initialize it concurrently (seen with 60 parallel claims)."""
        try:
            async with self._init_lock:
                if not self._cluster_ready:
                    try:
                        await asyncio.wait_for(self._r.initialize(), self._timeout * 2)
                    except TimeoutError as exc:
                        raise StoreError("Redis Cluster did not answer in time") from exc
                    self._cluster_ready = True
        except BaseException:
            if asyncio.iscoroutine(pending):
                pending.close()  # never sent
            raise

    async def ping(self) -> bool:
        return bool(await self._do(self._r.ping()))

    async def close(self) -> None:
        await self._r.aclose()

    # --- state ---------------------------------------------------------------------------
    async def get_state(self, user: str) -> str | None:
        v = await self._do(self._r.get(self.keys.state(user)))
        return None if v is None else str(v)

    async def set_state(self, user: str, raw: str) -> None:
        await self._do(self._r.set(self.keys.state(user), raw))
        await self._do(self._r.sadd(self.keys.users, user))

    async def commit(
        self,
        user: str,
        token: str,
        state: str,
        *,
        event_id: str = "",
        replies: Sequence[str] = (),
        recall: Sequence[str] = (),
    ) -> bool:
        """Atomically store state, pop the event, queue replies and recall items.

        Returns False (and changes nothing) when the lock is no longer ours.
        """
        k = self.keys
        keys = [k.lock(user), k.state(user), k.inbox(user), k.outbox(user), k.recall_queue(user),
                k.attempts(user)]
        marker = f'"event_id":{json.dumps(event_id)}' if event_id else ""
        args = [token, state, marker, event_id, str(len(replies)), *replies, *recall]
        ok = await self._do(self._commit(keys=keys, args=args))
        if ok and recall:
            await self._do(self._r.sadd(k.recall_dirty, user))
        if ok:
            await self._do(self._r.sadd(k.users, user))
        return bool(ok)

    # --- inbound journal -------------------------------------------------------------------
    async def dedupe(self, event_id: str, ttl_s: int = 86_400) -> bool:
        """True the first time an event id is seen (within ttl)."""
        return bool(await self._do(self._r.set(self.keys.dedupe(event_id), "1", nx=True, ex=ttl_s)))

    async def forget_dedupe(self, event_id: str) -> None:
        await self._do(self._r.delete(self.keys.dedupe(event_id)))

    async def journal(self, user: str, raw_event: str, event_id: str = "",
                      seen_ttl_s: int = 86_400) -> int:
        """Append an event to the user's durable inbox and mark the user ready."""
        k = self.keys
        pipe = self._r.pipeline(transaction=False)
        pipe.rpush(k.inbox(user), raw_event)
        pipe.sadd(k.active, user)
        if event_id:  # so that a reset can delete the event's dedupe key too
            pipe.sadd(k.seen(user), event_id)
            pipe.expire(k.seen(user), seen_ttl_s)
        res = await self._do(pipe.execute())
        await self.mark_ready(user)
        return int(res[0])

    async def next_ready(self, timeout_s: float) -> str | None:
        res = await self._do(self._r.blpop([self.keys.ready], timeout=timeout_s))
        if res is None:
            return None
        user = str(res[1])
        await self._do(self._r.srem(self.keys.queued, user))
        return user

    async def mark_ready(self, user: str) -> bool:
        """Queue a user for a worker; False when the user is already queued."""
        k = self.keys
        return bool(await self._do(self._mark_ready(keys=[k.queued, k.ready], args=[user])))

    async def retry_later(self, user: str, at: float) -> None:
        """Queue the user at ``at`` (the earlier time wins when one is already set)."""
        await self._do(self._r.zadd(self.keys.delayed, {user: at}, lt=True))

    async def release_due(self, now: float, limit: int = 200) -> int:
        """Queue the users whose delayed time has come; each claimed by one replica."""
        k = self.keys
        due = await self._do(self._r.zrangebyscore(k.delayed, "-inf", now, start=0, num=limit))
        n = 0
        for user in due:
            if int(await self._do(self._r.zrem(k.delayed, user))):
                await self.mark_ready(str(user))
                n += 1
        return n

    async def heal_queue(self) -> int:
        """Drop users from ``queued`` that are not in the ready list (a worker killed between
        taking a user and clearing its mark would otherwise keep it from being queued again)."""
        k = self.keys
        if int(await self._do(self._r.scard(k.queued))) <= int(await self._do(self._r.llen(k.ready))):
            return 0
        listed = set(await self._do(self._r.lrange(k.ready, 0, -1)))
        ghosts = [u for u in await self._do(self._r.smembers(k.queued)) if u not in listed]
        if ghosts:
            await self._do(self._r.srem(k.queued, *ghosts))
        return len(ghosts)

    async def orphans(self) -> list[str]:
        """Active users nobody holds, queues or waits for: a dead owner's users."""
        k = self.keys
        users = await self.active_users()
        if not users:
            return []
        pipe = self._r.pipeline(transaction=False)
        for u in users:
            pipe.exists(k.lock(u))
            pipe.sismember(k.queued, u)
            pipe.zscore(k.delayed, u)
        res = await self._do(pipe.execute())
        return [u for i, u in enumerate(users)
                if not res[3 * i] and not res[3 * i + 1] and res[3 * i + 2] is None]

    async def inbox_head(self, user: str) -> str | None:
        return _opt_str(await self._do(self._r.lindex(self.keys.inbox(user), 0)))

    async def inbox_len(self, user: str) -> int:
        return int(await self._do(self._r.llen(self.keys.inbox(user))))

    async def drop_inbox_head(self, user: str, raw: str) -> None:
        await self._do(self._r.lrem(self.keys.inbox(user), 1, raw))

    async def deactivate_if_empty(self, user: str) -> bool:
        """Leave the active set once nothing is journaled or queued for delivery."""
        if await self.inbox_len(user) or await self._do(self._r.llen(self.keys.outbox(user))):
            return False
        await self._do(self._r.srem(self.keys.active, user))
        return True

    async def active_users(self) -> list[str]:
        return sorted(await self._do(self._r.smembers(self.keys.active)))

    # --- attempts of failing steps, dead letters ----------------------------------------------------
    async def get_attempt(self, user: str, event_id: str) -> dict[str, Any] | None:
        raw = await self._do(self._r.hget(self.keys.attempts(user), event_id))
        return None if raw is None else dict(json.loads(raw))

    async def set_attempt(self, user: str, event_id: str, record: dict[str, Any]) -> None:
        await self._do(self._r.hset(self.keys.attempts(user), event_id, json.dumps(record)))

    async def add_dead_letter(self, entry: str) -> None:
        await self._do(self._r.rpush(self.keys.dead_letters, entry))

    async def dead_letters(self) -> list[str]:
        return [str(x) for x in await self._do(self._r.lrange(self.keys.dead_letters, 0, -1))]

    async def remove_dead_letter(self, entry: str) -> bool:
        return bool(await self._do(self._r.lrem(self.keys.dead_letters, 1, entry)))

    async def queue_depth(self) -> int:
        return int(await self._do(self._r.llen(self.keys.ready)))

    # --- per-user lock (a lease: short TTL, renewed by its owner, fenced by its token) ---------------
    async def acquire(self, user: str, ttl_s: float, owner: str = "") -> str | None:
        """The lock's token when we got it. The token names the owner (instance id)."""
        token = f"{owner}:{secrets.token_hex(8)}" if owner else secrets.token_hex(8)
        ok = await self._do(self._r.set(self.keys.lock(user), token, nx=True, px=int(ttl_s * 1000)))
        return token if ok else None

    async def renew(self, user: str, token: str, ttl_s: float) -> bool:
        return bool(await self._do(self._renew(keys=[self.keys.lock(user)], args=[token, int(ttl_s * 1000)])))

    async def release(self, user: str, token: str) -> None:
        await self._do(self._release(keys=[self.keys.lock(user)], args=[token]))

    async def lock_owner(self, user: str) -> str | None:
        return _opt_str(await self._do(self._r.get(self.keys.lock(user))))

    # --- outbox ----------------------------------------------------------------------------------
    async def outbox_head(self, user: str) -> str | None:
        return _opt_str(await self._do(self._r.lindex(self.keys.outbox(user), 0)))

    async def outbox_pop(self, user: str) -> None:
        await self._do(self._r.lpop(self.keys.outbox(user)))

    async def outbox_all(self, user: str) -> list[str]:
        return [str(x) for x in await self._do(self._r.lrange(self.keys.outbox(user), 0, -1))]

    async def outbox_push(self, user: str, raw: str) -> None:
        await self._do(self._r.rpush(self.keys.outbox(user), raw))

    async def outbox_states(self, user: str) -> dict[str, dict[str, Any]]:
        raw = await self._do(self._r.hgetall(self.keys.outbox_state(user)))
        return {str(k): dict(json.loads(v)) for k, v in raw.items()}

    async def set_outbox_state(self, user: str, reply_id: str, record: dict[str, Any]) -> None:
        await self._do(self._r.hset(self.keys.outbox_state(user), reply_id, json.dumps(record)))

    async def outbox_remove(self, user: str, raw: str, reply_id: str, instead: str = "") -> bool:
        """Take a delivered (or given up) reply out of the outbox; ``instead`` queues its
        replacement at the end, in the same atomic step."""
        k = self.keys
        keys = [k.outbox(user), k.outbox_state(user)]
        return bool(await self._do(self._outbox_replace(keys=keys, args=[raw, reply_id, instead])))

    # --- recall write queue ----------------------------------------------------------------------
    async def recall_batch(self, user: str, n: int) -> tuple[str, list[str]]:
        """(the user's generation, up to n queued recall items), read together."""
        pipe = self._r.pipeline(transaction=True)
        pipe.get(self.keys.generation(user))
        pipe.lrange(self.keys.recall_queue(user), 0, n - 1)
        gen, raws = await self._do(pipe.execute())
        return str(gen or "0"), list(raws)

    async def generation(self, user: str) -> str:
        return str(await self._do(self._r.get(self.keys.generation(user))) or "0")

    async def recall_trim(self, user: str, n: int, gen: str = "0") -> int:
        """Drop the first n queued recall items unless the user was reset since ``gen``
        (then -1, nothing dropped: the queue is a new one); returns how many remain."""
        keys = [self.keys.recall_queue(user), self.keys.generation(user)]
        return int(await self._do(self._trim(keys=keys, args=[n, gen])))

    async def tombstone(self, user: str, ids: Sequence[str], ttl_s: int = 86_400) -> None:
        """Mark recall item ids as forgotten (before deleting them from the vector store)."""
        if ids:
            pipe = self._r.pipeline(transaction=True)
            pipe.sadd(self.keys.forgotten(user), *ids)
            pipe.expire(self.keys.forgotten(user), ttl_s)
            await self._do(pipe.execute())

    async def forgotten(self, user: str, ids: Sequence[str]) -> set[str]:
        """Which of these ids were forgotten."""
        if not ids:
            return set()
        flags = await self._do(self._r.smismember(self.keys.forgotten(user), list(ids)))
        return {i for i, f in zip(ids, flags, strict=True) if f}

    async def queued_writes(self, user: str) -> list[dict[str, Any]]:
        """The staged writes (``{"op": ...}``) of this user's committed steps that the writer
        has not carried out yet, oldest first; queued recall items are left out."""
        raws = await self._do(self._r.lrange(self.keys.recall_queue(user), 0, -1))
        return [d for d in map(json.loads, raws) if "op" in d]

    async def recall_pending(self, user: str) -> int:
        return int(await self._do(self._r.llen(self.keys.recall_queue(user))))

    async def recall_dirty_users(self) -> list[str]:
        return list(await self._do(self._r.smembers(self.keys.recall_dirty)))

    async def recall_clean(self, user: str) -> None:
        await self._do(self._r.srem(self.keys.recall_dirty, user))

    # --- rate limit, users, aliases ------------------------------------------------------------
    async def first_rate_notice(self, user: str, window_s: int = 60) -> bool:
        """True once per window: only the first over-limit message gets a notice."""
        key = self.keys.rate_notice(user, int(time.time() // window_s))
        return bool(await self._do(self._r.set(key, "1", nx=True, ex=window_s * 2)))

    async def hit_rate(self, user: str, window_s: int = 60) -> int:
        key = self.keys.rate(user, int(time.time() // window_s))
        pipe = self._r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, window_s * 2)
        res = await self._do(pipe.execute())
        return int(res[0])

    async def known_users(self) -> list[str]:
        return sorted(await self._do(self._r.smembers(self.keys.users)))

    async def get_alias(self, user: str) -> str | None:
        return _opt_str(await self._do(self._r.get(self.keys.alias(user))))

    async def set_alias(self, user: str, target: str | None, ttl_s: int | None = None) -> None:
        if target is None:
            await self._do(self._r.delete(self.keys.alias(user)))
        else:
            await self._do(self._r.set(self.keys.alias(user), target, ex=ttl_s))

    async def aliases_of(self, target: str) -> list[str]:
        """Every identity linked to ``target`` (a scan of the alias keys: admin exports only)."""
        out = []
        lead = len(self.keys.alias(""))
        async for key in self._r.scan_iter(match=self.keys.alias("*"), count=1000):
            if _opt_str(await self._do(self._r.get(key))) == target:
                out.append(str(key)[lead:])
        return sorted(out)

    async def put_code(self, key: str, value: str, ttl_s: int) -> None:
        """A short-lived one-time value (identity link codes)."""
        await self._do(self._r.set(key, value, ex=ttl_s))

    async def take(self, key: str) -> str | None:
        """Read and delete a one-time value atomically."""
        return _opt_str(await self._do(self._r.getdel(key)))

    async def forget_user(self, user: str) -> dict[str, int]:
        """Delete everything of a user in Redis but their lock (held by the caller) and
        generation, which goes up first: a writer holding older data drops it. Returns
        counts for the receipt."""
        k = self.keys
        await self._do(self._r.incr(k.generation(user)))
        queued = await self.inbox_len(user)
        seen = list(await self._do(self._r.smembers(k.seen(user))))
        dedupes = sum([int(await self._do(self._r.delete(k.dedupe(e)))) for e in seen])
        keep = {k.lock(user), k.generation(user)}
        mine = [key async for key in self._r.scan_iter(match=k.user_pattern(user), count=500)
                if key not in keep]
        for start in range(0, len(mine), 500):
            await self._do(self._r.delete(*mine[start:start + 500]))
        pipe = self._r.pipeline(transaction=False)
        for members in (k.users, k.active, k.recall_dirty, k.queued):
            pipe.srem(members, user)
        pipe.zrem(k.heartbeat_due, user)
        pipe.lrem(k.ready, 0, user)
        pipe.delete(k.alias(user), k.link_tries(user))  # links themselves: bot.memory.links
        await self._do(pipe.execute())
        return {"redis_keys": len(mine), "queued_events": queued, "dedupe_keys": dedupes}

    # --- sorted-set schedule (heartbeats) ----------------------------------------------------
    async def schedule(self, member: str, at: float) -> None:
        await self._do(self._r.zadd(self.keys.heartbeat_due, {member: at}))

    async def unschedule(self, member: str) -> None:
        await self._do(self._r.zrem(self.keys.heartbeat_due, member))

    async def scheduled_at(self, member: str) -> float | None:
        v = await self._do(self._r.zscore(self.keys.heartbeat_due, member))
        return None if v is None else float(v)

    async def claim_due(self, now: float, limit: int = 100, lease_s: float = 600.0) -> list[str]:
        res = await self._do(self._claim(keys=[self.keys.heartbeat_due], args=[now, limit, lease_s]))
        return [str(x) for x in res]

    async def incr_with_ttl(self, key: str, ttl_s: int) -> int:
        pipe = self._r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl_s)
        res = await self._do(pipe.execute())
        return int(res[0])

    async def get_int(self, key: str) -> int:
        v = await self._do(self._r.get(key))
        return int(v) if v else 0

    async def hset(self, key: str, mapping: dict[str, str]) -> None:
        await self._do(self._r.hset(key, mapping=dict(mapping)))

    async def hincr(self, key: str, mapping: dict[str, float]) -> None:
        pipe = self._r.pipeline(transaction=True)
        for name, by in mapping.items():
            pipe.hincrbyfloat(key, name, by)
        await self._do(pipe.execute())

    async def hsetnx(self, key: str, name: str, value: str) -> bool:
        return bool(await self._do(self._r.hsetnx(key, name, value)))

    async def hgetall(self, key: str) -> dict[str, str]:
        return dict(await self._do(self._r.hgetall(key)))

    async def delete_prefix(self) -> int:
        """Tests and benchmarks: delete every key under this store's prefix."""
        n = 0
        async for key in self._r.scan_iter(match=f"{self.keys.prefix}:*", count=1000):
            n += int(await self._do(self._r.delete(key)))
        return n
