"""Settings for tests/test_crash_recovery.py: jobs that get their worker killed."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any


async def long_job(ctx: dict[str, Any]) -> dict[str, int]:
    """Count the run and mark the start; the first try then sleeps (the test kills the worker meanwhile)."""
    runs = await ctx["redis"].incr("runs:" + ctx["job_id"])
    await ctx["redis"].set("started:" + ctx["job_id"], ctx["job_try"])
    if ctx["job_try"] == 1:
        await asyncio.sleep(30)
    return {"job_try": int(ctx["job_try"]), "runs": int(runs)}


async def suicide(ctx: dict[str, Any]) -> None:
    """Count the run, then kill -9 our own process: every try crashes its worker."""
    await ctx["redis"].incr("runs:" + ctx["job_id"])
    os.kill(os.getpid(), signal.SIGKILL)


async def gated_job(ctx: dict[str, Any]) -> dict[str, int]:
    """Count the run, mark the start, then wait until the test opens the gate (a Redis key)."""
    runs = await ctx["redis"].incr("runs:" + ctx["job_id"])
    await ctx["redis"].set("started:" + ctx["job_id"], ctx["job_try"])
    while not await ctx["redis"].exists("open:" + ctx["job_id"]):
        await asyncio.sleep(0.05)
    return {"job_try": int(ctx["job_try"]), "runs": int(runs)}


class WorkerSettings:
    functions = [long_job, suicide]
    heartbeat_interval = 0.2
    job_timeout = 60
    max_tries = 2


class DrainingSettings(WorkerSettings):
    """A worker that, told to stop, waits up to 20 s (100 heartbeats) for its running jobs."""

    functions = [long_job, suicide, gated_job]
    job_completion_wait = 20
