"""rq's features on the same core: dependencies, callbacks, bulk enqueue, inspection, the failed registry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pool import JobStatus, PoolRedis, RedisSettings, create_pool, func
from pool.storage.serializers import JobExecutionFailed
from tests.helpers import wait_for
from tests.worker_utils import run_burst, running_worker


async def record(ctx: dict[str, Any], name: str) -> str:
    await ctx["redis"].rpush("order", name)
    return name


async def fail(ctx: dict[str, Any], name: str) -> None:
    await ctx["redis"].rpush("order", name)
    raise ValueError(f"{name} broke")


async def on_done(ctx: dict[str, Any], job_id: str, outcome: Any) -> None:
    await ctx["redis"].rpush("callbacks", f"{job_id}={outcome}")


FUNCTIONS = [record, fail, on_done]


async def order(redis: PoolRedis) -> list[str]:
    return [x.decode() for x in await redis.lrange("order", 0, -1)]


# --- dependencies -------------------------------------------------------------------------------------------------


async def test_a_job_waits_for_all_its_dependencies(redis: PoolRedis, redis_url: str) -> None:
    a = await redis.enqueue_job("record", "a", _defer_by=0.3)
    b = await redis.enqueue_job("record", "b", _defer_by=0.1)
    c = await redis.enqueue_job("record", "c", _depends_on=[a, b.job_id if b else ""])
    assert a and b and c
    assert await c.status() == JobStatus.deferred  # waiting for its dependencies
    async with running_worker(redis_url, functions=FUNCTIONS):
        assert await c.result(timeout=5) == "c"
    assert await order(redis) == ["b", "a", "c"]


async def test_a_failed_dependency_fails_the_dependent_unless_allowed(redis: PoolRedis, redis_url: str) -> None:
    bad = await redis.enqueue_job("fail", "bad", _defer_by=0.1)
    strict = await redis.enqueue_job("record", "strict", _depends_on=bad)
    lenient = await redis.enqueue_job("record", "lenient", _depends_on=bad, _allow_dependency_failure=True)
    assert bad and strict and lenient
    async with running_worker(redis_url, functions=FUNCTIONS):
        with pytest.raises(JobExecutionFailed, match=f"dependency {bad.job_id} failed"):
            await strict.result(timeout=5)
        assert await lenient.result(timeout=5) == "lenient"
    assert "strict" not in await order(redis)
    # enqueued after the dependency already failed: fails at once too
    late = await redis.enqueue_job("record", "late", _depends_on=bad)
    assert late is not None
    await run_burst(redis_url, functions=FUNCTIONS)
    with pytest.raises(JobExecutionFailed, match="dependency"):
        await late.result(timeout=1)


async def wait_for_gate(ctx: dict[str, Any], name: str) -> str:
    await ctx["redis"].rpush("order", name)
    while not await ctx["redis"].exists("gate"):
        await asyncio.sleep(0.02)
    return name


async def test_an_aborted_dependency_fails_its_dependents(redis: PoolRedis, redis_url: str) -> None:
    """Aborted before it started (its dependents must not wait forever) or while running (they must not run as
    if it had succeeded): either way the dependents fail, unless they allow failure."""
    queued = await redis.enqueue_job("record", "queued", _defer_by=60)
    after_queued = await redis.enqueue_job("record", "after-queued", _depends_on=queued)
    assert queued and after_queued
    assert await queued.abort(timeout=0) is True
    running = await redis.enqueue_job("wait_for_gate", "running")
    after_running = await redis.enqueue_job("record", "after-running", _depends_on=running)
    lenient = await redis.enqueue_job("record", "lenient", _depends_on=running, _allow_dependency_failure=True)
    assert running and after_running and lenient
    async with running_worker(redis_url, functions=[*FUNCTIONS, wait_for_gate], allow_abort_jobs=True):
        with pytest.raises(JobExecutionFailed, match=f"dependency {queued.job_id} failed"):
            await after_queued.result(timeout=5)
        await wait_for(lambda: redis.lrange("order", 0, -1), timeout=5, message="the gated job started")
        assert await running.abort(timeout=5) is True
        with pytest.raises(JobExecutionFailed, match=f"dependency {running.job_id} failed"):
            await after_running.result(timeout=5)
        assert await lenient.result(timeout=5) == "lenient"
    assert await order(redis) == ["running", "lenient"]


async def test_failure_with_failure_ttl_zero_still_fails_dependents(redis: PoolRedis, redis_url: str) -> None:
    """failure_ttl=0 keeps no dead letters; a failure must still not count as a success for dependents."""
    bad = await redis.enqueue_job("fail", "bad")
    dependent = await redis.enqueue_job("record", "dependent", _depends_on=bad)
    assert bad and dependent
    await run_burst(redis_url, functions=FUNCTIONS, failure_ttl=0)
    with pytest.raises(JobExecutionFailed, match="dependency"):
        await dependent.result(timeout=1)
    assert await order(redis) == ["bad"]


async def test_many_dependents_released_exactly_once_under_concurrent_completion(
    redis: PoolRedis, redis_url: str
) -> None:
    deps = [await redis.enqueue_job("record", f"d{i}") for i in range(20)]
    final = await redis.enqueue_job("record", "final", _depends_on=[d for d in deps if d])
    assert final is not None
    async with (
        running_worker(redis_url, functions=FUNCTIONS, max_jobs=20),
        running_worker(redis_url, functions=FUNCTIONS, max_jobs=20),
    ):
        assert await final.result(timeout=10) == "final"
    names = await order(redis)
    assert names.count("final") == 1 and names[-1] == "final" and len(names) == 21


# --- callbacks -----------------------------------------------------------------------------------------------------


async def test_on_success_and_on_failure_callbacks(redis: PoolRedis, redis_url: str) -> None:
    ok = await redis.enqueue_job("record", "ok", _job_id="ok", _on_success="on_done", _on_failure=on_done)
    bad = await redis.enqueue_job("fail", "bad", _job_id="bad", _on_success="on_done", _on_failure="on_done")
    assert ok and bad
    await run_burst(redis_url, functions=FUNCTIONS)
    callbacks = sorted(x.decode() for x in await redis.lrange("callbacks", 0, -1))
    assert callbacks == ["bad=ValueError: bad broke", "ok=ok"]


# --- bulk enqueue ----------------------------------------------------------------------------------------------------


async def test_enqueue_many_in_one_round_trip_honours_unique_ids(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("record", "taken", _job_id="dup")
    specs = [redis.prepare("record", f"j{i}", _job_id=f"bulk-{i}") for i in range(10_000)]
    specs.append(redis.prepare("record", "again", _job_id="dup"))
    started = time.perf_counter()
    jobs = await redis.enqueue_many(specs)
    elapsed = time.perf_counter() - started
    print(f"enqueue_many: 10,001 jobs in {elapsed:.3f}s")
    assert sum(j is not None for j in jobs) == 10_000 and jobs[-1] is None
    assert (await redis.queue_info())["ready"] == 10_001


async def test_prepare_reports_bad_input_in_the_caller(redis: PoolRedis) -> None:
    with pytest.raises(ValueError, match="_expires"):
        redis.prepare("record", "x", _expires=-1)


# --- inspection ---------------------------------------------------------------------------------------------------


async def test_queue_info_statuses_empty_and_delete(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("record", "a", _job_id="ready-1")
    await redis.enqueue_job("record", "b", _job_id="later-1", _defer_by=60)
    await redis.enqueue_job("fail", "c", _job_id="failed-1")
    await run_burst(redis_url, functions=FUNCTIONS, max_burst_jobs=2, max_jobs=1)
    info = await redis.queue_info()
    assert info == {"ready": 0, "running": 0, "deferred": 1, "parked": 0, "failed": 1}
    statuses = dict(await redis.job_statuses())
    expected = {"later-1": JobStatus.deferred, "ready-1": JobStatus.complete, "failed-1": JobStatus.complete}
    assert statuses == expected
    await redis.enqueue_job("record", "d", _job_id="ready-2")
    assert await redis.empty_queue() == 2
    assert (await redis.queue_info())["deferred"] == 0
    assert await redis.delete_queue() > 0
    assert await redis.queue_info() == {"ready": 0, "running": 0, "deferred": 0, "parked": 0, "failed": 0}


# --- the failed-job registry ---------------------------------------------------------------------------------------


async def test_failed_registry_keeps_exception_and_traceback_and_requeues(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("fail", "x", _job_id="dead")
    await redis.enqueue_job("record", "fine", _job_id="alive")
    await run_burst(redis_url, functions=FUNCTIONS, keep_result=0)
    failed = await redis.failed_jobs()
    assert [f.job_id for f in failed] == ["dead"]
    record_ = failed[0]
    assert record_.function == "fail" and record_.args == ("x",)
    assert isinstance(record_.result, ValueError)
    assert record_.traceback and "x broke" in record_.traceback and "in fail" in record_.traceback
    assert await redis.requeue_failed("dead") is True
    assert await redis.failed_jobs() == []
    worker = await run_burst(redis_url, functions=[record, func(record, name="fail")])  # "fixed" code
    assert worker.jobs_complete == 1
    assert await redis.purge_failed() == 0


async def test_aborted_jobs_are_not_dead_letters(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("record", "x")
    assert job is not None and await job.abort(timeout=1)
    assert await redis.failed_jobs() == []


async def test_ttl_is_an_alias_of_expires(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("record", "x", _ttl=0.05)
    assert job is not None
    await asyncio.sleep(0.1)  # let the TTL pass (nothing to wait on: the job must simply not run)
    await run_burst(redis_url, functions=FUNCTIONS)
    with pytest.raises(JobExecutionFailed, match="job expired"):
        await job.result(timeout=1)
    assert await order(redis) == []  # it never ran


def test_queue_and_failed_commands(tmp_path: Any, redis_url: str) -> None:
    import subprocess
    import sys

    from tests.supervisor_utils import pool_env

    (tmp_path / "qapp.py").write_text(
        "async def boom(ctx, x):\n    raise ValueError(f'boom {x}')\n\nclass WorkerSettings:\n    functions = [boom]\n"
    )

    def pool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pool", *args, "--redis", redis_url],
            cwd=tmp_path,
            env=pool_env(),
            stdin=subprocess.DEVNULL,  # not a terminal: removal needs --yes rather than asking
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    async def enqueue() -> None:
        redis = await create_pool(RedisSettings.from_dsn(redis_url))
        await redis.enqueue_job("boom", 1, _job_id="b1")
        await redis.aclose()

    asyncio.run(enqueue())
    assert "ready=1" in pool("queue", "info", "qapp.WorkerSettings").stdout
    assert pool("worker", "--burst", "qapp.WorkerSettings").returncode == 0
    listed = pool("failed", "list", "qapp.WorkerSettings")
    assert listed.returncode == 0 and "b1\tboom\tValueError: boom 1" in listed.stdout
    shown = pool("failed", "show", "qapp.WorkerSettings", "b1").stdout
    assert "Traceback" in shown and "boom 1" in shown
    assert pool("failed", "show", "qapp.WorkerSettings", "nope").returncode == 1
    assert pool("failed", "requeue", "qapp.WorkerSettings", "b1").stdout.strip() == "requeued 1 job"
    assert "ready=1" in pool("queue", "info", "qapp.WorkerSettings").stdout
    assert pool("queue", "delete", "qapp.WorkerSettings").returncode == 2  # needs --yes
    assert pool("queue", "delete", "qapp.WorkerSettings", "--yes").returncode == 0
    assert "ready=0" in pool("queue", "info", "qapp.WorkerSettings").stdout


async def test_inline_pool_runs_jobs_before_enqueue_returns(redis_url: str) -> None:
    from pool.testing import create_inline_pool

    async def parent(ctx: dict[str, Any]) -> str:
        await ctx["redis"].enqueue_job("record", "child")
        return "parent done"

    inline = await create_inline_pool(
        RedisSettings.from_dsn(redis_url), functions=[*FUNCTIONS, func(parent, name="parent")]
    )
    try:
        job = await inline.enqueue_job("parent")
        assert job is not None and await job.status() == JobStatus.complete
        assert await job.result(timeout=0.1) == "parent done"
        assert await order(inline) == ["child"]  # enqueued by the job, run in the same drain
        failing = await inline.enqueue_job("fail", "x")
        assert failing is not None
        with pytest.raises(ValueError, match="x broke"):
            await failing.result(timeout=0.1)
    finally:
        await inline.aclose()
