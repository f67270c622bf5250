"""The benchmark's jobs for streaq: ``streaq run perf.streaq_app:worker`` (streaq's documented CLI).

Tuning: ``concurrency=100`` (as for every library; prefetch follows it by default); everything else is
streaq's default (pickle, INFO logging of each task, as its CLI sets up). streaq runs on anyio: uvloop is chosen
with anyio's ``use_uvloop`` backend option, so every library runs on uvloop. Tasks use the worker's own
client, ``worker.redis`` (coredis, not redis-py), as streaq's docs show.

The same module is the client: the runner enqueues with ``noop.enqueue()`` inside ``async with worker``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streaq import Worker

from perf import common


@asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    await common.ready(worker.redis)
    yield None


worker = Worker(
    redis_url=common.redis_url(),
    concurrency=common.CONCURRENCY,
    lifespan=lifespan,
    anyio_kwargs={"use_uvloop": True},
)


@worker.task()
async def noop() -> None:
    await common.count(worker.redis)


@worker.task()
async def sleepy() -> None:
    await asyncio.sleep(common.SLEEP_S)
    await common.count(worker.redis)


@worker.task()
async def pickup(enqueued_at: float) -> None:
    await worker.redis.rpush(common.LATENCY, [str(time.time() - enqueued_at)])


@worker.task()
async def echo(value: int) -> int:
    await common.count(worker.redis)
    return value
