"""Sync jobs run in threads, and Python cannot kill a thread: a sync job that outlives its timeout is failed
(TimeoutError) at once, but its thread runs on. Such a thread keeps holding its job's slot until it returns, so
a worker never has more than ``max_jobs`` job threads (without that bound they pile up: 201 live threads with
max_jobs=5), and a warning names the job whose thread outlived it."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from pool import Job, PoolRedis, func
from pool.storage.keys import QueueKeys
from tests.helpers import wait_for
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")
RELEASE = threading.Event()


def stuck(ctx: dict[str, Any]) -> str:
    """Blocks (past its timeout) until the test releases it."""
    RELEASE.wait(10)
    return "done"


async def test_sync_jobs_that_outlive_their_timeout_hold_their_slots_so_threads_stay_bounded(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pool.worker")
    before = {thread.ident for thread in threading.enumerate()}

    def job_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "pool-job" and t.ident not in before]

    async def finished() -> int:
        return sum([await redis.exists(KEYS.result(f"stuck-{i}")) for i in range(6)])

    async def all_finished() -> bool:
        return await finished() == 6

    RELEASE.clear()
    try:
        async with running_worker(redis_url, functions=[func(stuck, timeout=0.2)], max_jobs=2):
            for i in range(6):
                assert await redis.enqueue_job("stuck", _job_id=f"stuck-{i}") is not None
            await wait_for(lambda: finished(), timeout=5, message="the first jobs timed out")
            # Their threads still run: the worker takes no more jobs, so no more threads start.
            loop = asyncio.get_running_loop()
            watch_until = loop.time() + 1.0
            while loop.time() < watch_until:
                assert len(job_threads()) <= 2, [t.name for t in job_threads()]
                await asyncio.sleep(0.02)
            assert await finished() <= 2
            await wait_for(lambda: "still running" in caplog.text, timeout=5, message="the lingering warning")
            RELEASE.set()
            await wait_for(all_finished, timeout=10, message="every job finished")
    finally:
        RELEASE.set()
    outcomes = [(await Job(f"stuck-{i}", redis).result_info()) for i in range(6)]
    timed_out = [info for info in outcomes if info is not None and not info.success]
    assert len(timed_out) == 2 and all(isinstance(info.result, TimeoutError) for info in timed_out)
    assert [info.result for info in outcomes if info is not None and info.success] == ["done"] * 4
    lingering = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert any("stuck-" in line and "Python cannot kill a thread" in line for line in lingering), lingering
    await wait_for(lambda: not job_threads(), timeout=5, message="the job threads ended")


def stops(ctx: dict[str, Any]) -> None:
    raise StopIteration("no more")


async def test_a_sync_job_raising_stop_iteration_fails_at_once(redis: PoolRedis, redis_url: str) -> None:
    """An asyncio future refuses StopIteration: the job's outcome was dropped and it waited for its timeout."""
    async with running_worker(redis_url, functions=[func(stops, timeout=30)]):
        job = await redis.enqueue_job("stops", _job_id="stops")
        assert job is not None
        info = await wait_for(lambda: job.result_info(), timeout=3, message="the job's result")
    assert not info.success and isinstance(info.result, RuntimeError), repr(info.result)
    assert "StopIteration" in str(info.result) and "no more" in str(info.result)
