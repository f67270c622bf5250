"""Cron leadership from the supervisor's parent: the parent holds the lock and enqueues each due tick.

A thin sync driver of pool/worker/scheduler.py's ``CronDuty``, the same code a lone ``pool worker`` runs, so the lock,
fence and catch-up rules are one and mixed deployments run each tick once. Children of a supervisor never
schedule cron; they only run the jobs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import redis

from pool.storage.serializers import Serializer
from pool.storage.sync import SyncQueue
from pool.worker.cron import CronJob
from pool.worker.scheduler import CronDuty

logger = logging.getLogger("pool.supervisor")


class SupervisorCron:
    def __init__(
        self,
        queue: SyncQueue,
        cron_jobs: list[CronJob],
        *,
        token: str,
        now: Callable[[], datetime],
        serializer: Serializer | None,
        expires_ms: int,
    ) -> None:
        self.queue = queue
        self.errors = 0  # Redis errors of its turns
        self.duty = CronDuty(
            queue.cron_keys,
            cron_jobs,
            now=now,
            serializer=serializer,
            expires_ms=expires_ms,
            who="supervisor",
            token=token,
            partitioned=queue.partitions > 1,
            durability=queue.durability,
        )

    @property
    def leading(self) -> bool:
        return self.duty.leading

    def run_due(self) -> float:
        """One turn of the duty; seconds until the next. A Redis error is logged (and counted, for the metrics):
        the parent loop goes on."""
        try:
            return self.queue.run(self.duty.turn())
        except (redis.RedisError, OSError) as exc:
            logger.warning("cron: redis error (%s)", exc)
            self.errors += 1
            return self.duty.after_error()

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self.queue.run(self.duty.close())
