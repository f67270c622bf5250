"""arq 0.26.3's documentation examples (tests/arq_examples/, only their imports changed) run on pool.

Each example's ``main()`` enqueues as written, against the test's own redis-server: its ``RedisSettings()`` (arq's
default, localhost) is pointed there, the only thing changed while it runs. Its ``WorkerSettings`` then run in a
worker, in burst mode where the example allows. docs/arq.md lists the examples left out, and why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from types import ModuleType

import pytest

from pool import Job, PoolRedis, RedisSettings, create_pool
from pool.jobs import JobAborted, JobStatus
from pool.worker import Worker, create_worker, get_kwargs
from tests.arq_examples import (
    cron,
    custom_serialization_msgpack,
    deferred,
    job_abort,
    job_ids,
    sync_job,
)
from tests.helpers import wait_for
from tests.worker_utils import running_worker


@pytest.fixture
def point_at(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[ModuleType], None]:
    """Make an example's ``RedisSettings()`` the test's redis-server."""

    def point(example: ModuleType) -> None:
        monkeypatch.setattr(example, "RedisSettings", lambda: RedisSettings.from_dsn(redis_url))

    return point


async def burst(example: ModuleType, redis_url: str) -> Worker:
    worker = create_worker(
        example.WorkerSettings, redis_settings=RedisSettings.from_dsn(redis_url), burst=True, handle_signals=False
    )
    await asyncio.wait_for(worker.main(), 30)
    return worker


async def test_job_ids_example(
    redis_url: str, point_at: Callable[[ModuleType], None], capsys: pytest.CaptureFixture[str]
) -> None:
    point_at(job_ids)
    await job_ids.main()
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0:2] for line in printed[:2]] == [["<pool", "job"]] * 2
    assert printed[2:] == ["<pool job foobar>", "None", "<pool job my_job>"]

    worker = await burst(job_ids, redis_url)
    assert (worker.jobs_complete, worker.jobs_failed) == (4, 0)
    ran = capsys.readouterr().out
    assert "running the task with id foobar" in ran and "running the task with id my_job" in ran


async def test_custom_serialization_msgpack_example(redis_url: str, point_at: Callable[[ModuleType], None]) -> None:
    point_at(custom_serialization_msgpack)
    await custom_serialization_msgpack.main()
    worker = await burst(custom_serialization_msgpack, redis_url)
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    reader = await create_pool(
        RedisSettings.from_dsn(redis_url), job_deserializer=custom_serialization_msgpack.WorkerSettings.job_deserializer
    )
    try:
        (result,) = await reader.all_job_results()
        assert (result.function, result.success, result.result) == ("the_task", True, 42)
    finally:
        await reader.aclose()


async def test_deferred_example(redis: PoolRedis, point_at: Callable[[ModuleType], None]) -> None:
    """Three jobs, deferred by 10 s, by 1 minute and until 2032-01-28 (local time); none runs now. (No worker: a
    burst run waits for deferred jobs, in arq as in pool.)"""
    point_at(deferred)
    before = time.time() - 0.01  # scores are whole milliseconds
    await deferred.main()
    after = time.time()
    jobs = await redis.queued_jobs()
    assert [job.function for job in jobs] == ["the_task"] * 3
    scores = [job.score / 1000 for job in jobs if job.score is not None]
    assert before + 10 <= scores[0] <= after + 10 and before + 60 <= scores[1] <= after + 60
    assert scores[2] == datetime(2032, 1, 28).timestamp()
    assert {await Job(job.job_id, redis).status() for job in jobs if job.job_id} == {JobStatus.deferred}


async def test_job_abort_example(
    redis: PoolRedis, redis_url: str, point_at: Callable[[ModuleType], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """The job starts (it sleeps 10 s); main() aborts it a second later; the worker cancels it."""
    point_at(job_abort)
    async with running_worker(redis_url, **get_kwargs(job_abort.WorkerSettings)) as worker:
        await job_abort.main()
        await wait_for(lambda: worker.jobs_failed == 1, timeout=10, message="the job aborted")
    (result,) = await redis.all_job_results()
    assert result.function == "do_stuff" and isinstance(result.result, JobAborted)
    assert "doing stuff..." in capsys.readouterr().out


async def test_sync_job_example(redis: PoolRedis, redis_url: str) -> None:
    """No main(): the test enqueues ``the_task``, which runs ``time.sleep`` in the ProcessPoolExecutor that
    ``on_startup`` puts in ctx."""
    job = await redis.enqueue_job("the_task", 0.05)
    assert job is not None
    worker = await burst(sync_job, redis_url)
    try:
        assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
        assert await job.result(timeout=5) is None
    finally:
        worker.ctx["pool"].shutdown()


async def test_cron_example(redis_url: str) -> None:
    """Only WorkerSettings with cron(run_regularly, hour={9, 12, 18}, minute=12): a burst run loads and ends."""
    worker = await burst(cron, redis_url)
    assert [job.name for job in worker.cron_jobs] == ["cron:run_regularly"] and worker.jobs_failed == 0
