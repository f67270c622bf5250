"""``enqueue_job`` calls made while the client's connections are busy go out together (pool/client/enqueue_batch.py):
fewer script calls, and for each caller exactly what its own call would have given: its Job, None for an id
already taken, the error of a call that failed, a replay after a lost reply that enqueues nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from redis.exceptions import OutOfMemoryError

from pool import PoolRedis, RedisSettings, create_pool
from pool.client.enqueue_batch import MAX_IN_FLIGHT, EnqueueBatcher
from pool.redis.replication import NotReplicated
from pool.storage.keys import QueueKeys
from pool.storage.partitions import partition_of
from tests.proxy import client_through_proxy
from tests.redis_cluster import ClusterSet

STREAM = QueueKeys("default").stream


async def _enqueue_calls(client: PoolRedis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _one_call_at_a_time(client: PoolRedis) -> None:
    """Every call after the first in flight waits for the next batch: batches form however fast Redis answers."""
    client._enqueue_batcher = EnqueueBatcher(client._enqueue_batch, max_in_flight=1)


async def test_concurrent_enqueues_go_out_in_far_fewer_script_calls_each_caller_getting_its_own_job(
    redis: PoolRedis,
) -> None:
    await redis.enqueue_job("task", _job_id="warm-up")  # the script is loaded, the fast path connected
    before = await _enqueue_calls(redis)
    jobs = await asyncio.gather(*(redis.enqueue_job("task", i, _job_id=f"job-{i:03d}") for i in range(100)))
    calls = await _enqueue_calls(redis) - before
    assert [job.job_id if job else None for job in jobs] == [f"job-{i:03d}" for i in range(100)]
    assert calls <= MAX_IN_FLIGHT + 4, f"{calls} ENQUEUE calls for 100 concurrent enqueues: they were not batched"
    entries = await redis.xrange(STREAM)
    assert sorted(fields[b"id"].decode() for _, fields in entries[1:]) == [f"job-{i:03d}" for i in range(100)]


async def test_a_lone_enqueue_is_sent_at_once_as_its_own_call(redis: PoolRedis) -> None:
    await redis.enqueue_job("task", _job_id="warm-up")
    before = await _enqueue_calls(redis)
    for i in range(5):
        assert await redis.enqueue_job("task", _job_id=f"alone-{i}") is not None
    assert await _enqueue_calls(redis) - before == 5


async def test_one_id_enqueued_by_many_callers_at_once_is_enqueued_once(redis: PoolRedis) -> None:
    _one_call_at_a_time(redis)
    jobs = await asyncio.gather(*(redis.enqueue_job("task", i, _job_id="same") for i in range(30)))
    assert sum(job is not None for job in jobs) == 1
    assert await redis.xlen(STREAM) == 1


async def test_a_batch_whose_reply_was_lost_is_replayed_and_enqueues_each_job_once(redis_url: str) -> None:
    async with client_through_proxy(redis_url) as (client, proxy):
        _one_call_at_a_time(client)
        await client.enqueue_job("task", _job_id="warm-up")
        proxy.pattern = b"batched-5"  # the batch carrying this id runs, then its connection is cut
        ids = [f"batched-{i}" for i in range(10)]
        jobs = await asyncio.gather(*(client.enqueue_job("task", _job_id=job_id) for job_id in ids))
        assert proxy.dropped == 1
        assert [job.job_id if job else None for job in jobs] == ids  # a replay answers "enqueued", not "taken"
        entries = await client.xrange(STREAM)
        assert sorted(fields[b"id"].decode() for _, fields in entries) == sorted(["warm-up", *ids])


async def test_an_error_of_a_batched_call_reaches_every_caller_and_the_client_goes_on(
    redis: PoolRedis, redis_url: str
) -> None:
    _one_call_at_a_time(redis)
    await redis.enqueue_job("task", _job_id="warm-up")
    await redis.config_set("maxmemory", "1")  # noeviction (the default): every write is refused with OOM
    try:
        outcomes = await asyncio.gather(*(redis.enqueue_job("task", i) for i in range(10)), return_exceptions=True)
    finally:
        await redis.config_set("maxmemory", "0")
    assert all(isinstance(outcome, OutOfMemoryError) for outcome in outcomes), outcomes
    assert await redis.xlen(STREAM) == 1
    jobs = await asyncio.gather(*(redis.enqueue_job("task", i) for i in range(10)))
    assert all(job is not None for job in jobs)


async def test_a_batch_written_but_not_replicated_tells_each_caller_with_its_own_reply(redis_url: str) -> None:
    settings = dataclasses.replace(RedisSettings.from_dsn(redis_url), wait_replicas=1, wait_timeout=0.01)
    client = await create_pool(settings)  # a server with no replica: no write is ever confirmed
    try:
        _one_call_at_a_time(client)
        outcomes = await asyncio.gather(*(client.enqueue_job("task", i) for i in range(8)), return_exceptions=True)
        assert all(isinstance(outcome, NotReplicated) for outcome in outcomes), outcomes
        assert all(outcome.replies == [[1]] for outcome in outcomes if isinstance(outcome, NotReplicated))
        assert len({id(outcome) for outcome in outcomes}) == 8  # one exception each, not one shared
        assert await client.xlen(STREAM) == 8  # written on the master all the same
    finally:
        await client.aclose()


@pytest.mark.parametrize("cancelled", [1, 5])
async def test_a_caller_cancelled_while_its_batch_waits_leaves_the_others_served(
    redis: PoolRedis, cancelled: int
) -> None:
    _one_call_at_a_time(redis)
    await redis.enqueue_job("task", _job_id="warm-up")
    tasks = [asyncio.ensure_future(redis.enqueue_job("task", _job_id=f"c-{i}")) for i in range(8)]
    await asyncio.sleep(0)  # every call has started: one in flight, seven waiting for the batch
    tasks[cancelled].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[cancelled], asyncio.CancelledError)
    assert all(outcome is not None for i, outcome in enumerate(outcomes) if i != cancelled)
    assert await redis.xlen(STREAM) >= 8  # the cancelled caller's job may have been sent with its batch


async def test_concurrent_enqueues_into_a_partitioned_queue_on_a_cluster_each_land_in_their_partition(
    shared_redis_cluster: ClusterSet,
) -> None:
    """A batch of waiting calls spans partitions (and so masters): each partition's jobs go to its own node."""
    name = "batched-spread"
    client = await create_pool(shared_redis_cluster.settings(), queue_partitions=6)
    try:
        _one_call_at_a_time(client)
        ids = [f"spread-{i}" for i in range(60)]
        jobs = await asyncio.gather(*(client.enqueue_job("task", _job_id=job_id, _queue_name=name) for job_id in ids))
        assert [job.job_id if job else None for job in jobs] == ids
        for partition in range(6):
            entries = await client.xrange(QueueKeys(name, partition).stream)
            assert all(partition_of(fields[b"id"].decode(), 6) == partition for _, fields in entries)
        assert (await client.queue_info(name))["ready"] == 60
    finally:
        await client.aclose()
