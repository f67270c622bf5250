"""How a busy worker fetches: a quarter of its slots at a time, so its jobs do not move in one cohort (the
throughput effect is measured in perf/, see docs/performance.md; this checks the behaviour)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pool import PoolRedis, func
from pool.storage.queue import RedisQueue
from tests.helpers import wait_for
from tests.worker_utils import run_burst, running_worker


async def noop(ctx: dict[str, Any]) -> None:
    await ctx["redis"].incr("runs")


async def test_a_busy_worker_fetches_a_quarter_of_its_slots_at_a_time(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    fetch, read = RedisQueue.fetch, RedisQueue.read

    async def recording_fetch(self: RedisQueue, consumer: str, count: int, *args: Any) -> Any:
        asked.append(count)
        return await fetch(self, consumer, count, *args)

    async def recording_read(self: RedisQueue, consumer: str, count: int, *args: Any) -> Any:
        asked.append(count)
        return await read(self, consumer, count, *args)

    monkeypatch.setattr(RedisQueue, "fetch", recording_fetch)
    monkeypatch.setattr(RedisQueue, "read", recording_read)
    await redis.enqueue_many([redis.prepare("noop") for _ in range(100)])
    worker = await run_burst(redis_url, functions=[func(noop, name="noop")], max_jobs=20)
    assert worker.jobs_complete == 100 and await redis.get("runs") == b"100"
    assert max(asked) == 5  # 20 slots: never more than a quarter per fetch, even with all 20 free


async def test_a_worker_whose_jobs_run_long_fills_its_last_slots(redis: PoolRedis, redis_url: str) -> None:
    """max_jobs=9 fetches 2 at a time (a quarter): after 4 fetches 1 slot is left, fewer than a quarter. It is
    filled all the same (after PARTIAL_FETCH_AFTER_S), not only once a running job ends."""
    gate = asyncio.Event()
    started: list[str] = []

    async def long(ctx: dict[str, Any]) -> None:
        started.append(ctx["job_id"])
        await gate.wait()

    await redis.enqueue_many([redis.prepare("long") for _ in range(10)])
    async with running_worker(redis_url, functions=[func(long, name="long")], max_jobs=9) as worker:
        await wait_for(lambda: len(started) == 9, message="9 jobs started")
        assert len(worker.tasks) == 9
        gate.set()
        await wait_for(lambda: worker.jobs_complete == 10, message="10 jobs complete")
