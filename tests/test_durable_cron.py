"""With ``wait_replicas``, a cron tick's enqueue is confirmed by replicas, on both drivers of the cron duty: the
worker's (async) and the supervisor's (sync). Unconfirmed, the turn fails and the tick is tried again; confirmed,
it is enqueued once."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from pool import create_pool
from pool.redis.replication import NotReplicated
from pool.redis.settings import RedisSettings
from pool.storage.keys import QueueKeys
from pool.storage.queue import RedisQueue
from pool.storage.sync import SyncQueue
from pool.supervisor.leader import SupervisorCron
from pool.worker.cron import cron
from pool.worker.scheduler import CronScheduler
from tests.sentinel_set import SentinelSet


async def report(ctx: dict[str, Any]) -> None:
    return None


def cron_jobs() -> list[Any]:
    return [cron(report, run_at_startup=True, second=0)]


async def test_the_workers_cron_tick_needs_its_replicas(redis_url: str) -> None:
    """No replica at all: the tick's enqueue is made, but not confirmed, so the turn raises NotReplicated."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.wait_replicas, settings.wait_timeout = 1, 0.1
    pool = await create_pool(settings)
    try:
        scheduler = CronScheduler(
            RedisQueue(pool, "default"), cron_jobs(), now=datetime.now, serializer=None, expires_ms=60_000
        )
        with pytest.raises(NotReplicated, match="enqueueing a cron tick: written on the master, but 0 of 1"):
            await scheduler.run_due()
    finally:
        await pool.aclose()


def test_the_supervisors_cron_tick_needs_its_replicas(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    settings.wait_replicas, settings.wait_timeout = 1, 0.1
    queue = SyncQueue.connect(settings, "default")
    try:
        leader = SupervisorCron(queue, cron_jobs(), token="t", now=datetime.now, serializer=None, expires_ms=60_000)
        with caplog.at_level(logging.WARNING, logger="pool.supervisor"):
            leader.run_due()  # a Redis error is logged and the turn ends: the parent loop goes on
        assert "0 of 1 replicas confirmed" in caplog.text
    finally:
        queue.close()


def test_a_confirmed_tick_is_enqueued_once(shared_sentinel_set: SentinelSet) -> None:
    queue = SyncQueue.connect(shared_sentinel_set.settings(wait_replicas=1), "durable-cron")
    try:
        leader = SupervisorCron(queue, cron_jobs(), token="t", now=datetime.now, serializer=None, expires_ms=60_000)
        leader.run_due()
        stream = QueueKeys("durable-cron").stream
        enqueued = queue.client.xlen(stream)
        assert enqueued >= 1  # the startup tick (and a due one), confirmed by the replica: no error
        leader.run_due()
        assert queue.client.xlen(stream) == enqueued  # and not enqueued again
        leader.release()
    finally:
        queue.close()
