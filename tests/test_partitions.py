"""Partitioned queues (pool/storage/partitions.py): one queue over N hash tags, on a single Redis and on a
cluster. A job's partition follows from its id; producers and workers must agree on N; everything a user does
with a job or a queue works the same across partitions."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from pool import Job, Worker, create_pool, cron, func
from pool.client.jobs import JobStatus
from pool.redis.settings import RedisSettings
from pool.storage.keys import QueueKeys
from pool.storage.partitions import check_limits, cron_partition, limit_share, partition_key, partition_of, tagged
from pool.storage.queue import PartitionMismatch
from tests.failover_load import read_runs
from tests.helpers import wait_for_sync
from tests.redis_cluster import ClusterSet
from tests.supervisor_utils import Supervisor, run_pool, supervisors

PARTITIONS = 4


async def double(ctx: dict[str, Any], n: int) -> int:
    return n * 2


async def fail(ctx: dict[str, Any]) -> None:
    raise ValueError("meant to fail")


async def after(ctx: dict[str, Any], job_id: str, result: Any) -> str:
    return f"after {job_id}: {result}"


ticks: list[tuple[str, datetime]] = []


async def tick(ctx: dict[str, Any]) -> None:
    ticks.append((ctx["job_id"], datetime.now()))


LIMIT = 5  # max_concurrency of ``limited`` below: over 3 partitions, shares of 2, 2 and 1


async def limited(ctx: dict[str, Any], run: str) -> None:
    """Counts the jobs of this function running at once (INCR on start, DECR at the end) and logs each count."""
    now = await ctx["redis"].incr(f"{run}:running")
    await ctx["redis"].rpush(f"{run}:seen", now)
    await asyncio.sleep(0.03)
    await ctx["redis"].decr(f"{run}:running")


async def run_limited_jobs(settings: RedisSettings, run: str, jobs: int = 60) -> list[int]:
    """``jobs`` jobs of ``limited`` on a queue of 3 partitions, run by two workers of 20 slots each; the
    concurrency counts the jobs saw."""
    pool = await create_pool(settings, queue_partitions=3)
    try:
        enqueued = [await pool.enqueue_job("limited", run, _queue_name=run) for _ in range(jobs)]
        assert {partition_of(job.job_id, 3) for job in enqueued if job is not None} == {0, 1, 2}
        workers = [
            Worker(
                functions=[func(limited, max_concurrency=LIMIT)],
                redis_settings=settings,
                queue_name=run,
                queue_partitions=3,
                handle_signals=False,
                burst=True,
                max_jobs=20,
                poll_delay=0.05,
            )
            for _ in range(2)
        ]
        await asyncio.gather(*(w.async_run() for w in workers))
        assert sum(w.jobs_complete for w in workers) == jobs
        return [int(n) for n in await pool.lrange(f"{run}:seen", 0, -1)]
    finally:
        await pool.aclose()


def test_max_concurrency_is_split_over_the_partitions_in_shares_that_add_up_to_it() -> None:
    assert [limit_share(5, 3, p) for p in range(3)] == [2, 2, 1]
    assert [limit_share(6, 3, p) for p in range(3)] == [2, 2, 2]
    assert limit_share(4, 1, 0) == 4
    for limit, partitions in [(7, 4), (16, 16), (100, 7)]:
        assert sum(limit_share(limit, partitions, p) for p in range(partitions)) == limit
    with pytest.raises(ValueError, match="max_concurrency=2 is below queue_partitions=3"):
        check_limits({"f": 2}, 3)


async def test_max_concurrency_holds_across_the_partitions_of_a_queue(redis_url: str) -> None:
    seen = await run_limited_jobs(RedisSettings.from_dsn(redis_url), "limits")
    assert len(seen) == 60
    assert max(seen) <= LIMIT, seen  # per partition, it would have been up to 3 x LIMIT
    assert max(seen) > 2  # (several partitions' jobs did run at once)


async def test_max_concurrency_holds_across_the_partitions_of_a_queue_on_a_cluster(
    shared_redis_cluster: ClusterSet,
) -> None:
    seen = await run_limited_jobs(shared_redis_cluster.settings(), "limits-cluster")
    assert len(seen) == 60
    assert max(seen) <= LIMIT, seen
    assert max(seen) > 2


def test_a_worker_refuses_a_limit_below_the_partition_count(redis_url: str) -> None:
    with pytest.raises(ValueError, match="max_concurrency=2 is below queue_partitions=3"):
        Worker(
            functions=[func(limited, max_concurrency=2)],
            redis_settings=RedisSettings.from_dsn(redis_url),
            queue_partitions=3,
            handle_signals=False,
        )


def worker(settings: RedisSettings, **kwargs: Any) -> Worker:
    kwargs.setdefault("burst", True)
    kwargs.setdefault("queue_partitions", PARTITIONS)
    return Worker(functions=[double, fail, after], redis_settings=settings, handle_signals=False, **kwargs)


def test_a_job_id_picks_its_partition_by_its_tag_or_whole_id() -> None:
    assert partition_of("anything", 1) == 0
    assert {partition_of(f"job-{n}", PARTITIONS) for n in range(200)} == set(range(PARTITIONS))
    assert partition_key("{batch-7}step-1") == "batch-7"
    assert partition_of("{batch-7}step-1", 8) == partition_of("{batch-7}step-2", 8) == partition_of("batch-7", 8)
    assert partition_key("{}x") == "{}x"  # an empty tag is no tag, as in Redis Cluster
    assert partition_of(tagged("x:on_success", partition_key("x")), 8) == partition_of("x", 8)
    assert QueueKeys("default", 0).prefix == "pool:{default}:"
    assert QueueKeys("default", 3).prefix == "pool:{default#3}:"
    with pytest.raises(ValueError, match="partition's hash tag"):
        QueueKeys("default#3")


async def test_jobs_spread_over_partitions_and_each_job_is_found_by_its_id(redis_url: str) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, queue_partitions=PARTITIONS)
    try:
        jobs = [await pool.enqueue_job("double", n, _job_id=f"d{n}") for n in range(40)]
        bulk = await pool.enqueue_many(pool.prepare("double", n, _job_id=f"b{n}") for n in range(40))
        assert [job.job_id for job in bulk if job is not None] == [f"b{n}" for n in range(40)]
        assert await pool.enqueue_job("double", 0, _job_id="d3") is None  # unique across partitions: same one
        failing = await pool.enqueue_job("fail", _job_id="f1")
        later = await pool.enqueue_job("double", 1, _job_id="later", _defer_by=60)
        assert failing is not None and later is not None
        streams = [await pool.xlen(QueueKeys("default", p).stream) for p in range(PARTITIONS)]
        assert all(count > 0 for count in streams) and sum(streams) == 81
        assert (await pool.queue_info())["ready"] == 81
        assert await later.abort(timeout=0) is True
        await worker(settings).async_run()
        for n, job in enumerate(jobs):
            assert job is not None and await job.result(timeout=5) == n * 2
        assert await Job("b7", pool).result(timeout=5) == 14
        assert await Job("f1", pool).status() == JobStatus.complete
        assert [record.job_id for record in await pool.failed_jobs()] == ["f1"]
        assert len([s for _, s in await pool.job_statuses() if s == JobStatus.complete]) >= 81
        assert (await pool.queue_info())["ready"] == 0
    finally:
        await pool.aclose()


async def test_results_of_several_partitions_are_written_in_one_round_trip_each_job_recorded_once(
    redis_url: str,
) -> None:
    """The worker's COMPLETE calls of one batch, one per partition with results, go to the client together (one
    write on a single Redis) rather than one round trip after another."""
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, queue_partitions=PARTITIONS)
    try:
        await pool.enqueue_many(pool.prepare("double", n, _job_id=f"r{n}") for n in range(200))
        runner = Worker(
            functions=[double], redis_settings=settings, burst=True, handle_signals=False, queue_partitions=PARTITIONS
        )
        await runner.startup()
        complete_sha = runner._queues[0].scripts.complete.sha
        calls_per_write: list[int] = []
        real_run_script = runner._pool.run_script

        async def counted(script: Any, calls: Any, **kwargs: Any) -> Any:
            calls = list(calls)
            if script.sha == complete_sha:
                calls_per_write.append(len(calls))
            return await real_run_script(script, calls, **kwargs)

        runner._pool.run_script = counted  # type: ignore[method-assign]
        try:
            await asyncio.wait_for(runner.serve(), 30)
        finally:
            await runner.close()
        assert max(calls_per_write) > 1, f"each partition's COMPLETE went on its own: {calls_per_write}"
        for n in range(200):
            assert await Job(f"r{n}", pool).result(timeout=5) == n * 2
        assert (await pool.queue_info())["ready"] == 0
    finally:
        await pool.aclose()


async def test_producers_and_workers_must_agree_on_the_partition_count(redis_url: str) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, queue_partitions=PARTITIONS)
    plain = await create_pool(settings)
    try:
        await pool.enqueue_job("double", 1)
        with pytest.raises(PartitionMismatch, match="has 4 partitions in Redis, but queue_partitions says 1"):
            await plain.enqueue_job("double", 1)
        with pytest.raises(PartitionMismatch, match="says 2 here"):
            await worker(settings, queue_partitions=2).async_run()
    finally:
        await pool.aclose()
        await plain.aclose()


async def test_dependencies_and_callbacks_stay_in_one_partition(redis_url: str) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, queue_partitions=PARTITIONS)
    try:
        first = await pool.enqueue_job("double", 5, _job_id="first", _on_success="after")
        second = await pool.enqueue_job("double", 6, _depends_on=first)
        assert first is not None and second is not None
        assert partition_of(second.job_id, PARTITIONS) == partition_of("first", PARTITIONS)
        other = next(f"x{n}" for n in range(100) if partition_of(f"x{n}", PARTITIONS) != partition_of("first", 4))
        with pytest.raises(ValueError, match="fall in different partitions"):
            await pool.enqueue_job("double", 7, _job_id=other, _depends_on=first)
        await worker(settings).async_run()
        assert await second.result(timeout=5) == 12
        callback = Job(tagged("first:on_success", "first"), pool)
        assert await callback.result(timeout=5) == "after first: 10"
    finally:
        await pool.aclose()


async def test_cron_ticks_of_a_partitioned_queue_run_once_each(redis_url: str) -> None:
    ticks.clear()
    settings = RedisSettings.from_dsn(redis_url)
    cron_worker = Worker(
        cron_jobs=[cron(tick, second=set(range(60)))],
        redis_settings=settings,
        queue_partitions=PARTITIONS,
        handle_signals=False,
    )
    task = asyncio.create_task(cron_worker.async_run())
    try:
        for _ in range(100):
            if len(ticks) >= 3:
                break
            await asyncio.sleep(0.05)  # (a wait on a condition, bounded: 5 s)
        ids = [job_id for job_id, _ in ticks]
        assert len(ids) >= 3 and len(ids) == len(set(ids))
        assert all(partition_of(job_id, PARTITIONS) == cron_partition(PARTITIONS) for job_id in ids)
    finally:
        cron_worker.request_stop()
        await asyncio.wait_for(task, 20)


async def test_partitions_of_one_queue_spread_over_the_masters_of_a_cluster(shared_redis_cluster: ClusterSet) -> None:
    settings = shared_redis_cluster.settings()
    name = "spread"
    masters = {shared_redis_cluster.node_for_key(QueueKeys(name, p).stream).port for p in range(6)}
    assert len(masters) >= 2
    pool = await create_pool(settings, queue_partitions=6)
    try:
        jobs = [await pool.enqueue_job("double", n, _queue_name=name) for n in range(60)]
        cluster_worker = Worker(
            functions=[double],
            redis_settings=settings,
            queue_name=name,
            queue_partitions=6,
            handle_signals=False,
            burst=True,
        )
        await cluster_worker.async_run()
        assert [await job.result(timeout=5) for job in jobs if job is not None] == [n * 2 for n in range(60)]
        assert (await pool.queue_info(name))["ready"] == 0
    finally:
        await pool.aclose()


def test_pool_start_serves_every_partition_and_hands_back_a_killed_workers_jobs(tmp_path: Path, redis_url: str) -> None:
    """``pool start`` with a partitioned queue: its children read all partitions, the parent's hand-back and
    queue depth cover them all, and cron ticks (led by the parent) run once each."""
    settings = "tests.apps.failover.PartitionedSettings"
    with supervisors() as started:
        supervisor = Supervisor(tmp_path, "s", redis_url, settings, "--procs", "2", "--health-interval", "0.3")
        started.append(supervisor)
        supervisor.wait_ready(2)
        client = redis_lib.Redis.from_url(redis_url)
        try:
            assert client.get(QueueKeys("default").partition_count) == b"3"
        finally:
            client.close()

        async def enqueue() -> list[str]:
            pool = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=3)
            try:
                jobs = [await pool.enqueue_job("record_run", n) for n in range(60)]
                return [job.job_id for job in jobs if job is not None]
            finally:
                await pool.aclose()

        ids = asyncio.run(enqueue())
        assert {partition_of(job_id, 3) for job_id in ids} == {0, 1, 2}
        wait_for_sync(lambda: set(ids) <= {j for j, _ in read_runs(tmp_path)}, 30, message="every job ran")
        wait_for_sync(lambda: len([j for j, _ in read_runs(tmp_path) if "tick" in j]) >= 2, 15, message="ticks")
        ticks_seen = [j for j, _ in read_runs(tmp_path) if "tick" in j]
        assert len(ticks_seen) == len(set(ticks_seen))
        assert run_pool("queue", "info", "--redis", redis_url, settings, cwd=tmp_path).returncode == 0


async def test_the_sync_rq_queue_refuses_a_partitioned_queue(redis_url: str) -> None:
    from pool.rq import Queue

    pool = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=PARTITIONS)
    try:
        await pool.enqueue_job("double", 1)
    finally:
        await pool.aclose()

    def enqueue_sync() -> None:
        Queue("default", connection=redis_lib.Redis.from_url(redis_url)).enqueue("double", 2)

    with pytest.raises(PartitionMismatch, match="has 4 partitions in Redis, but queue_partitions says 1"):
        await asyncio.to_thread(enqueue_sync)
