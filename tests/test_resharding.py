"""A live resharding of a queue's slot while jobs are enqueued and run (tests/redis_cluster.py: three masters).

Every script declares the keys it touches (pool/storage/scripts.py), so while the slot migrates Redis refuses a
script call whole (TRYAGAIN, ASK) rather than failing it half way: the worker retries, the producer here too.
The slot is left half-migrated (MIGRATING on the source, IMPORTING on the target, its keys moving a few at a
time) for a while, twice: there and back. Nothing is lost (every job gets its result), nothing is half-applied
(no script meets a key that is not on its node: "Script attempted to access a non local key").

The cluster client's part (pool/redis/cluster_client.py) is checked on its own too: calls redirected by ASK are
served by the importing node under concurrent use, refreshes close nothing in use, the user's close closes all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import ClusterError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pool import JobStatus, Worker, create_pool, func
from pool.client.connections import PoolRedisCluster
from pool.storage.keys import QueueKeys
from tests.helpers import wait_for
from tests.redis_cluster import ClusterSet

QUEUE = "reshard"


async def count_run(ctx: dict[str, Any], n: int) -> int:
    await ctx["redis"].hincrby("runs", str(n), 1)
    await asyncio.sleep(0.02)  # jobs run while the slot moves
    return n


async def limited_run(ctx: dict[str, Any], n: int) -> int:
    return await count_run(ctx, n)


def reshard_slowly(cluster: ClusterSet, slot: int, seconds: float) -> int:
    """Move ``slot`` to another master, a few keys at a time over ``seconds`` at least; how many keys moved."""
    target = next(node for node in cluster.masters() if node is not cluster.node_for_slot(slot))
    cluster.begin_migration(slot, target)
    moved, deadline = 0, time.monotonic() + seconds
    while True:
        count = cluster.migrate_batch(slot, batch=3)
        moved += count
        if count == 0 and time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    cluster.finish_migration(slot)
    return moved


pytestmark = pytest.mark.resharding


async def test_commands_redirected_by_ask_are_served_by_the_importing_node_under_concurrent_use(
    redis_cluster: ClusterSet,
) -> None:
    """redis-py sent ASKING on one pooled connection and the redirected command on another: the importing node
    answered MOVED, the source ASK again, until "TTL exhausted", and its refreshes on the way closed connections
    other callers were using (an AttributeError, not a Redis error, for them). pool's cluster client sends
    ASKING and the command on one connection."""
    key = "{moving}:a"
    sync = redis_cluster.client()
    client = await create_pool(redis_cluster.settings())
    try:
        sync.set(key, "moved")
        slot = redis_cluster.keyslot(key)
        target = next(node for node in redis_cluster.masters() if node is not redis_cluster.node_for_slot(slot))
        redis_cluster.begin_migration(slot, target)
        assert redis_cluster.migrate_batch(slot, batch=10) == 1  # the key is on the target; the slot is not yet
        reads = [client.get(key) for _ in range(50)]
        writes = [client.set(f"{{moving}}:new-{n}", n) for n in range(50)]
        replies = await asyncio.gather(*reads, *writes, return_exceptions=True)
        failures = [reply for reply in replies if isinstance(reply, BaseException)]
        assert not failures, failures[:3]
        assert {_text(reply) for reply in replies[:50]} == {"moved"}
        redis_cluster.finish_migration(slot)
        assert [_text(value) for value in sync.mget([f"{{moving}}:new-{n}" for n in range(50)])] == [
            str(n) for n in range(50)
        ]
    finally:
        await client.aclose()
        sync.close()


async def test_a_cluster_client_closed_by_its_user_closes_its_connections(redis_cluster: ClusterSet) -> None:
    """Inside a command, redis-py's aclose() is a request to reread the topology (pool's client then closes
    nothing); called by the client's user, it still closes every connection."""
    client = await create_pool(redis_cluster.settings())
    await client.set("{closing}:a", 1)
    assert isinstance(client, PoolRedisCluster)
    nodes = client.get_nodes()
    assert any(connection.is_connected for node in nodes for connection in node._connections)
    await client.aclose()
    assert not any(connection.is_connected for node in nodes for connection in node._connections)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_a_queue_whose_slot_is_resharded_while_jobs_run_loses_nothing_and_half_applies_nothing(
    redis_cluster: ClusterSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = redis_cluster.settings()
    pool = await create_pool(settings)
    slot = redis_cluster.keyslot(QueueKeys(QUEUE).stream)
    worker = Worker(
        functions=[count_run, func(limited_run, max_concurrency=2)],
        redis_settings=settings,
        queue_name=QUEUE,
        handle_signals=False,
        max_jobs=10,
        poll_delay=0.05,
    )
    refused = 0

    async def enqueue(function: str, n: int, **options: Any) -> Any:
        nonlocal refused
        while True:  # what a producer does with TRYAGAIN past redis-py's own retries: call again, later
            try:
                return await pool.enqueue_job(function, n, _queue_name=QUEUE, _job_id=f"job-{n}", **options)
            except (TryAgainError, ClusterError):  # (redis-py: "TTL exhausted" after 16 TRYAGAIN or ASK replies)
                refused += 1
                await asyncio.sleep(0.05)

    jobs: list[Any] = []

    async def produce(numbers: range) -> None:
        for n in numbers:
            options: dict[str, Any] = {}
            if n % 7 == 3:
                options["_defer_by"] = 0.05
            if n % 11 == 5 and jobs:
                options["_depends_on"] = [jobs[-1]]
            jobs.append(await enqueue("limited_run" if n % 5 == 0 else "count_run", n, **options))
            if n % 10 == 9:
                await asyncio.sleep(0.02)

    running = asyncio.create_task(worker.async_run())
    try:
        await produce(range(200))  # a backlog: 200 jobs of ~20 ms, 10 at a time
        producing = asyncio.create_task(produce(range(200, 400)))
        there = await asyncio.to_thread(reshard_slowly, redis_cluster, slot, 1.5)
        back = await asyncio.to_thread(reshard_slowly, redis_cluster, slot, 1.5)
        await producing
        assert there > 100 and back > 100, (there, back)  # the jobs' keys moved, a few at a time

        async def all_complete() -> bool:
            return all([await job.status() == JobStatus.complete for job in jobs])

        await wait_for(all_complete, timeout=60, message="every job complete")
        results = [await job.result(timeout=1) for job in jobs]
        assert results == list(range(400))
        runs = {int(n): int(count) for n, count in (await pool.hgetall("runs")).items()}
        assert sorted(runs) == list(range(400)) and min(runs.values()) >= 1
    finally:
        worker.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 20)
        await pool.aclose()
    half_applied = [r.getMessage() for r in caplog.records if "non local key" in r.getMessage()]
    assert not half_applied, half_applied


async def test_a_cluster_client_in_use_follows_a_masters_failover(
    redis_cluster_factory: Callable[..., ClusterSet],
) -> None:
    """A master killed under a busy client: pool's client, whose refreshes mark the slot map stale rather than
    close connections, still follows the promotion of the master's replica."""
    cluster = redis_cluster_factory(replicas=1)
    client = await create_pool(cluster.settings())
    key = "{failover}:counter"
    try:
        await client.set(key, 0)
        cluster.wait_replicas_in_sync()
        master = cluster.node_for_key(key)
        cluster.kill_node(master)
        errors: list[BaseException] = []

        async def increments() -> int:
            replies = await asyncio.gather(*(client.incr(key) for _ in range(20)), return_exceptions=True)
            errors.extend(reply for reply in replies if isinstance(reply, BaseException))
            return sum(1 for reply in replies if not isinstance(reply, BaseException))

        async def all_served() -> bool:
            return await increments() == 20

        # once the replica has taken over and the client has reread the slot map, every call is served
        await wait_for(all_served, timeout=30, interval=0.2, message="every increment served after the failover")
        unexpected = [
            e for e in errors if not isinstance(e, (RedisConnectionError, ClusterError, RedisTimeoutError, OSError))
        ]
        assert not unexpected, unexpected[:3]
    finally:
        await client.aclose()
