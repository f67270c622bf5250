"""What every benchmark app shares: the Redis keys the jobs write, and the job bodies' common part.

Completion is detected the same way for every library: each job does ONE ``INCR perf:done`` through the Redis
client its library hands to jobs; the job that brings the counter to 1 stamps ``perf:start`` and the one that
brings it to ``PERF_TOTAL`` stamps ``perf:end`` (two extra SETs per run, not per job). Pickup jobs push their
enqueue->start latency onto ``perf:latency``. Each worker process bumps ``perf:ready`` from its library's start-up
hook, so the runner knows when an idle worker is up.

The apps read their settings from the environment the runner starts them with:
``PERF_REDIS_URL``, ``PERF_TOTAL`` (jobs in this run) and ``PERF_CONCURRENCY`` (jobs at once per process).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

DONE = "perf:done"
START = "perf:start"
END = "perf:end"
LATENCY = "perf:latency"
READY = "perf:ready"
LOOP = "perf:loop:"  # + pid -> event loop class, to check every worker runs on uvloop

SLEEP_S = 0.05  # the io-bound job's sleep

TOTAL = int(os.environ.get("PERF_TOTAL", "0"))
CONCURRENCY = int(os.environ.get("PERF_CONCURRENCY", "100"))


def redis_url() -> str:
    """The benchmark's private Redis. Read when called (the runner sets it after it started that server), and
    never defaulted: a benchmark must not write to whatever Redis listens on the usual port."""
    url = os.environ.get("PERF_REDIS_URL", "")
    if not url:
        raise RuntimeError("PERF_REDIS_URL is not set: run the benchmarks with `python -m perf.run`")
    return url


async def count(redis: Any) -> None:
    """The job's one INCR; the first and the last job of the run also stamp the time (redis-py or coredis)."""
    done = await redis.incr(DONE)
    if done == 1:
        await redis.set(START, repr(time.time()))
    if done == TOTAL:
        await redis.set(END, repr(time.time()))


async def ready(redis: Any) -> None:
    """Called from each library's start-up hook: this worker process is up."""
    loop = type(asyncio.get_running_loop())
    await redis.set(f"{LOOP}{os.getpid()}", f"{loop.__module__}.{loop.__qualname__}")
    await redis.incr(READY)


def install_uvloop_policy() -> None:
    """For the CLIs that create their loop with asyncio (arq, saq): make that loop a uvloop one, as uvloop's
    docs say (``asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())``), so every library runs on uvloop."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
