"""Quick A/B probes of pool's hot paths, in one process, on a private redis-server: ``python -m perf.hotpath``.

    python -m perf.hotpath                      # all probes, 3 runs each
    python -m perf.hotpath --probe worker --log off --runs 5

- ``worker``: a burst Worker (max_jobs=100) runs N pre-enqueued noop jobs (one INCR through ctx['redis']);
  prints the process CPU per job. ``--log info|off`` (the two INFO lines per job, to a file),
  ``--no-auto-pipeline`` (ctx['redis'] as a plain client), ``--metrics`` (Prometheus counting),
  ``--partitions N`` (a queue of N partitions, on the one Redis).
- ``enqueue``: N sequential ``enqueue_job`` calls; CPU per call and calls/s.
- ``bulk``: ``prepare`` + ``enqueue_many`` of N jobs; jobs/s in all and the client CPU of ``enqueue_many``.
- ``rtt``: PING round trips back to back and 20 ms apart (as the pickup benchmark spaces its jobs): what one
  round trip costs when the processes are busy and when they have gone idle (wake-up latency of this machine).

For comparisons inside one session (before/after a change, alternating runs): the side-by-side figures with
peers come from ``perf.run``. CPU times are this process's (client and worker), not Redis's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from pool import PoolRedis, RedisSettings, Worker, create_pool
from pool.logs import setup_logging


async def noop(ctx: dict[str, Any]) -> None:
    await ctx["redis"].incr("done")


async def probe_worker(
    settings: RedisSettings, jobs: int, auto_pipeline: bool, metrics: bool = False, partitions: int = 1
) -> str:
    client = await create_pool(settings, queue_partitions=partitions)
    await client.flushall()
    await client.enqueue_many([client.prepare("noop") for _ in range(jobs)])
    worker = Worker(
        functions=[noop],
        redis_settings=settings,
        burst=True,
        max_jobs=100,
        handle_signals=False,
        keep_result=60,
        auto_pipeline=auto_pipeline,
        queue_partitions=partitions,
    )
    if metrics:  # counting for Prometheus, as `pool worker --metrics` does (no scrape here)
        worker.enable_metrics()
    started = time.process_time()
    await worker.main()
    cpu = time.process_time() - started
    assert int(await client.get("done") or 0) == jobs, "not every job ran once"
    await client.aclose()
    return f"worker: {cpu / jobs * 1e6:.0f} µs CPU per noop job"


async def probe_enqueue(settings: RedisSettings, jobs: int) -> str:
    client = await create_pool(settings)
    await client.flushall()
    for _ in range(200):  # warm-up
        await client.enqueue_job("noop")
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(jobs):
        await client.enqueue_job("noop")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await client.aclose()
    return f"enqueue: {jobs / wall:,.0f} sequential calls/s, {cpu / jobs * 1e6:.0f} µs CPU per call"


async def probe_bulk(settings: RedisSettings, jobs: int) -> str:
    client: PoolRedis = await create_pool(settings)
    await client.flushall()
    wall = time.perf_counter()
    specs = [client.prepare("noop", i) for i in range(jobs)]
    cpu = time.process_time()
    await client.enqueue_many(specs)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    await client.aclose()
    return f"bulk: {jobs / wall:,.0f} jobs/s incl. prepare, enqueue_many {cpu / jobs * 1e6:.1f} µs CPU per job"


async def probe_rtt(settings: RedisSettings, pings: int) -> str:
    client = await create_pool(settings)
    medians = []
    for gap_s in (0.0, 0.02):
        times = []
        for _ in range(pings):
            started = time.perf_counter()
            await client.ping()
            times.append((time.perf_counter() - started) * 1000)
            if gap_s:
                await asyncio.sleep(gap_s)
        medians.append(statistics.median(times))
    await client.aclose()
    return f"rtt: PING p50 {medians[0]:.3f} ms back to back, {medians[1]:.3f} ms 20 ms apart"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m perf.hotpath", description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", choices=["worker", "enqueue", "bulk", "rtt", "all"], default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per worker/bulk run (enqueue: a sixth)")
    parser.add_argument("--log", choices=["info", "off"], default="info")
    parser.add_argument("--no-auto-pipeline", action="store_true")
    parser.add_argument("--metrics", action="store_true", help="worker probe: count jobs for Prometheus")
    parser.add_argument("--partitions", type=int, default=1, help="worker probe: a queue of N partitions")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    setup_logging()
    log_file = Path(tempfile.mkdtemp(prefix="pool-hotpath-")) / "worker.log"
    handler = logging.getLogger("pool").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(log_file.open("w"))
    if args.log == "off":
        logging.getLogger("pool").setLevel(logging.WARNING)
    probes = ["worker", "enqueue", "bulk"] if args.probe == "all" else [args.probe]
    with RedisServer() as server:
        settings = RedisSettings.from_dsn(server.url)
        for _ in range(args.runs):
            for probe in probes:
                if probe == "worker":
                    line = uvloop.run(
                        probe_worker(settings, args.jobs, not args.no_auto_pipeline, args.metrics, args.partitions)
                    )
                elif probe == "rtt":
                    line = uvloop.run(probe_rtt(settings, 300))
                elif probe == "enqueue":
                    line = uvloop.run(probe_enqueue(settings, max(args.jobs // 6, 1)))
                else:
                    line = uvloop.run(probe_bulk(settings, args.jobs))
                print(line, flush=True)


if __name__ == "__main__":
    main()
