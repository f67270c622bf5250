"""``on_job_failure(ctx, exc)``: called once for each failure a worker records, after recording it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pool import PoolRedis, Retry, func
from tests.worker_utils import run_burst


async def fails(ctx: dict[str, Any]) -> None:
    raise ValueError("bad input 42")


async def sleeps(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(30)


async def retries_once(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return "done"


async def test_on_job_failure_gets_the_jobs_ctx_and_exception_for_each_failure_only(
    redis: PoolRedis, redis_url: str
) -> None:
    """A raised exception, a timeout and an unknown function are reported with the job's id, try, function and
    queue; a success and a Retry are not."""
    reports: list[tuple[dict[str, Any], BaseException]] = []

    async def on_job_failure(ctx: dict[str, Any], exc: BaseException) -> None:
        reports.append((ctx, exc))

    raised = await redis.enqueue_job("fails")
    timed_out = await redis.enqueue_job("sleeps")
    missing = await redis.enqueue_job("nowhere")
    await redis.enqueue_job("retries_once")
    assert raised is not None and timed_out is not None and missing is not None
    worker = await run_burst(
        redis_url,
        functions=[fails, func(sleeps, timeout=0.2), retries_once],
        on_job_failure=on_job_failure,
        ctx={"app": "mine"},
    )
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 3, 1)
    by_id = {ctx["job_id"]: (ctx, exc) for ctx, exc in reports}
    assert len(reports) == 3 and set(by_id) == {raised.job_id, timed_out.job_id, missing.job_id}

    ctx, exc = by_id[raised.job_id]
    assert isinstance(exc, ValueError) and str(exc) == "bad input 42" and exc.__traceback__ is not None
    assert (ctx["function"], ctx["job_try"], ctx["queue_name"], ctx["app"]) == ("fails", 1, "default", "mine")
    assert "redis" in ctx and "enqueue_time" in ctx
    ctx, exc = by_id[timed_out.job_id]
    assert isinstance(exc, TimeoutError) and ctx["function"] == "sleeps"
    ctx, exc = by_id[missing.job_id]
    assert "function 'nowhere' not found" in str(exc) and ctx["function"] == "nowhere" and ctx["app"] == "mine"
    # reported after the failure was recorded: the result is there
    assert (await raised.result_info()) is not None


async def test_an_on_job_failure_hook_that_raises_is_logged_and_the_worker_goes_on(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(ctx: dict[str, Any], exc: BaseException) -> None:
        raise RuntimeError("reporter down")

    first = await redis.enqueue_job("fails")
    second = await redis.enqueue_job("fails")
    assert first is not None and second is not None
    worker = await run_burst(redis_url, functions=[fails], on_job_failure=broken)
    assert worker.jobs_failed == 2
    assert caplog.text.count("on_job_failure hook failed for job") == 2
    with pytest.raises(ValueError, match="bad input 42"):
        await second.result(timeout=5)


def test_on_job_failure_must_be_callable(redis_url: str) -> None:
    from pool.worker.checks import SettingsError
    from tests.worker_utils import make_worker

    with pytest.raises(SettingsError, match="on_job_failure: expected an async function"):
        make_worker(redis_url, functions=[fails], on_job_failure="report")
