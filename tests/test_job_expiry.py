"""``_expires`` bounds a job's wait to start, not its run: a job that started keeps its id, and a job past its
``_expires`` always reaches a final state (it runs again or leaves a recorded failure), never runs twice at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pool import PoolRedis, Retry
from pool.jobs import JobStatus
from pool.storage.keys import QueueKeys
from tests.helpers import wait_for
from tests.job_functions import count_run, slow
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")


async def slow_then_retry(ctx: dict[str, Any], seconds: float) -> int:
    runs = int(await ctx["redis"].incr("runs:" + ctx["job_id"]))
    await asyncio.sleep(seconds)
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return runs


async def test_a_running_job_keeps_its_unique_id_past_its_expires(redis: PoolRedis, redis_url: str) -> None:
    """_expires means 'not started by then'; once started, the job's id stays taken while it runs, even after
    that time: status() says in_progress and a second job with the same id is refused."""
    async with running_worker(redis_url, functions=[slow]):
        job = await redis.enqueue_job("slow", 2.0, _job_id="uniq", _expires=0.5)
        assert job is not None
        await wait_for(lambda: redis.exists("runs:uniq"))
        await asyncio.sleep(1.0)  # still running, past its _expires
        status = await job.status()
        again = await redis.enqueue_job("slow", 2.0, _job_id="uniq")
        assert status == JobStatus.in_progress, status
        assert again is None, "a second job with a running job's id was accepted"


async def test_a_job_retried_after_its_expires_passed_is_still_known(redis: PoolRedis, redis_url: str) -> None:
    """A job that asks for a retry after its _expires passed is put back like any other (invariant 1)."""
    async with running_worker(redis_url, functions=[slow_then_retry]):
        job = await redis.enqueue_job("slow_then_retry", 1.0, _job_id="r1", _expires=0.5)
        assert job is not None
        await wait_for(lambda: redis.exists("runs:r1"))
        await asyncio.sleep(2.0)
        # invariant 1: the job either runs again or leaves a recorded (failed) result
        assert await job.status() != JobStatus.not_found, "job vanished: no hash, no result, not queued"


async def test_expired_job_leaves_a_result(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("count_run", _job_id="e1", _expires=0.2, _defer_by=0.5)
    assert job is not None
    async with running_worker(redis_url, functions=[count_run]):
        await asyncio.sleep(1.5)
    assert await redis.exists(KEYS.result("e1")), "expired job left Redis without a recorded failure"


async def test_a_stale_deferred_member_of_a_reused_id_does_not_run_the_job_twice(
    redis: PoolRedis, redis_url: str
) -> None:
    """A deferred job expires (_expires < _defer_by) before it is due; its id is free, so it is enqueued again to
    run now. When the old due time comes, promoting the deferred set must leave the new, running job alone: it
    runs once, not a second time concurrently on another worker."""
    first = await redis.enqueue_job("slow", 3.0, _job_id="dup", _defer_by=1.0, _expires=0.2)
    assert first is not None
    await asyncio.sleep(0.4)
    second = await redis.enqueue_job("slow", 3.0, _job_id="dup")
    assert second is not None  # the id was free: arq semantics, fine
    async with running_worker(redis_url, functions=[slow], max_jobs=4, poll_delay=0.1):
        await wait_for(lambda: redis.exists("runs:dup"))
        await asyncio.sleep(1.5)  # past the old due time, the job still running
        assert await redis.get("runs:dup") == b"1", "the same job runs twice at once"
