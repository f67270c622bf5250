"""The fast path on Redis Cluster (pool/redis/node_fastpath.py): the queue's scripts go straight to the node that
serves their slot, follow the slot when it moves between two calls, and FETCH (which declares the slot guard rather
than the jobs it reads) is refused whole while its slot migrates, never half applied. And auto-pipelining there
(``PoolRedisCluster.auto_pipelined``, jobs' ``ctx['redis']``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from pool import Worker, create_pool
from pool.client.connections import AutoPipelinedRedisCluster, PoolRedisCluster
from pool.storage.keys import CONSUMER_GROUP, QueueKeys
from pool.storage.queue import RedisQueue
from tests.redis_cluster import ClusterSet
from tests.redis_server import HOST, RedisServer

QUEUE = "moving"
KEYS = QueueKeys(QUEUE)


def other_master(cluster: ClusterSet, node: RedisServer) -> RedisServer:
    return next(master for master in cluster.masters() if master is not node)


def node_name(node: RedisServer) -> str:
    return f"{HOST}:{node.port}"


async def fetch_ids(queue: RedisQueue, count: int = 10) -> list[tuple[str, int]]:
    started, expired = await queue.fetch("worker-1", count, (3, 2, 1, 0), {})
    assert expired == []
    return [(delivery.job_id, delivery.attempts) for delivery in started]


async def test_scripts_go_to_their_slots_node_and_follow_a_slot_moved_between_two_calls(
    redis_cluster: ClusterSet,
) -> None:
    pool = await create_pool(redis_cluster.settings())
    assert isinstance(pool, PoolRedisCluster)
    slot = redis_cluster.keyslot(KEYS.stream)
    source = redis_cluster.node_for_slot(slot)
    target = other_master(redis_cluster, source)
    try:
        queue = RedisQueue(pool, QUEUE)
        await queue.ensure_group()
        for job_id in ("a", "a2"):  # the first call of a script loads it through the cluster client (NOSCRIPT)
            assert await pool.enqueue_job("f", _queue_name=QUEUE, _job_id=job_id) is not None
        assert await fetch_ids(queue, 1) == [("a", 1)]
        assert await fetch_ids(queue, 1) == [("a2", 1)]
        assert pool.node_paths.nodes_in_use() == [node_name(source)]

        redis_cluster.migrate_slot(slot, target)  # by hand, between two calls: the client's map still says source

        assert await pool.enqueue_job("f", _queue_name=QUEUE, _job_id="b") is not None  # MOVED, then followed
        assert await pool.enqueue_job("f", _queue_name=QUEUE, _job_id="b") is None  # enqueued once
        assert pool.get_node_from_key(KEYS.stream).name == node_name(target)  # the map was patched
        assert await pool.enqueue_job("f", _queue_name=QUEUE, _job_id="c") is not None
        assert await fetch_ids(queue) == [("b", 1), ("c", 1)]
        assert pool.node_paths.nodes_in_use() == [node_name(target)]  # rebound: the old node's connection closed
        with target.client() as client:
            assert {client.hget(KEYS.job(job_id), "s") for job_id in ("a", "a2", "b", "c")} == {b"r"}
            assert client.xpending(KEYS.stream, CONSUMER_GROUP)["pending"] == 4
    finally:
        await pool.aclose()


async def test_a_fetch_while_its_slot_migrates_is_refused_whole_then_runs_on_the_new_owner(
    redis_cluster: ClusterSet,
) -> None:
    """Every key FETCH declares exists on the source (the lanes, the consumer's fetched record, the parked
    functions) and the job it would read has already moved to the target: without the slot guard, FETCH would run
    on the source, read the entry, and fail on the job's hash, leaving the entry delivered but not started."""
    pool = await create_pool(redis_cluster.settings())
    slot = redis_cluster.keyslot(KEYS.stream)
    source = redis_cluster.node_for_slot(slot)
    target = other_master(redis_cluster, source)
    try:
        queue = RedisQueue(pool, QUEUE)
        await queue.ensure_group()
        await pool.enqueue_job("f", _queue_name=QUEUE, _job_id="first")
        assert await fetch_ids(queue) == [("first", 1)]  # leaves worker-1's fetched record
        await pool.sadd(KEYS.parked_functions, "g")  # (no job of g: only so that the key exists)
        await pool.enqueue_job("f", _queue_name=QUEUE, _job_id="moved")
        redis_cluster.begin_migration(slot, target)
        with source.client() as client:
            client.migrate(HOST, target.port, [KEYS.job("moved")], 0, 5000)
            assert client.exists(KEYS.fetched("worker-1"), KEYS.parked_functions, *KEYS.lane_keys) == 6

        with pytest.raises(RedisError):
            await fetch_ids(queue)

        with source.client() as client:
            assert client.xpending(KEYS.stream, CONSUMER_GROUP)["pending"] == 1  # "first" only: nothing read
        with target.client() as client:
            client.execute_command("ASKING")
            assert client.hmget(KEYS.job("moved"), "s", "t") == [b"q", b"0"]
        redis_cluster.finish_migration(slot)
        assert await fetch_ids(queue) == [("moved", 1)]
    finally:
        await pool.aclose()


async def test_calls_for_several_nodes_in_one_bulk_enqueue_reach_each_node(redis_cluster: ClusterSet) -> None:
    pool = await create_pool(redis_cluster.settings(), queue_partitions={"spread": 6})
    try:
        specs = [pool.prepare("f", _queue_name="spread", _job_id=f"job-{number}") for number in range(60)]
        jobs = await pool.enqueue_many(specs)
        assert all(job is not None for job in jobs)
        assert (await pool.queue_info("spread"))["ready"] == 60
        assert sorted(pool.node_paths.nodes_in_use()) == sorted(node_name(m) for m in redis_cluster.masters())
    finally:
        await pool.aclose()


async def test_auto_pipelined_commands_of_one_turn_go_out_together_each_with_its_own_reply(
    shared_redis_cluster: ClusterSet,
) -> None:
    pool = await create_pool(shared_redis_cluster.settings())
    view = pool.auto_pipelined()
    pipelines = 0
    make_pipeline = view.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(*args, **kwargs)

    view.pipeline = counted  # type: ignore[method-assign]
    keys = [f"auto:{number}" for number in range(30)]  # slots of every master
    try:
        assert len({shared_redis_cluster.node_for_key(key).port for key in keys}) == 3
        await asyncio.gather(*(view.set(key, key) for key in keys))
        await view.set("auto:text", "not a number")
        replies = await asyncio.gather(
            *(view.get(key) for key in keys),
            view.incr("auto:text"),  # its own error, nobody else's
            view.mget("auto:0", "auto:1"),  # two slots: refused by redis-py before sending
            view.ping(),  # sent to a node of redis-py's choosing: the client's own path
            return_exceptions=True,
        )
        assert replies[: len(keys)] == [key.encode() for key in keys]
        assert isinstance(replies[len(keys)], ResponseError)
        assert isinstance(replies[len(keys) + 1], RedisClusterException)
        assert replies[len(keys) + 2] is True
        assert pipelines == 3  # the sets, the lone set, and the reads: one per loop turn
        await view.aclose()  # the view's connections are the client's: it goes on
        assert await pool.get("auto:0") == b"auto:0"
        assert await view.get("auto:1") == b"auto:1"
    finally:
        await pool.delete(*keys, "auto:text")
        await pool.aclose()


async def test_auto_pipelined_commands_follow_a_slot_moved_between_two_turns(redis_cluster: ClusterSet) -> None:
    pool = await create_pool(redis_cluster.settings())
    view = pool.auto_pipelined()
    slot = redis_cluster.keyslot("{moving}:a")
    target = other_master(redis_cluster, redis_cluster.node_for_slot(slot))
    try:
        await asyncio.gather(view.set("{moving}:a", "1"), view.set("{moving}:b", "2"))
        redis_cluster.migrate_slot(slot, target)
        assert await asyncio.gather(view.incr("{moving}:a"), view.get("{moving}:b")) == [2, b"2"]
        with target.client() as client:
            assert client.get("{moving}:a") == b"2"
    finally:
        await pool.aclose()


async def count_up(ctx: dict[str, Any]) -> int:
    return int(await ctx["redis"].incr(f"{{counted}}:{ctx['job_id']}"))


async def test_jobs_use_an_auto_pipelined_client_on_a_cluster(shared_redis_cluster: ClusterSet) -> None:
    settings = shared_redis_cluster.settings()
    pool = await create_pool(settings, queue_partitions={"counting": 3})
    worker = Worker(
        functions=[count_up],
        redis_settings=settings,
        queue_name="counting",
        queue_partitions=3,
        burst=True,
        handle_signals=False,
    )
    try:
        jobs = [await pool.enqueue_job("count_up", _queue_name="counting") for _ in range(30)]
        await worker.async_run()
        assert isinstance(worker.ctx["redis"], AutoPipelinedRedisCluster)
        assert [await job.result(timeout=5) for job in jobs if job is not None] == [1] * 30
    finally:
        await worker.close()
        await pool.aclose()
