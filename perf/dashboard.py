"""The dashboard with a million jobs: ``python -m perf.dashboard [--jobs N]``.

Enqueues N ready jobs (``enqueue_many``, default 1,000,000), plus 10,000 deferred ones and 1,000 failed ones (run
and failed by a burst worker first), on a private Redis (tests/redis_server.py), then renders each page of the
dashboard (pool.web's ASGI app, called in-process: the figure is pool's Redis reads plus the rendering, no HTTP
stack) several times and prints the median and worst time of each. The pages read counters and ranges with a
COUNT, so their cost should not grow with N: ``--jobs 10000`` against the default shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from datetime import timedelta
from typing import Any

from pool import create_pool
from pool.redis.settings import RedisSettings
from pool.web import create_app
from tests.dashboard_utils import asgi_request
from tests.redis_server import RedisServer
from tests.worker_utils import run_burst

BATCH = 10_000


async def fail(ctx: dict[str, Any], i: int) -> None:
    raise ValueError(f"failure {i}")


async def get(app: Any, path: str) -> tuple[int, int]:
    """(status, body bytes) of one GET through the ASGI app."""
    status, _, body = await asgi_request(app, path)
    return status, len(body.encode())


async def fill(settings: RedisSettings, url: str, jobs: int) -> float:
    redis = await create_pool(settings)
    try:
        for i in range(1000):
            await redis.enqueue_job("fail", i, _job_id=f"failed-{i}")
        await run_burst(url, functions=[fail], max_jobs=100)
        started = time.perf_counter()
        for start in range(0, jobs, BATCH):
            specs = [redis.prepare("noop", i, _job_id=f"job-{i}") for i in range(start, min(start + BATCH, jobs))]
            await redis.enqueue_many(specs)
        elapsed = time.perf_counter() - started
        for start in range(0, 10_000, BATCH):
            specs = [
                redis.prepare("noop", i, _defer_by=timedelta(hours=1, seconds=i)) for i in range(start, start + BATCH)
            ]
            await redis.enqueue_many(specs)
        info = await redis.queue_info()
        print(f"queue: {info}")
        return elapsed
    finally:
        await redis.aclose()


async def main(jobs: int, rounds: int) -> None:
    logging.disable(logging.ERROR)  # the 1,000 failures the burst worker records, one traceback each
    with RedisServer() as server:
        settings = RedisSettings.from_dsn(server.url)
        elapsed = await fill(settings, server.url, jobs)
        print(f"enqueued {jobs:,} jobs with enqueue_many in {elapsed:.1f} s ({jobs / elapsed:,.0f} jobs/s)")
        app = create_app(settings, ["default"])
        async with app.router.lifespan_context(app):
            # a cursor deep into the ready jobs: the page after the 500,000th (or the middle) job
            deep = f"0:0:{await _entry_id(settings, min(jobs // 2, 500_000))}"
            pages = {
                "overview": "/",
                "supervisors": "/supervisors",
                "jobs ready (first page)": "/jobs?state=ready",
                f"jobs ready (after job {min(jobs // 2, 500_000):,})": f"/jobs?state=ready&cursor={deep}",
                "jobs running": "/jobs?state=running",
                "jobs deferred": "/jobs?state=deferred",
                "jobs deferred (offset 9,000)": "/jobs?state=deferred&cursor=0:9000",
                "job (by id)": f"/job?id=job-{jobs - 1}",
                "failed": "/failed",
                "cron": "/cron",
            }
            print(f"{'page':<36} {'median ms':>10} {'max ms':>8} {'KiB':>6}  ({rounds} renders each)")
            for name, path in pages.items():
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    status, size = await get(app, path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert status == 200, (path, status)
                print(f"{name:<36} {statistics.median(times):>10.1f} {max(times):>8.1f} {size / 1024:>6.0f}")


async def _entry_id(settings: RedisSettings, index: int) -> str:
    """The stream entry id of the index-th ready job (read once, for the deep cursor)."""
    redis = await create_pool(settings)
    try:
        entries = await redis.xrange("pool:{default}:stream", count=index) if index else []
        return entries[-1][0].decode() if entries else "0-0"
    finally:
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="ready jobs to enqueue (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=20, help="renders of each page (default 20)")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds))
