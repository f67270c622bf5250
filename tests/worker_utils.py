"""Running a Worker inside a test's event loop, against the test's private Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pool import RedisSettings, Worker
from tests.helpers import wait_for


def make_worker(redis_url: str, **kwargs: Any) -> Worker:
    kwargs.setdefault("handle_signals", False)
    kwargs.setdefault("redis_settings", RedisSettings.from_dsn(redis_url))
    return Worker(**kwargs)


@asynccontextmanager
async def running_worker(redis_url: str, **kwargs: Any) -> AsyncIterator[Worker]:
    """Start a worker in the background; on exit stop it gracefully and re-raise anything it raised."""
    worker = make_worker(redis_url, **kwargs)
    task = asyncio.create_task(worker.main())
    await wait_for(lambda: worker._queue is not None or task.done(), message="worker started")
    if task.done():
        task.result()
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


async def run_burst(redis_url: str, **kwargs: Any) -> Worker:
    worker = make_worker(redis_url, burst=True, **kwargs)
    await asyncio.wait_for(worker.main(), 30)
    return worker
