"""The cron leader's duty: hold the leadership lock and enqueue each due tick once.

``CronDuty`` holds every decision (is renewal due, did we take over or lose the lead, which ticks are owed,
catch-up after a takeover, when to wake) and does its I/O as storage ops, so the async worker
(``CronScheduler`` below) and the supervisor's sync parent loop (supervisor/leader.py) are thin drivers of the
same code. Every tick's enqueue is fenced in Redis, so this is exactly-once per tick even if two processes both
believe they lead for a moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from uuid import uuid4

from ..redis.replication import Durability
from ..storage import ops
from ..storage.codecs import serialize_job
from ..storage.drivers import run
from ..storage.keys import QueueKeys
from ..storage.ops import Op
from ..storage.partitions import CRON_TAG, tagged
from ..storage.queue import RedisQueue, job_record
from ..storage.serializers import Serializer
from ..utils import datetime_to_ms, now_ms
from .cron import CronJob, resume_after, ticks_skipped
from .leader import LOCK_TTL_S, CronLeadership

logger = logging.getLogger("pool.cron")

CATCH_UP_S = 60.0  # ticks missed during a leader failover are still enqueued if at most this old
IDLE_WAKE_S = 3600.0  # no cron jobs: nothing to do, look again in an hour
RETRY_AFTER_ERROR_S = 0.5  # a turn that met a Redis error is retried this soon (the worker's poll delay)


def next_due(cron_jobs: list[CronJob], now: int) -> tuple[CronJob, int] | None:
    """The earliest tick due at ``now`` (ms), or None. The caller advances the job past the tick only after its
    enqueue succeeded (``advance``): a tick due while Redis is unreachable is retried, not skipped."""
    due = [(c, datetime_to_ms(c.next_run)) for c in cron_jobs if c.next_run is not None]
    due = [(c, tick) for c, tick in due if tick <= now]
    return min(due, key=lambda item: item[1]) if due else None


def advance(cron_job: CronJob) -> None:
    assert cron_job.next_run is not None
    cron_job.calculate_next(cron_job.next_run)


def fence_name(cron_job: CronJob) -> str:
    """Whose ticks a fence counts: a cron job's name, or name and ``job_id`` when it has one, so two cron jobs of
    one function with their own job ids both run (arq's), while identical ones share a fence and run once."""
    return cron_job.name if cron_job.job_id is None else f"{cron_job.name}@{cron_job.job_id}"


def cron_job_id(cron_job: CronJob, tick_ms: int, partitioned: bool = False) -> str:
    """A tick's job id; in a partitioned queue tagged ``{cron}``, so every tick falls in the partition that holds
    the leader's lock and the fences (pool/storage/partitions.py)."""
    job_id = cron_job.job_id or (f"{cron_job.name}:{tick_ms}" if cron_job.unique else uuid4().hex)
    return tagged(job_id, CRON_TAG) if partitioned else job_id


class CronDuty:
    """The cron leader's decisions, with their I/O as ops: ``turn`` is one step, run by either driver."""

    def __init__(
        self,
        keys: QueueKeys,
        cron_jobs: list[CronJob],
        *,
        now: Callable[[], datetime],
        serializer: Serializer | None,
        expires_ms: int,
        who: str = "process",
        token: str | None = None,
        ttl_s: float = LOCK_TTL_S,
        catch_up_s: float = CATCH_UP_S,
        partitioned: bool = False,
        durability: Durability | None = None,
    ) -> None:
        self.keys, self.cron_jobs, self.now = keys, cron_jobs, now
        # wait_replicas: a tick's enqueue is confirmed by replicas, or the turn fails and the tick is tried again
        # (its fence makes the retry enqueue it at most once)
        self.durability = durability
        self.partitioned = partitioned  # keys are the cron partition's: tick ids are tagged to fall there
        self.serializer, self.expires_ms, self.who = serializer, expires_ms, who
        self.catch_up_s = catch_up_s
        self.leadership = CronLeadership(keys, ttl_s, token)
        self._next_renew = 0.0
        self._ever_led = False
        # for the metrics: ticks this process enqueued, and ticks it passed over at a takeover (older than the
        # catch-up window), by cron job
        self.ticks_run: dict[str, int] = {}
        self.ticks_missed: dict[str, int] = {}

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    def turn(self) -> Op[float]:
        """Renew (or try to take) leadership when it is time, enqueue due ticks if leading; returns the seconds
        until the next turn. A Redis error ends the turn; ``wake_in`` then says when to try again."""
        if not self.cron_jobs:
            return IDLE_WAKE_S
        if time.monotonic() >= self._next_renew:
            yield from self._renew()
        while self.leading and (due := next_due(self.cron_jobs, now_ms())) is not None:
            yield from self.enqueue(*due)  # fenced: a retry after a lost reply cannot run the tick twice
            advance(due[0])
            self.ticks_run[due[0].name] = self.ticks_run.get(due[0].name, 0) + 1
        return self.wake_in()

    def wake_in(self) -> float:
        """Seconds until the lock is due for renewal or (while leading) the next tick is due."""
        wake = self._next_renew - time.monotonic()
        if self.leading:
            for cron_job in self.cron_jobs:
                if cron_job.next_run is not None:
                    wake = min(wake, (datetime_to_ms(cron_job.next_run) - now_ms()) / 1000)
        return max(wake, 0.001)

    def after_error(self) -> float:
        """A turn ended on a Redis error: seconds until the next try (a renewal or a tick still due is retried
        then; a tick is advanced past only once enqueued)."""
        return max(self.wake_in(), RETRY_AFTER_ERROR_S)

    def _renew(self) -> Op[None]:
        was_leading = self.leading
        yield from self.leadership.hold()
        self._next_renew = time.monotonic() + self.leadership.renew_interval_s
        if self.leading and not was_leading:
            yield from self._take_over()
        elif was_leading and not self.leading:
            logger.warning("lost cron leadership")

    def _take_over(self) -> Op[None]:
        """Resume each cron job after the last tick any leader enqueued (within the catch-up window); the jobs
        that run at startup run once, at the first takeover only."""
        logger.info("this %s now enqueues cron jobs (cron leader)", self.who)
        now, startup_tick = self.now(), now_ms()
        for cron_job in self.cron_jobs:
            last_tick = yield from ops.cron_fence(self.keys, fence_name(cron_job))
            skipped = ticks_skipped(cron_job, last_tick, now, self.catch_up_s)
            if skipped:
                self.ticks_missed[cron_job.name] = self.ticks_missed.get(cron_job.name, 0) + skipped
            resume_after(cron_job, last_tick, now, self.catch_up_s)
            if cron_job.run_at_startup and not self._ever_led:
                # one tick for every start-up run: two identical cron jobs get one job id, so it runs once (arq's)
                yield from self.enqueue(cron_job, startup_tick)
        self._ever_led = True

    def enqueue(self, cron_job: CronJob, tick_ms: int) -> Op[None]:
        payload = serialize_job(cron_job.name, (), {}, now_ms(), self.serializer)
        record = job_record(
            self.keys,
            cron_job_id(cron_job, tick_ms, self.partitioned),
            payload,
            score_ms=now_ms(),
            now_ms=now_ms(),
            expires_ms=self.expires_ms,
            fence=(fence_name(cron_job), tick_ms),
            function=cron_job.name,
        )
        yield from ops.enqueue(self.keys, [record], self.durability)

    def close(self) -> Op[None]:
        """Release the lock if we lead, so another process takes over at once."""
        if self.leading:
            yield from self.leadership.release()


class CronScheduler:
    """The async worker's driver of ``CronDuty``; a Redis error propagates to the worker's schedule loop."""

    def __init__(
        self,
        queue: RedisQueue,
        cron_jobs: list[CronJob],
        *,
        now: Callable[[], datetime],
        serializer: Serializer | None,
        expires_ms: int,
        catch_up_s: float = CATCH_UP_S,
        partitioned: bool = False,
    ) -> None:
        self.redis = queue.redis
        self.duty = CronDuty(
            queue.keys,
            cron_jobs,
            now=now,
            serializer=serializer,
            expires_ms=expires_ms,
            catch_up_s=catch_up_s,
            partitioned=partitioned,
            durability=getattr(queue.redis, "durability", None),
        )

    async def run_due(self) -> float:
        """One turn of the duty; the seconds until this should run again."""
        return await run(self.redis, self.duty.turn())

    async def close(self) -> None:
        await run(self.redis, self.duty.close())
