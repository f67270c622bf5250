"""The benchmark's jobs for pool: ``pool worker perf.pool_app.WorkerSettings`` (and ``pool start ... --procs N``).

Tuning: none beyond ``max_jobs`` (100, as for every library). pool runs on uvloop by itself. Jobs use
``ctx['redis']``, the worker's own client, as an arq user would.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from perf import common
from pool import RedisSettings


async def noop(ctx: dict[str, Any]) -> None:
    await common.count(ctx["redis"])


async def sleepy(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(common.SLEEP_S)
    await common.count(ctx["redis"])


async def pickup(ctx: dict[str, Any], enqueued_at: float) -> None:
    await ctx["redis"].rpush(common.LATENCY, time.time() - enqueued_at)


async def echo(ctx: dict[str, Any], value: int) -> int:
    await common.count(ctx["redis"])
    return value


async def startup(ctx: dict[str, Any]) -> None:
    await common.ready(ctx["redis"])


class WorkerSettings:
    functions = [noop, sleepy, pickup, echo]
    redis_settings = RedisSettings.from_dsn(common.redis_url())
    max_jobs = common.CONCURRENCY
    on_startup = startup
    auto_pipeline = os.environ.get("POOL_AUTO_PIPELINE", "1") == "1"


class AllFeaturesSettings(WorkerSettings):
    """The ``pool+all`` bench entry's worker (perf/libs.py): a partitioned queue; ``--metrics`` and the Sentinel
    URL come on its command line."""

    queue_partitions = 2
