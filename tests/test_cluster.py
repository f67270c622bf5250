"""pool on a Redis Cluster (tests/redis_cluster.py: three masters): the client, ``pool worker`` and ``pool start``
with queues whose slots live on different masters, and a plain URL that points at a cluster node."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from pool import Job, Worker, create_pool
from pool.client.connections import PoolRedisCluster
from pool.client.jobs import JobStatus
from pool.redis.settings import RedisSettings
from pool.storage.keys import QueueKeys
from pool.storage.sync import SyncQueue
from tests.failover_load import read_runs
from tests.helpers import wait_for_sync
from tests.redis_cluster import ClusterSet
from tests.supervisor_utils import Supervisor, run_pool, supervisors
from tests.worker_utils import WorkerProcess


def queues_on_every_master(cluster: ClusterSet, count: int = 3) -> list[str]:
    """Queue names whose slots are served by different masters (one per master)."""
    chosen: dict[int, str] = {}
    for number in range(1000):
        name = f"q{number}"
        port = cluster.node_for_key(QueueKeys(name).stream).port
        chosen.setdefault(port, name)
        if len(chosen) == count:
            break
    return list(chosen.values())


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fail(ctx: dict[str, Any]) -> None:
    raise ValueError("meant to fail")


async def test_enqueue_run_inspect_and_abort_on_queues_of_every_master(shared_redis_cluster: ClusterSet) -> None:
    settings = shared_redis_cluster.settings()
    pool = await create_pool(settings)
    assert isinstance(pool, PoolRedisCluster)
    names = queues_on_every_master(shared_redis_cluster)
    workers = [
        Worker(functions=[add, fail], redis_settings=settings, queue_name=name, handle_signals=False, burst=True)
        for name in names
    ]
    try:
        for name in names:
            done = await pool.enqueue_job("add", 2, 3, _queue_name=name, _job_id=f"sum-{name}")
            failing = await pool.enqueue_job("fail", _queue_name=name, _job_id=f"fail-{name}")
            later = await pool.enqueue_job("add", 1, 1, _queue_name=name, _defer_by=60, _job_id=f"later-{name}")
            assert done is not None and failing is not None and later is not None
            assert await pool.enqueue_job("add", 0, 0, _queue_name=name, _job_id=f"sum-{name}") is None  # unique
            assert (await pool.queue_info(name))["ready"] == 2
            assert await later.abort(timeout=0) is True
        await asyncio.gather(*(worker.async_run() for worker in workers))
        for name in names:
            job = pool_job(pool, f"sum-{name}", name)
            assert await job.result(timeout=5) == 5
            assert await pool_job(pool, f"fail-{name}", name).status() == JobStatus.complete
            statuses = dict(await pool.job_statuses(name))
            assert statuses[f"sum-{name}"] == JobStatus.complete
            assert {result.job_id for result in await pool.all_job_results(name)} >= {f"sum-{name}"}
            assert [result.job_id for result in await pool.failed_jobs(name)] == [f"fail-{name}"]
    finally:
        for worker in workers:
            await worker.close()
        await pool.aclose()


def pool_job(pool: Any, job_id: str, queue_name: str) -> Job:
    return Job(job_id, pool, _queue_name=queue_name)


async def test_a_plain_url_to_a_cluster_node_connects_in_cluster_mode(
    shared_redis_cluster: ClusterSet, caplog: pytest.LogCaptureFixture
) -> None:
    first = shared_redis_cluster.startup_nodes[0]
    pool = await create_pool(RedisSettings(host=first[0], port=first[1]))
    try:
        assert isinstance(pool, PoolRedisCluster)
        assert "is a node of a Redis Cluster: connecting in cluster mode" in caplog.text
        for name in queues_on_every_master(shared_redis_cluster):  # no MovedError, whichever node serves it
            assert await pool.enqueue_job("add", 1, 2, _queue_name=name) is not None
    finally:
        await pool.aclose()
    queue = SyncQueue.connect(
        RedisSettings(host=first[0], port=first[1]), queues_on_every_master(shared_redis_cluster)[-1]
    )
    try:
        assert queue.counts()["ready"] >= 1  # the supervisor's sync client too
    finally:
        queue.close()


async def test_pool_worker_runs_jobs_of_a_queue_on_another_master(
    tmp_path: Path, shared_redis_cluster: ClusterSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = queues_on_every_master(shared_redis_cluster)[-1]
    monkeypatch.setenv("POOL_TEST_QUEUE", name)
    url = shared_redis_cluster.url
    worker = WorkerProcess(url, tmp_path / "worker.log", settings="tests.apps.failover.QueueFromEnvSettings")
    pool = await create_pool(shared_redis_cluster.settings())
    try:
        jobs = [await pool.enqueue_job("record_run", n, _queue_name=name) for n in range(20)]
        assert [await job.result(timeout=20) for job in jobs if job is not None] == list(range(20))
        assert len(read_runs(tmp_path)) == 20
        assert not worker.exited(), worker.output()
    finally:
        worker.popen.send_signal(signal.SIGTERM)
        await worker.wait_exit(20)
        await pool.aclose()


def test_pool_start_on_a_cluster_replaces_a_killed_worker_and_runs_each_cron_tick_once(
    tmp_path: Path, redis_cluster: ClusterSet
) -> None:
    settings = "tests.apps.failover.CronSettings"
    url = redis_cluster.url

    def ticks() -> list[str]:
        return [job_id for job_id, _ in read_runs(tmp_path) if "tick" in job_id]

    with supervisors() as started:
        supervisor = Supervisor(tmp_path, "s", url, settings, "--procs", "2", "--health-interval", "0.3")
        started.append(supervisor)
        supervisor.wait_ready(2)
        wait_for_sync(lambda: len(ticks()) >= 2, 15, message="cron ticks run")
        victim = supervisor.children()[0]
        victim.send_signal(signal.SIGKILL)
        wait_for_sync(
            lambda: (
                victim.pid not in [child.pid for child in supervisor.children()] and len(supervisor.children()) == 2
            ),
            20,
            message="the killed worker replaced",
        )
        before = len(ticks())
        wait_for_sync(lambda: len(ticks()) >= before + 2, 20, message="cron ticks go on")
        wait_for_sync(
            lambda: run_pool("health", "--redis", url, settings, cwd=tmp_path).returncode == 0,
            15,
            interval=0.3,
            message="pool health answers healthy on the cluster",
        )
        assert supervisor.process.poll() is None, supervisor.log
    runs = ticks()
    assert len(runs) == len(set(runs)), f"a tick ran twice: {sorted(runs)}"


async def test_cluster_refuses_what_it_cannot_do(shared_redis_cluster: ClusterSet) -> None:
    with pytest.raises(ValueError, match="database 0 only"):
        RedisSettings(host=[("127.0.0.1", 7000)], cluster=True, database=2)
