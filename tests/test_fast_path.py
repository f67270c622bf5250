"""The short path to Redis (pool/redis/fastpath.py) against a real Redis: for scripts it loads nothing itself but falls
back when Redis lost the script, survives its connection being killed without enqueuing twice, keeps bulk
batches in order, steps aside when all its connections are busy, and packs commands (with hiredis) byte for byte
as redis-py does. Pipelines on the fast path: tests/test_autopipeline.py."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError, DataError

from pool import PoolRedis, RedisSettings, create_pool
from pool.connections import BULK_BATCH
from pool.redis.fastpath import MAX_FAST_PATH_CONNECTIONS, _pack
from pool.storage.keys import QueueKeys


def _fast_path_idle(client: PoolRedis) -> int:
    assert client.fast_path is not None
    return len(client.fast_path._idle)


async def test_enqueue_falls_back_when_redis_lost_the_script_and_uses_the_fast_path_after(redis: PoolRedis) -> None:
    await redis.script_flush()
    first = await redis.enqueue_job("task", 1)  # NOSCRIPT on the fast path: the standard path loads the script
    assert first is not None
    second = await redis.enqueue_job("task", 2)
    assert second is not None
    assert _fast_path_idle(redis) == 1  # the fast-path connection served the second call and was kept
    assert await redis.xlen(QueueKeys("default").stream) == 2


async def test_a_killed_fast_path_connection_is_replaced_and_nothing_is_enqueued_twice(
    redis: PoolRedis, redis_url: str
) -> None:
    assert await redis.enqueue_job("task", _job_id="before") is not None
    assert _fast_path_idle(redis) == 1
    admin = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert int(killed) >= 1  # the fast path's connection among them
        job = await redis.enqueue_job("task", _job_id="after")
        assert job is not None
        assert _fast_path_idle(redis) == 0  # the dead connection was dropped, the standard path did the enqueue
        assert await redis.enqueue_job("task", _job_id="after") is None  # the id is taken: it exists once
        assert await admin.xlen(QueueKeys("default").stream) == 2
    finally:
        await admin.aclose()


async def test_bulk_batches_are_written_back_to_back_and_keep_their_order(redis: PoolRedis) -> None:
    specs = [redis.prepare("task", i, _job_id=f"job-{i:05d}") for i in range(2_500)]  # three script calls
    specs.append(redis.prepare("task", _job_id="job-00007"))  # a duplicate id in the last batch: refused
    jobs = await redis.enqueue_many(specs)
    assert [job is not None for job in jobs] == [True] * 2_500 + [False]
    entries = await redis.xrange(QueueKeys("default").stream)
    assert [fields[b"id"].decode() for _, fields in entries] == [f"job-{i:05d}" for i in range(2_500)]


async def test_more_concurrent_enqueues_than_fast_path_connections_all_succeed(redis: PoolRedis) -> None:
    jobs = await asyncio.gather(*(redis.enqueue_job("task", i) for i in range(50)))
    assert all(job is not None for job in jobs)
    assert 1 <= _fast_path_idle(redis) <= MAX_FAST_PATH_CONNECTIONS  # the rest waited and went out together
    assert await redis.xlen(QueueKeys("default").stream) == 50


async def test_closing_the_client_closes_the_fast_path_connections(redis: PoolRedis, redis_url: str) -> None:
    client = await create_pool(RedisSettings.from_dsn(redis_url))
    await client.enqueue_job("task")
    await client.client_setname("fast-path-test-pool")  # a pool connection, to tell ours apart from the fixture's
    before = len(await redis.client_list())
    await client.aclose()
    assert len(await redis.client_list()) <= before - 2  # the pool's and the fast path's connections are gone


async def test_a_bulk_enqueue_cut_off_mid_way_is_replayed_and_enqueues_each_job_once(redis: PoolRedis) -> None:
    await redis.enqueue_job("task", _job_id="warm-up")  # the fast path now holds a connection
    assert redis.fast_path is not None
    connection = redis.fast_path._idle[0]
    real_read = connection.read_response
    reads = 0

    async def read_then_lose_the_connection(*args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        if reads == 2:  # every batch was sent and ran, the first reply was read: the rest are lost
            raise ConnectionError("connection lost")
        return await real_read(*args, **kwargs)

    connection.read_response = read_then_lose_the_connection
    specs = [redis.prepare("task", i, _job_id=f"bulk-{i:04d}") for i in range(5 * BULK_BATCH)]
    jobs = await redis.enqueue_many(specs)
    assert reads == 2
    # the standard path replayed the very calls the fast path had sent: their nonces mark them as this call's own
    assert [job.job_id if job else None for job in jobs] == [spec.job_id for spec in specs]
    entries = await redis.xrange(QueueKeys("default").stream)
    assert [fields[b"id"].decode() for _, fields in entries] == ["warm-up"] + [spec.job_id for spec in specs]


@pytest.mark.parametrize(
    "commands",
    [
        [("SET", "k", b"v\x00\r\n", 1, 1.5, -2, "ünïcode"), ("INCR", "n")],
        [("CONFIG GET", "maxmemory"), ("INCR", "n")],  # a two-word name: redis-py splits it
        [(b"XINFO STREAM", "s")],
        [("CONFIG\tGET", "maxmemory")],  # redis-py splits at any whitespace
        [("SET", "k", memoryview(b"view"))],
    ],
)
def test_commands_are_packed_byte_for_byte_as_redis_py_packs_them(commands: list[tuple[object, ...]]) -> None:
    connection = Connection()
    packed = b"".join(_pack(connection, command) for command in commands)
    assert packed == b"".join(connection.pack_commands(commands))


def test_values_redis_py_refuses_get_its_error() -> None:
    with pytest.raises(DataError, match="bool"):
        _pack(Connection(), ("SET", "k", True))


async def test_a_duplicate_id_in_one_bulk_call_is_refused_not_taken_for_a_replay(redis: PoolRedis) -> None:
    jobs = await redis.enqueue_many(
        [redis.prepare("task", 1, _job_id="twice"), redis.prepare("task", 2, _job_id="twice")]
    )
    assert [job is not None for job in jobs] == [True, False]
    assert await redis.xlen(QueueKeys("default").stream) == 1
