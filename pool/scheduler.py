"""The cron leader's duty: hold the leadership lock and enqueue each due tick once.

``take_due`` is the pure part, shared with the supervisor (which leads from its synchronous parent loop).
Every tick's enqueue is fenced in Redis, so this is exactly-once per tick even if two processes both
believe they lead for a moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from uuid import uuid4

from .cron import CronJob, resume_after
from .jobs import serialize_job
from .leader import CronLeadership
from .queue import RedisQueue
from .serializers import Serializer
from .utils import datetime_to_ms, now_ms

logger = logging.getLogger("pool.cron")

CATCH_UP_S = 60.0  # ticks missed during a leader failover are still enqueued if at most this old


def next_due(cron_jobs: list[CronJob], now: int) -> tuple[CronJob, int] | None:
    """The earliest tick due at ``now`` (ms), or None. The caller advances the job past the tick only after its
    enqueue succeeded (``advance``): a tick due while Redis is unreachable is retried, not skipped."""
    due = [(c, datetime_to_ms(c.next_run)) for c in cron_jobs if c.next_run is not None]
    due = [(c, tick) for c, tick in due if tick <= now]
    return min(due, key=lambda item: item[1]) if due else None


def advance(cron_job: CronJob) -> None:
    assert cron_job.next_run is not None
    cron_job.calculate_next(cron_job.next_run)


def cron_job_id(cron_job: CronJob, tick_ms: int) -> str:
    return cron_job.job_id or (f"{cron_job.name}:{tick_ms}" if cron_job.unique else uuid4().hex)


class CronScheduler:
    def __init__(
        self,
        queue: RedisQueue,
        cron_jobs: list[CronJob],
        *,
        now: Callable[[], datetime],
        serializer: Serializer | None,
        expires_ms: int,
        catch_up_s: float = CATCH_UP_S,
    ) -> None:
        self.queue = queue
        self.cron_jobs = cron_jobs
        self.now = now
        self.serializer = serializer
        self.expires_ms = expires_ms
        self.catch_up_s = catch_up_s
        self.leadership = CronLeadership(queue.redis, queue.keys)
        self._next_renew = 0.0
        self._ever_led = False

    async def run_due(self) -> float:
        """Renew (or try to take) leadership when it is time, enqueue due ticks if leading; returns the
        seconds until this should run again."""
        if time.monotonic() >= self._next_renew:
            await self._renew()
        while self.leadership.leading and (due := next_due(self.cron_jobs, now_ms())) is not None:
            await self.enqueue(*due)  # fenced: a retry after a lost reply cannot run the tick twice
            advance(due[0])
        wake = self._next_renew - time.monotonic()
        if self.leadership.leading:
            for cron_job in self.cron_jobs:
                if cron_job.next_run is not None:
                    wake = min(wake, (datetime_to_ms(cron_job.next_run) - now_ms()) / 1000)
        return max(wake, 0.001)

    async def _renew(self) -> None:
        was_leading = self.leadership.leading
        await self.leadership.hold()
        self._next_renew = time.monotonic() + self.leadership.renew_interval_s
        if self.leadership.leading and not was_leading:
            await self._take_over()
        elif was_leading and not self.leadership.leading:
            logger.warning("lost cron leadership")

    async def _take_over(self) -> None:
        """Resume each cron job after the last tick any leader enqueued (within the catch-up window)."""
        logger.info("this process now enqueues cron jobs (cron leader)")
        now = self.now()
        for cron_job in self.cron_jobs:
            resume_after(cron_job, await self.queue.cron_fence(cron_job.name), now, self.catch_up_s)
            if cron_job.run_at_startup and not self._ever_led:
                await self.enqueue(cron_job, now_ms())
        self._ever_led = True

    async def enqueue(self, cron_job: CronJob, tick_ms: int) -> None:
        payload = serialize_job(cron_job.name, (), {}, now_ms(), self.serializer)
        await self.queue.enqueue(
            cron_job_id(cron_job, tick_ms),
            payload,
            score_ms=now_ms(),
            now_ms=now_ms(),
            expires_ms=self.expires_ms,
            fence=(cron_job.name, tick_ms),
            function=cron_job.name,
        )

    async def close(self) -> None:
        if self.leadership.leading:
            await self.leadership.release()
