"""Typed tasks (``pool.task``): enqueueing through the task with its own arguments, checked by mypy, and the
task registered by the worker as it is listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pool import Ctx, JobExists, JobStatus, PoolRedis, task
from pool.worker.checks import resolve_functions
from tests.worker_utils import running_worker

CASES = Path(__file__).parent / "typing_cases" / "typed_tasks.py"


@task(name="tasks.add", max_tries=2)
async def add(ctx: Ctx, a: int, b: int = 0) -> int:
    return a + b


@task
async def tag(ctx: Ctx, text: str, *, suffix: str = "!") -> str:
    return f"{text}{suffix}:{ctx['job_try']}"


def test_mypy_flags_exactly_the_wrong_calls() -> None:
    """Each line of the cases file that ends with ``# error`` is flagged, and no other line."""
    expected = {n for n, line in enumerate(CASES.read_text().splitlines(), 1) if line.endswith("# error")}
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--hide-error-context", str(CASES)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    flagged = {
        int(line.split(":")[1]) for line in run.stdout.splitlines() if ": error:" in line and line.startswith("tests")
    }
    assert expected, "the cases file marks no line"
    assert flagged == expected, run.stdout


def test_a_task_is_registered_with_its_settings() -> None:
    (function,) = resolve_functions([add])
    assert function.name == "tasks.add"
    assert function.max_tries == 2
    assert function is add.function


async def test_a_task_enqueues_and_its_job_returns_the_result(redis: PoolRedis, redis_url: str) -> None:
    async with running_worker(redis_url, functions=[add, tag]):
        job = await add.enqueue(redis, 2, b=3)
        assert await job.result(timeout=5) == 5
        tagged = await tag.enqueue(redis, "hi", suffix="?")
        assert await tagged.result(timeout=5) == "hi?:1"


async def test_a_task_named_by_a_producer_reaches_the_worker_function(redis: PoolRedis, redis_url: str) -> None:
    by_name = task("tasks.add", returns=int)  # what a producer without the worker's code writes
    async with running_worker(redis_url, functions=[add]):
        job = await by_name.enqueue(redis, 40, 2)
        assert await job.result(timeout=5) == 42


async def test_using_passes_job_options(redis: PoolRedis, redis_url: str) -> None:
    job = await add.using(redis, job_id="sum:1", defer_by=60, description="a sum").enqueue(1, 1)
    assert job.job_id == "sum:1"
    assert await job.status() == JobStatus.deferred
    with pytest.raises(JobExists, match="sum:1"):
        await add.using(redis, job_id="sum:1").enqueue(1, 1)
    queued = await add.using(redis, queue_name="other").enqueue(3)
    assert (await redis.queue_info("other"))["ready"] == 1
    await task("tasks.add", returns=int, queue_name="other").enqueue(redis, 4)  # the task's default queue
    assert (await redis.queue_info("other"))["ready"] == 2
    async with running_worker(redis_url, functions=[add], queue_name="other"):
        assert await queued.result(timeout=5) == 3


async def test_job_options_among_the_arguments_are_refused(redis: PoolRedis) -> None:
    with pytest.raises(TypeError, match="go to using"):
        await add.enqueue(redis, 1, _defer_by=5)  # type: ignore[call-arg]
    assert (await redis.queue_info())["ready"] == 0


async def test_a_task_can_be_called_directly() -> None:
    assert await add({}, 1, 2) == 3


def test_a_reference_by_name_needs_its_result_type() -> None:
    with pytest.raises(TypeError, match="returns="):
        task("tasks.add")  # type: ignore[call-overload]
