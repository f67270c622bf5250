"""The benchmark's jobs for arq: ``arq perf.arq_app.WorkerSettings`` (arq's documented CLI).

Tuning: ``max_jobs=100`` (as for every library); everything else is arq's default, including ``poll_delay=0.5``
(arq polls its sorted set; its docs offer no other advice) and INFO logging of each job (the CLI's default).
arq creates its event loop with asyncio: the uvloop policy installed below makes it a uvloop loop, as every
other library here runs on. Jobs use ``ctx['redis']``, the worker's own client, as arq's docs show.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from arq.connections import RedisSettings

from perf import common

common.install_uvloop_policy()


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
