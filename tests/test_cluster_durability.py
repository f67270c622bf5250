"""``wait_replicas`` on Redis Cluster: WAIT goes on the connection that carried the write, to the master that took
it (the master of the keys' slot), so its count is of that master's replicas. A cluster of three masters with
one replica each; a replica is paused (SIGSTOP) to show that only the replica of the queue's own master counts."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from pool import Worker, create_pool
from pool.redis.replication import NotReplicated
from pool.storage.keys import QueueKeys
from pool.storage.sync import SyncQueue
from pool.supervisor.leader import SupervisorCron
from pool.worker.cron import cron
from tests.redis_cluster import ClusterSet
from tests.redis_server import RedisServer

QUEUE = "durable"


async def double(ctx: dict[str, Any], n: int) -> int:
    return n * 2


async def report(ctx: dict[str, Any]) -> None:
    return None


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[ClusterSet]:
    with ClusterSet(replicas=1) as cluster:
        yield cluster


@contextlib.contextmanager
def paused(node: RedisServer) -> Iterator[None]:
    """The node stops answering (SIGSTOP), so it confirms nothing, until the block ends (SIGCONT)."""
    assert node.pid is not None
    os.kill(node.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.pid, signal.SIGCONT)


def replica_of_queue(cluster: ClusterSet, queue: str, *, own: bool) -> RedisServer:
    """The replica of the master that serves ``queue``'s slot (``own``), or of another master."""
    master = cluster.node_for_key(QueueKeys(queue).stream)
    masters = [master] if own else [node for node in cluster.masters() if node is not master]
    return cluster.replicas_of(masters[0])[0]


async def test_enqueue_start_and_result_are_confirmed_by_the_replica_of_the_queues_master(
    replicated_cluster: ClusterSet,
) -> None:
    settings = replicated_cluster.settings(wait_replicas=1, wait_timeout=10.0)  # (a busy machine's replica can lag)
    pool = await create_pool(settings)
    try:
        jobs = [await pool.enqueue_job("double", n, _queue_name=QUEUE) for n in range(5)]
        many = await pool.enqueue_many([pool.prepare("double", n, _queue_name=QUEUE) for n in range(5, 10)])
        worker = Worker(functions=[double], redis_settings=settings, queue_name=QUEUE, handle_signals=False, burst=True)
        await worker.async_run()
        assert worker.jobs_complete == 10 and worker.jobs_failed == 0
        assert [await job.result(timeout=5) for job in [*jobs, *many] if job is not None] == [n * 2 for n in range(10)]
    finally:
        await pool.aclose()


async def test_an_enqueue_is_not_replicated_while_the_replica_of_its_master_is_paused(
    replicated_cluster: ClusterSet,
) -> None:
    # calls expected to be confirmed get a generous WAIT (a busy machine's replica can lag); the one that cannot
    # be, a short one
    confirming = await create_pool(replicated_cluster.settings(wait_replicas=1, wait_timeout=10.0))
    pool = await create_pool(replicated_cluster.settings(wait_replicas=1, wait_timeout=0.3))
    try:
        with paused(replica_of_queue(replicated_cluster, QUEUE, own=False)):  # another master's: no matter
            assert await confirming.enqueue_job("double", 1, _queue_name=QUEUE, _job_id="other-paused") is not None
        own = replica_of_queue(replicated_cluster, QUEUE, own=True)
        with paused(own), pytest.raises(NotReplicated, match="written on the master, but 0 of 1 replicas confirmed"):
            await pool.enqueue_job("double", 2, _queue_name=QUEUE, _job_id="own-paused")
        replicated_cluster.wait_replicas_in_sync()
        # enqueueing again is safe: the job exists, and the WAIT now confirms it
        assert await confirming.enqueue_job("double", 2, _queue_name=QUEUE, _job_id="own-paused") is None
    finally:
        await pool.aclose()
        await confirming.aclose()


async def test_an_enqueue_on_a_cluster_without_replicas_is_not_replicated(shared_redis_cluster: ClusterSet) -> None:
    pool = await create_pool(shared_redis_cluster.settings(wait_replicas=1, wait_timeout=0.1))
    try:
        with pytest.raises(NotReplicated, match="0 of 1 replicas confirmed"):
            await pool.enqueue_job("double", 1, _queue_name=QUEUE)
    finally:
        await pool.aclose()


def test_the_supervisors_cron_tick_is_confirmed_on_a_cluster(
    replicated_cluster: ClusterSet, caplog: pytest.LogCaptureFixture
) -> None:
    jobs: Callable[[], list[Any]] = lambda: [cron(report, run_at_startup=True, second=0)]  # noqa: E731
    queue = SyncQueue.connect(replicated_cluster.settings(wait_replicas=1, wait_timeout=0.3), "durable-cron")
    try:
        leader = SupervisorCron(queue, jobs(), token="t", now=datetime.now, serializer=None, expires_ms=60_000)
        with caplog.at_level(logging.WARNING, logger="pool.supervisor"):
            with paused(replica_of_queue(replicated_cluster, "durable-cron", own=True)):
                leader.run_due()  # unconfirmed: logged, the turn ends, the tick is tried again
            assert "0 of 1 replicas confirmed" in caplog.text
            caplog.clear()
            replicated_cluster.wait_replicas_in_sync()
            # confirmed now: a turn the replica answers too late for (a busy machine) is tried again, as in use
            deadline = time.monotonic() + 20
            while True:
                caplog.clear()
                leader.run_due()
                if "replicas confirmed" not in caplog.text or time.monotonic() > deadline:
                    break
            assert "replicas confirmed" not in caplog.text
        assert queue.client.xlen(QueueKeys("durable-cron").stream) >= 1
        leader.release()
    finally:
        queue.close()
