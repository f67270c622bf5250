"""Cron leadership: one process at a time enqueues cron ticks, chosen through a Redis lock.

The lock is ``SET NX PX`` with a random token, extended well before it expires by a compare-and-extend script
and released by compare-and-delete. The holder also keeps a local monotonic deadline, measured from *before*
each request was sent, and stops acting as leader the moment it passes without a successful renewal: a leader
paused longer than the TTL (GC, a stopped VM) never enqueues on a lock it may have lost. Even so, two leaders
racing during a failover cannot run a tick twice: each tick's enqueue is fenced in Redis (see scripts.ENQUEUE).
"""

from __future__ import annotations

import time
from uuid import uuid4

from redis.asyncio import Redis

from .keys import QueueKeys
from .queue import scripts_for

LOCK_TTL_S = 5.0
SAFETY_MARGIN = 0.8  # act as leader for at most this share of the TTL after the request was sent


class CronLeadership:
    def __init__(self, redis: Redis, keys: QueueKeys, ttl_s: float = LOCK_TTL_S) -> None:
        self.redis = redis
        self.key = keys.cron_leader
        self.ttl_s = ttl_s
        self.token = uuid4().hex
        self._deadline = 0.0
        self._scripts = scripts_for(redis)

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._deadline

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_s / 3

    async def hold(self) -> bool:
        """Acquire the lock, or extend it if we hold it; True while we lead."""
        sent = time.monotonic()
        ttl_ms = int(self.ttl_s * 1000)
        if self.leading:
            ok = bool(await self._scripts.lock_extend(keys=[self.key], args=[self.token, ttl_ms]))
        else:
            ok = bool(await self.redis.set(self.key, self.token, nx=True, px=ttl_ms))
        self._deadline = sent + self.ttl_s * SAFETY_MARGIN if ok else 0.0
        return ok

    async def release(self) -> None:
        self._deadline = 0.0
        await self._scripts.lock_release(keys=[self.key], args=[self.token])
