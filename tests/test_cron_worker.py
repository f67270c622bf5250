"""Cron jobs run by workers: each tick runs once even with several workers sharing the Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from pool import RedisSettings, create_pool, cron
from tests.helpers import wait_for
from tests.worker_utils import running_worker


async def record_tick(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("ticks", ctx["job_id"])


async def test_each_tick_runs_once_across_two_workers(redis_url: str) -> None:
    every_second = cron(record_tick, name="tick", second=set(range(60)), microsecond=0)
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        kwargs: dict[str, Any] = {"cron_jobs": [every_second], "poll_delay": 0.05}
        async with running_worker(redis_url, **kwargs), running_worker(redis_url, **kwargs):
            await wait_for(lambda: _count(redis, 3), timeout=10, message="3 cron ticks")
        await asyncio.sleep(0)  # (the workers are stopped: nothing more can be enqueued)
        ticks = [t.decode() for t in await redis.lrange("ticks", 0, -1)]
    finally:
        await redis.aclose()
    assert len(ticks) >= 3
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {ticks}"
    assert all(t.startswith("tick:") for t in ticks)


async def _count(redis: Any, n: int) -> bool:
    return int(await redis.llen("ticks")) >= n


async def test_run_at_startup(redis_url: str) -> None:
    hourly = cron(record_tick, name="hourly", minute=0, second=0, run_at_startup=True)
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        async with running_worker(redis_url, cron_jobs=[hourly]):
            await wait_for(lambda: _count(redis, 1), timeout=5, message="the startup run")
    finally:
        await redis.aclose()
