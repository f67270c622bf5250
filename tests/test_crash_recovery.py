"""Invariant 2 with real processes: a job whose worker is killed -9 runs again soon (after ~3 heartbeats, not
after its timeout) with ``job_try`` counting the attempts, and ``max_tries`` bounds jobs that keep crashing.

Workers are ``pool worker tests.apps.crashy.WorkerSettings`` subprocesses (heartbeat_interval=0.2,
job_timeout=60, max_tries=2); jobs count their runs with INCR so double execution would show.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pool import PoolRedis
from pool.jobs import JobStatus
from pool.storage.keys import CONSUMER_GROUP, QueueKeys
from pool.storage.serializers import JobExecutionFailed
from tests.helpers import wait_for
from tests.job_functions import count_run
from tests.worker_utils import WorkerProcess, running_worker

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.apps.crashy.WorkerSettings"
HEARTBEAT_S = 0.2  # tests/apps/crashy.py
JOB_TIMEOUT_S = 60  # tests/apps/crashy.py
DRAINING_SETTINGS = "tests.apps.crashy.DrainingSettings"


async def runs(pool: PoolRedis, job_id: str) -> int:
    return int(await pool.get("runs:" + job_id) or 0)


async def test_killed_worker_job_runs_again_soon(pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]) -> None:
    job = await pool.enqueue_job("long_job", _job_id="long-1")
    assert job is not None
    first = spawn_worker(settings=SETTINGS)
    await wait_for(lambda: first.exited() or pool.get("started:long-1"), timeout=10, message="the job started")
    assert not first.exited(), first.output()
    assert await job.status() == JobStatus.in_progress

    first.popen.kill()  # SIGKILL: no hand-back, no cleanup; the job stays in the pending list
    assert await first.wait_exit(5) == -signal.SIGKILL
    killed_at = time.monotonic()

    second = spawn_worker("--burst", settings=SETTINGS)
    result = await job.result(timeout=5)  # far below the 60 s job timeout: it was taken over after heartbeats
    recovered_in = time.monotonic() - killed_at
    assert result == {"job_try": 2, "runs": 2}, second.output()
    assert recovered_in < 5 < JOB_TIMEOUT_S
    info = await job.info()
    assert info is not None
    assert info.job_try == 2
    assert await runs(pool, "long-1") == 2

    assert await second.wait_exit(5) == 0, second.output()
    assert "took over 1 job" in second.output()
    assert "Traceback" not in second.output()


async def test_live_worker_keeps_its_job(pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]) -> None:
    """A second worker does not take over a job whose worker is alive and heartbeating; once that worker
    shuts down (SIGTERM, job_completion_wait=0), it hands the job back and the second worker runs it."""
    job = await pool.enqueue_job("long_job", _job_id="long-2")
    assert job is not None
    first = spawn_worker(settings=SETTINGS)
    await wait_for(lambda: first.exited() or pool.get("started:long-2"), timeout=10, message="the job started")
    second = spawn_worker(settings=SETTINGS)

    async def both_up() -> bool:
        return second.exited() or await pool.zcard("pool:{default}:workers") == 2

    await wait_for(both_up, timeout=10, message="two workers up")
    # Deliberately let time pass (a negative check): 8 heartbeats, over twice the 3-heartbeat takeover threshold.
    await asyncio.sleep(8 * HEARTBEAT_S)
    assert not first.exited() and not second.exited()
    assert await runs(pool, "long-2") == 1
    assert await job.status() == JobStatus.in_progress

    first.popen.send_signal(signal.SIGTERM)
    assert await first.wait_exit(5) == 0, first.output()
    assert await job.result(timeout=5) == {"job_try": 2, "runs": 2}
    assert await runs(pool, "long-2") == 2
    assert "took over" not in second.output()


async def test_draining_worker_keeps_heartbeating(pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]) -> None:
    """A worker told to stop keeps heartbeating while it waits for its running jobs (job_completion_wait), so
    another worker does not take them over and run them a second time meanwhile: the heartbeat does not stop
    with the fetch loop (if it did, the job would be taken over after 3 beats while still running)."""
    job = await pool.enqueue_job("gated_job", _job_id="gated-1")
    assert job is not None
    draining = spawn_worker(settings=DRAINING_SETTINGS)
    await wait_for(lambda: draining.exited() or pool.get("started:gated-1"), timeout=10, message="the job started")
    other = spawn_worker(settings=DRAINING_SETTINGS)

    async def both_up() -> bool:
        return other.exited() or await pool.zcard("pool:{default}:workers") == 2

    await wait_for(both_up, timeout=10, message="two workers up")
    draining.popen.send_signal(signal.SIGTERM)
    await wait_for(lambda: "waiting up to" in draining.output(), timeout=5, message="the worker waits for its job")
    # Deliberately let time pass (a negative check): 8 heartbeats, over twice the 3-heartbeat takeover threshold.
    await asyncio.sleep(8 * HEARTBEAT_S)
    assert not draining.exited(), draining.output()
    await pool.set("open:gated-1", 1)
    assert await draining.wait_exit(10) == 0, draining.output()
    assert await job.result(timeout=5) == {"job_try": 1, "runs": 1}
    assert await runs(pool, "gated-1") == 1
    assert "took over" not in other.output()


async def test_max_tries_bounds_jobs_that_crash_their_worker(
    pool: PoolRedis, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """``suicide`` kills its own worker on every try; with max_tries=2 the third worker records the failure."""
    job = await pool.enqueue_job("suicide", _job_id="suicide-1")
    assert job is not None
    for attempt in (1, 2):
        worker = spawn_worker("--burst", settings=SETTINGS)
        assert await worker.wait_exit(8) == -signal.SIGKILL, worker.output()
        assert await runs(pool, "suicide-1") == attempt
        assert await job.status() == JobStatus.in_progress

    last = spawn_worker("--burst", settings=SETTINGS)
    assert await last.wait_exit(8) == 0, last.output()
    assert "max retries 2 exceeded" in last.output()
    assert await runs(pool, "suicide-1") == 2  # the third worker did not run it
    assert await job.status() == JobStatus.complete
    with pytest.raises(JobExecutionFailed, match="max 2 retries exceeded"):
        await job.result(timeout=1)
    info = await job.result_info()
    assert info is not None
    assert info.success is False
    assert "max 2 retries exceeded" in str(info.result)
    # nothing is left behind: no job hash, nothing ready, running or deferred
    assert not await pool.exists("pool:{default}:job:suicide-1")
    assert await pool.xlen("pool:{default}:stream") == 0


async def test_dead_workers_jobs_behind_long_running_live_jobs_are_reclaimed(redis: PoolRedis, redis_url: str) -> None:
    """20 long jobs held by a live consumer sit at the head of the PEL; 3 jobs of a dead consumer come after.
    An idle worker with max_jobs=1 asks XAUTOCLAIM for COUNT=1 every beat, and Redis scans only 10 entries per
    call, all fresh: the worker must resume each scan at the cursor Redis returned, so that it reaches the dead
    worker's jobs and takes them over."""
    keys = QueueKeys("default")
    for i in range(23):
        await redis.enqueue_job("count_run", _job_id=f"j{i}")
    await redis.xgroup_create(keys.stream, CONSUMER_GROUP, id="0")
    live = await redis.xreadgroup(CONSUMER_GROUP, "live", {keys.stream: ">"}, count=20)
    live_ids = [entry_id for entry_id, _ in live[0][1]]
    await redis.xreadgroup(CONSUMER_GROUP, "dead", {keys.stream: ">"}, count=3)

    async def keep_live_fresh() -> None:  # a live worker heartbeating its 20 long jobs
        while True:
            await redis.xclaim(keys.stream, CONSUMER_GROUP, "live", 0, live_ids, justid=True)
            await asyncio.sleep(0.05)

    beat = asyncio.create_task(keep_live_fresh())
    try:
        async with running_worker(redis_url, functions=[count_run], max_jobs=1, heartbeat_interval=0.1):
            # min idle is 0.3 s: at least one of the dead consumer's jobs runs within a second or two
            await wait_for(lambda: redis.exists("runs:j20", "runs:j21", "runs:j22"), timeout=4)
    finally:
        beat.cancel()
