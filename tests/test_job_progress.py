"""Job progress and metadata: ``ctx['job'].update(...)`` from a running job, read by ``Job.progress()`` and
``Job.info()`` while it runs and from its result after, on plain and partitioned queues."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from pool import Job, PoolRedis, RedisSettings, Worker, create_pool
from pool.storage.codecs import progress_of
from pool.storage.progress import MAX_PROGRESS_BYTES, ProgressTooLarge
from pool.storage.queue import RedisQueue
from pool.worker.progress import RunningJob
from tests.helpers import wait_for
from tests.redis_cluster import ClusterSet
from tests.supervisor_utils import run_pool
from tests.worker_utils import running_worker


async def report_then_wait(ctx: dict[str, Any], steps: int) -> str:
    """Reports half way, waits for the test's go, then reports done."""
    job = ctx["job"]
    await job.update(progress=0.5, meta={"step": "half", "of": steps})
    await ctx["redis"].blpop(f"go:{ctx['job_id']}", timeout=20)
    await job.update(progress=1.0)  # meta kept from the last update
    return "done"


async def oversized(ctx: dict[str, Any]) -> str:
    try:
        await ctx["job"].update(meta={"blob": "x" * MAX_PROGRESS_BYTES})
    except ProgressTooLarge as exc:
        return str(exc)
    return "written"


async def not_a_number(ctx: dict[str, Any]) -> str:
    try:
        await ctx["job"].update(progress=float("nan"))
    except ValueError as exc:
        return str(exc)
    return "written"


FUNCTIONS = [report_then_wait, oversized, not_a_number]


async def reported(job: Job) -> bool:
    progress = await job.progress()
    return progress is not None and progress.progress == 0.5


async def test_a_running_jobs_progress_is_read_while_it_runs_and_kept_with_its_result(
    redis: PoolRedis, redis_url: str
) -> None:
    job = await redis.enqueue_job("report_then_wait", 3)
    assert job is not None
    assert await job.progress() is None
    async with running_worker(redis_url, functions=FUNCTIONS, keep_result=60):
        await wait_for(lambda: reported(job), timeout=10, message="the job's first report")
        progress = await job.progress()
        assert progress is not None and progress.meta == {"step": "half", "of": 3}
        info = await job.info()
        assert info is not None and progress_of(info) == progress
        await redis.rpush(f"go:{job.job_id}", 1)
        assert await job.result(timeout=10) == "done"
    final = await job.progress()
    assert final is not None and (final.progress, final.meta) == (1.0, {"step": "half", "of": 3})
    result = await job.result_info()
    assert result is not None and progress_of(result) == final
    assert not await redis.exists(f"pool:{{default}}:job:{job.job_id}")  # no hash left behind by a late write


async def test_progress_over_the_size_limit_is_refused_in_the_job(redis: PoolRedis, redis_url: str) -> None:
    big = await redis.enqueue_job("oversized")
    nan = await redis.enqueue_job("not_a_number")
    assert big is not None and nan is not None
    async with running_worker(redis_url, functions=FUNCTIONS, keep_result=60):
        message = await big.result(timeout=10)
        assert f"over the limit of {MAX_PROGRESS_BYTES} bytes" in message
        assert "must be a finite number" in await nan.result(timeout=10)
    assert await big.progress() is None


async def test_progress_works_on_every_partition_of_a_partitioned_queue(redis_url: str) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, queue_partitions=4)
    try:
        jobs = [await pool.enqueue_job("report_then_wait", n) for n in range(8)]
        assert all(jobs)
        assert len({job._queue.partition for job in jobs if job}) > 1  # spread over partitions
        async with running_worker(redis_url, functions=FUNCTIONS, queue_partitions=4, max_jobs=20, keep_result=60):
            for job in jobs:
                assert job is not None
                await wait_for(lambda job=job: reported(job), timeout=10, message=f"{job.job_id} reported")
            for job in jobs:
                assert job is not None
                await pool.rpush(f"go:{job.job_id}", 1)
            for job in jobs:
                assert job is not None
                assert await job.result(timeout=10) == "done"
                final = await job.progress()
                assert final is not None and final.progress == 1.0
    finally:
        await pool.aclose()


class CountingQueue(RedisQueue):
    """A real queue that counts its progress writes."""

    writes: list[bytes]

    async def set_progress(self, job_id: str, mark: str, record: bytes) -> bool:
        self.writes.append(record)
        await asyncio.sleep(0.05)  # a slow round trip: updates pile up meanwhile
        return await super().set_progress(job_id, mark, record)


async def test_frequent_updates_are_coalesced_and_the_last_value_wins(redis: PoolRedis) -> None:
    queue = CountingQueue(redis, "default")
    queue.writes = []
    await redis.hset(queue.keys.job("j"), mapping={"s": "r", "e": "me 1-0"})
    job = RunningJob("j", queue, "me 1-0", None)
    await asyncio.gather(*(job.update(progress=i / 100) for i in range(1, 101)))
    assert len(queue.writes) <= 2, len(queue.writes)  # the first, then the last of those made meanwhile
    progress = await Job("j", redis).progress()
    assert progress is not None and progress.progress == 1.0


async def test_a_run_that_lost_its_job_writes_nothing(redis: PoolRedis) -> None:
    queue = RedisQueue(redis, "default")
    await redis.hset(queue.keys.job("j"), mapping={"s": "r", "e": "other 2-0"})  # taken over by another worker
    await RunningJob("j", queue, "me 1-0", None).update(progress=0.3)
    await RunningJob("gone", queue, "me 1-1", None).update(progress=0.3)  # finished: its hash deleted
    assert await redis.hget(queue.keys.job("j"), "pg") is None
    assert not await redis.exists(queue.keys.job("gone"))


@pytest.mark.parametrize("meta", [{"a": 1}, None])
async def test_update_keeps_what_it_is_not_given(redis: PoolRedis, meta: Any) -> None:
    job = RunningJob("j", None, "", None)
    await job.update(progress=0.2, meta={"a": 1})
    await job.update(meta=meta)
    assert job.progress is not None
    assert (job.progress.progress, job.progress.meta) == (0.2, meta if meta is not None else {"a": 1})


async def test_pool_job_and_queue_list_show_a_running_jobs_progress(
    redis: PoolRedis, redis_url: str, tmp_path: Path
) -> None:
    job = await redis.enqueue_job("report_then_wait", 3, _job_id="reporting")
    assert job is not None
    where = ["--queue", "default", "--redis", redis_url]
    async with running_worker(redis_url, functions=FUNCTIONS, keep_result=60):
        await wait_for(lambda: reported(job), timeout=10, message="the job's first report")
        shown = await asyncio.to_thread(run_pool, "job", *where, "reporting", cwd=tmp_path)
        listed = await asyncio.to_thread(run_pool, "queue", "list", *where, cwd=tmp_path)
        await redis.rpush("go:reporting", 1)
        await job.result(timeout=10)
    assert shown.returncode == 0, shown.stderr
    first, progress, meta = shown.stdout.splitlines()
    assert first.startswith("job reporting: status=in_progress function=report_then_wait try=1 enqueued=")
    assert re.fullmatch(r"progress: 50% \(reported \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)", progress), progress
    assert meta == "meta: step='half' of=3"
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].endswith("in_progress 50%"), listed.stdout
    finished = await asyncio.to_thread(run_pool, "job", *where, "reporting", cwd=tmp_path)
    assert finished.stdout.splitlines()[:2][1].startswith("progress: 100% "), finished.stdout
    assert "status=complete" in finished.stdout
    missing = await asyncio.to_thread(run_pool, "job", *where, "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no job 'nope' in queue 'default'" in missing.stderr


async def report_twice(ctx: dict[str, Any], n: int) -> int:
    await ctx["job"].update(progress=0.5, meta={"n": n})
    await ctx["job"].update(progress=1.0)
    return n


async def test_progress_on_a_partitioned_queue_of_a_redis_cluster(shared_redis_cluster: ClusterSet) -> None:
    """Each partition's jobs on their own master: the progress script runs on the node of the job's slot."""
    settings = shared_redis_cluster.settings()
    pool = await create_pool(settings, queue_partitions=6)
    try:
        jobs = [await pool.enqueue_job("report_twice", n, _queue_name="progress") for n in range(12)]
        worker = Worker(
            functions=[report_twice],
            redis_settings=settings,
            queue_name="progress",
            queue_partitions=6,
            handle_signals=False,
            burst=True,
            keep_result=60,
        )
        await worker.async_run()
        for n, job in enumerate(jobs):
            assert job is not None and await job.result(timeout=5) == n
            final = await job.progress()
            assert final is not None and (final.progress, final.meta) == (1.0, {"n": n})
    finally:
        await pool.aclose()
