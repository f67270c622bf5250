"""Invariant 5, clean shutdown: a stop cancels what is still running so that it runs again later (whatever its
try), never runs again a job whose function already finished, and does not wait for a sync job's thread."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from pool import PoolRedis
from pool.jobs import JobStatus
from pool.storage.keys import QueueKeys
from tests.helpers import wait_for
from tests.job_functions import count_run, slow
from tests.redis_server import _die_with_parent
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")
REPO_ROOT = Path(__file__).resolve().parent.parent


async def test_a_job_cancelled_by_shutdown_on_its_last_try_runs_again(redis: PoolRedis, redis_url: str) -> None:
    """Invariant 5: cancelled at shutdown, 'they run again later', even with max_tries=1: the cancelled attempt is
    handed back, not recorded as the job's final failure."""
    job = await redis.enqueue_job("slow", 5.0, _job_id="last")
    assert job is not None
    async with running_worker(redis_url, functions=[slow], max_tries=1):
        await wait_for(lambda: redis.exists("runs:last"))
    assert await job.status() == JobStatus.queued, await redis.get(KEYS.result("last"))


async def slow_end_hook(ctx: dict[str, Any]) -> None:
    await ctx["redis"].set("in_end_hook:" + ctx["job_id"], 1)
    await asyncio.sleep(1.0)


async def test_shutdown_during_on_job_end_does_not_rerun_finished_job(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("count_run", _job_id="h1")
    assert job is not None
    async with running_worker(redis_url, functions=[count_run], on_job_end=slow_end_hook):
        await wait_for(lambda: redis.exists("in_end_hook:h1"))
    # the function finished once; the shutdown cancelled only the hook
    async with running_worker(redis_url, functions=[count_run]):
        await asyncio.sleep(0.5)
    assert await redis.get("runs:h1") == b"1", "a job whose function had completed ran a second time"


_SYNC_WORKER = textwrap.dedent(
    """
    import sys, time
    from pool import RedisSettings, Worker

    def sleepy(ctx):
        time.sleep(20)

    Worker([sleepy], redis_settings=RedisSettings.from_dsn(sys.argv[1]), job_completion_wait=0).run()
    """
)


async def test_sigterm_with_sync_job_exits_promptly(redis: PoolRedis, redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log = open(tmp_path / "w.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-c", _SYNC_WORKER, redis_url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    try:
        await redis.enqueue_job("sleepy", _job_id="s1")
        await wait_for(lambda: redis.hget(KEYS.job("s1"), "s"), timeout=10)
        await wait_for(lambda: _is(redis.hget(KEYS.job("s1"), "s"), b"r"), timeout=10)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        await wait_for(lambda: proc.poll() is not None, timeout=8, message="worker exited after SIGTERM")
        assert time.monotonic() - t0 < 8
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def _is(awaitable: Any, value: Any) -> bool:
    return bool(await awaitable == value)
