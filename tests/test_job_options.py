"""Per-job options of the asyncio client (rq's, in pool's spelling): ``_job_timeout``, ``_keep_result``,
``_failure_ttl`` and ``_description``, honoured by the worker over its own settings and its functions'."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pool import PoolRedis, func
from pool.jobs import JobStatus
from pool.storage.keys import QueueKeys
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")


async def sleeper(ctx: dict[str, Any], seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def boom(ctx: dict[str, Any]) -> None:
    raise ValueError("boom")


def plain_add(x: int, y: int) -> int:
    """Written for rq: no ctx."""
    return x + y


FUNCTIONS = [sleeper, boom, func(plain_add, takes_ctx=False), func(sleeper, name="slow_by_function", timeout=1)]


async def test_job_timeout_of_a_job_wins_over_the_workers_and_its_functions(redis_url: str, pool: PoolRedis) -> None:
    """The worker's job_timeout is 1 s, and slow_by_function's own is 1 s: a job's _job_timeout wins over both."""
    longer = await pool.enqueue_job("sleeper", 1.5, _job_timeout=5)
    by_function = await pool.enqueue_job("slow_by_function", 1.5, _job_timeout=5)
    unbounded = await pool.enqueue_job("sleeper", 1.5, _job_timeout=-1)
    shorter = await pool.enqueue_job("sleeper", 5, _job_timeout=0.3)
    default = await pool.enqueue_job("sleeper", 1.5)
    assert longer and by_function and unbounded and shorter and default
    async with running_worker(redis_url, functions=FUNCTIONS, job_timeout=1):
        assert await longer.result(timeout=10) == 1.5
        assert await by_function.result(timeout=10) == 1.5
        assert await unbounded.result(timeout=10) == 1.5
        with pytest.raises(TimeoutError, match=r"timed out after 0\.3s"):
            await shorter.result(timeout=10)
        with pytest.raises(TimeoutError, match="timed out after 1s"):
            await default.result(timeout=10)


async def test_keep_result_and_failure_ttl_of_a_job_set_its_records_ttls(redis_url: str, pool: PoolRedis) -> None:
    kept = await pool.enqueue_job("sleeper", 0, _keep_result=120)
    forever = await pool.enqueue_job("sleeper", 0, _keep_result=-1)
    failed = await pool.enqueue_job("boom", _keep_result=60, _failure_ttl=300)
    unregistered = await pool.enqueue_job("boom", _failure_ttl=0)
    assert kept and forever and failed and unregistered
    async with running_worker(redis_url, functions=FUNCTIONS, keep_result=3600, failure_ttl=86400):
        for job in (kept, forever, failed, unregistered):
            await asyncio.wait_for(_finished(job), 10)
    assert 100_000 < await pool.pttl(KEYS.result(kept.job_id)) <= 120_000
    assert await pool.pttl(KEYS.result(forever.job_id)) == -1
    assert 50_000 < await pool.pttl(KEYS.result(failed.job_id)) <= 60_000
    assert 280_000 < await pool.pttl(KEYS.failed_job(failed.job_id)) <= 300_000
    assert [record.job_id for record in await pool.failed_jobs()] == [failed.job_id]
    assert 3_500_000 < await pool.pttl(KEYS.result(unregistered.job_id)) <= 3_600_000  # the worker's keep_result
    assert not await pool.exists(KEYS.failed_job(unregistered.job_id))


async def _finished(job: Any) -> None:
    while await job.status() != JobStatus.complete:
        await asyncio.sleep(0.02)


async def test_description_is_shown_by_info_before_and_after_the_run(redis_url: str, pool: PoolRedis) -> None:
    described = await pool.enqueue_job("sleeper", 0, _description="nap for nothing")
    plain = await pool.enqueue_job("sleeper", 0)
    assert described and plain
    info = await described.info()
    assert info is not None and info.description == "nap for nothing"
    info = await plain.info()
    assert info is not None and info.description is None
    async with running_worker(redis_url, functions=FUNCTIONS):
        await described.result(timeout=10)
    info = await described.info()
    assert info is not None and info.description == "nap for nothing"


async def test_rq_functions_and_dotted_paths_on_the_worker(redis_url: str, pool: PoolRedis) -> None:
    """A function registered with takes_ctx=False is called without ctx; a job naming a registered function by
    its module path (rq's) runs it."""
    plain = await pool.enqueue_job("plain_add", 2, 3)
    by_path = await pool.enqueue_job(f"{__name__}.plain_add", 4, 5)
    with_ctx = await pool.enqueue_job(f"{__name__}.sleeper", 0)
    assert plain and by_path and with_ctx
    async with running_worker(redis_url, functions=FUNCTIONS):
        assert await plain.result(timeout=10) == 5
        assert await by_path.result(timeout=10) == 9
        assert await with_ctx.result(timeout=10) == 0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"_job_timeout": 0}, ValueError, "_job_timeout must be positive"),
        ({"_failure_ttl": -1}, ValueError, "_failure_ttl must not be negative"),
        ({"_description": 3}, TypeError, "_description must be a str"),
    ],
)
async def test_bad_per_job_options_are_refused_before_sending(
    pool: PoolRedis, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await pool.enqueue_job("sleeper", 0, **options)
    assert await pool.queue_info() == {"ready": 0, "running": 0, "deferred": 0, "parked": 0, "failed": 0}
