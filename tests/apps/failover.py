"""Jobs for the Sentinel failover tests, run as ``pool worker tests.apps.failover.WorkerSettings``.

Each run of ``record_run`` appends ``<job_id> <job_try> <unix time>`` to ``runs.log`` in the worker's working
directory, outside Redis: a failover cannot erase the record of a run, so a test can count the runs of every job.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from pool.worker.cron import cron

RUN_LOG = "runs.log"


def log_run(line: str) -> None:
    # one write(2) of a short line on an O_APPEND file: lines of concurrent writers never interleave
    fd = os.open(Path.cwd() / RUN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


async def record_run(ctx: dict[str, Any], n: int) -> int:
    log_run(f"{ctx['job_id']} {ctx['job_try']} {time.time():.3f}")
    await asyncio.sleep(0.05)
    return n


async def tick(ctx: dict[str, Any]) -> None:
    log_run(f"{ctx['job_id']} {ctx['job_try']} {time.time():.3f}")


class WorkerSettings:
    functions = [record_run]
    max_jobs = 20


class CronSettings:
    functions = [record_run]
    cron_jobs = [cron(tick, second=set(range(60)), unique=True)]
    max_jobs = 20


class QueueFromEnvSettings(WorkerSettings):
    """``WorkerSettings`` on the queue named by $POOL_TEST_QUEUE (read at import)."""

    queue_name = os.environ.get("POOL_TEST_QUEUE", "default")


class PartitionedSettings(WorkerSettings):
    """``WorkerSettings`` on a queue of 3 partitions, with a cron job every second."""

    queue_partitions = 3
    cron_jobs = [cron(tick, second=set(range(60)), unique=True)]
