"""Cron leadership from the supervisor's parent: the parent holds the lock and enqueues each due tick.

Same lock, fence and catch-up rules as a lone ``pool worker`` (pool/leader.py, pool/scheduler.py), so mixed
deployments run each tick once. Children of a supervisor never schedule cron; they only run the jobs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

import redis

from pool.cron import CronJob, resume_after
from pool.jobs import serialize_job
from pool.keys import QueueKeys
from pool.leader import LOCK_TTL_S, SAFETY_MARGIN
from pool.queue import enqueue_args, job_record
from pool.scheduler import CATCH_UP_S, advance, cron_job_id, next_due
from pool.scripts import ENQUEUE, LOCK_EXTEND, LOCK_RELEASE
from pool.serializers import Serializer
from pool.utils import datetime_to_ms, now_ms

logger = logging.getLogger("pool.supervisor")


class SupervisorCron:
    def __init__(
        self,
        client: redis.Redis,
        keys: QueueKeys,
        cron_jobs: list[CronJob],
        *,
        token: str,
        now: Callable[[], datetime],
        serializer: Serializer | None,
        expires_ms: int,
        ttl_s: float = LOCK_TTL_S,
        catch_up_s: float = CATCH_UP_S,
    ) -> None:
        self.client, self.keys, self.cron_jobs = client, keys, cron_jobs
        self.token, self.now, self.serializer, self.expires_ms = token, now, serializer, expires_ms
        self.ttl_s, self.catch_up_s = ttl_s, catch_up_s
        self._deadline = 0.0
        self._next_renew = 0.0
        self._ever_led = False
        self._enqueue = client.register_script(ENQUEUE)
        self._extend = client.register_script(LOCK_EXTEND)
        self._release = client.register_script(LOCK_RELEASE)

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._deadline

    def run_due(self) -> float:
        """One turn: renew or take the lock when due, enqueue due ticks; seconds until the next turn."""
        if not self.cron_jobs:
            return 3600.0
        try:
            if time.monotonic() >= self._next_renew:
                self._renew()
            while self.leading and (due := next_due(self.cron_jobs, now_ms())) is not None:
                self.enqueue(*due)  # fenced: a retry after a lost reply cannot run the tick twice
                advance(due[0])
        except (redis.RedisError, OSError) as exc:
            logger.warning("cron: redis error (%s)", exc)
        wake = self._next_renew - time.monotonic()
        if self.leading:
            for cron_job in self.cron_jobs:
                if cron_job.next_run is not None:
                    wake = min(wake, (datetime_to_ms(cron_job.next_run) - now_ms()) / 1000)
        return max(wake, 0.001)

    def _renew(self) -> None:
        was_leading = self.leading
        self._next_renew = time.monotonic() + self.ttl_s / 3
        sent = time.monotonic()
        ttl_ms = int(self.ttl_s * 1000)
        if was_leading:
            ok = bool(self._extend(keys=[self.keys.cron_leader], args=[self.token, ttl_ms]))
        else:
            ok = bool(self.client.set(self.keys.cron_leader, self.token, nx=True, px=ttl_ms))
        self._deadline = sent + self.ttl_s * SAFETY_MARGIN if ok else 0.0
        if ok and not was_leading:
            logger.info("this supervisor now enqueues cron jobs (cron leader)")
            now = self.now()
            for cron_job in self.cron_jobs:
                fence = self.client.get(self.keys.cron_fence(cron_job.name))
                resume_after(cron_job, int(fence) if fence is not None else None, now, self.catch_up_s)
                if cron_job.run_at_startup and not self._ever_led:
                    self.enqueue(cron_job, now_ms())
            self._ever_led = True
        elif was_leading and not ok:
            logger.warning("lost cron leadership")

    def enqueue(self, cron_job: CronJob, tick_ms: int) -> None:
        payload = serialize_job(cron_job.name, (), {}, now_ms(), self.serializer)
        record = job_record(
            self.keys,
            cron_job_id(cron_job, tick_ms),
            payload,
            score_ms=now_ms(),
            now_ms=now_ms(),
            expires_ms=self.expires_ms,
            fence=(cron_job.name, tick_ms),
            function=cron_job.name,
        )
        keys, args = enqueue_args(self.keys, [record])
        self._enqueue(keys=keys, args=args)

    def release(self) -> None:
        if self.leading:
            self._deadline = 0.0
            with contextlib.suppress(redis.RedisError, OSError):
                self._release(keys=[self.keys.cron_leader], args=[self.token])
