"""Cron leadership: one process at a time enqueues cron ticks, chosen through a Redis lock.

The lock is ``SET NX PX`` with a random token, extended well before it expires by a compare-and-extend script
and released by compare-and-delete. The holder also keeps a local monotonic deadline, measured from *before*
each request was sent, and stops acting as leader the moment it passes without a successful renewal: a leader
paused longer than the TTL (GC, a stopped VM) never enqueues on a lock it may have lost. Even so, two leaders
racing during a failover cannot run a tick twice: each tick's enqueue is fenced in Redis (see scripts.ENQUEUE).

Free of I/O: ``hold`` and ``release`` are storage ops (pool/storage/ops.py), run by the async worker and the
sync supervisor alike.
"""

from __future__ import annotations

import time
from uuid import uuid4

from ..storage import ops
from ..storage.keys import QueueKeys
from ..storage.ops import Op

LOCK_TTL_S = 5.0
SAFETY_MARGIN = 0.8  # act as leader for at most this share of the TTL after the request was sent


class CronLeadership:
    def __init__(self, keys: QueueKeys, ttl_s: float = LOCK_TTL_S, token: str | None = None) -> None:
        self.key = keys.cron_leader
        self.ttl_s = ttl_s
        self.token = token or uuid4().hex
        self._deadline = 0.0

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._deadline

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_s / 3

    def hold(self) -> Op[bool]:
        """Acquire the lock, or extend it if we hold it; True while we lead. The deadline counts from before
        the request is sent: the op's first batch goes out right after this generator yields it."""
        sent = time.monotonic()
        ttl_ms = int(self.ttl_s * 1000)
        if self.leading:
            ok = yield from ops.extend_lock(self.key, self.token, ttl_ms)
        else:
            ok = yield from ops.take_lock(self.key, self.token, ttl_ms)
        self._deadline = sent + self.ttl_s * SAFETY_MARGIN if ok else 0.0
        return ok

    def release(self) -> Op[None]:
        self._deadline = 0.0
        yield from ops.release_lock(self.key, self.token)
