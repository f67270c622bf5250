"""``Job.result()`` against a real Redis and a real worker: its blocking reads never race the connection's
socket timeout, ``result(timeout=t)`` ends within t with asyncio's TimeoutError, many waiters (or many short
polls) leave one copy of the result in Redis, not one per call, and a result reaches only the callers of the run
that produced it, even when a job id is reused. The worker's own blocking read is checked here too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from pool import PoolRedis, func
from pool.storage.keys import QueueKeys
from pool.storage.queue import WAITER_MARGIN_MS, RedisQueue
from tests.helpers import wait_for
from tests.worker_utils import running_worker

SHORT_SOCKET_TIMEOUT = 1.0  # seconds: short, so the tests are quick; the default (5 s) behaves the same
KEYS = QueueKeys("default")


@pytest.fixture
async def impatient(redis_url: str) -> AsyncIterator[PoolRedis]:
    """A client whose connections give up on a read after SHORT_SOCKET_TIMEOUT, retried as create_pool retries."""
    pool = BlockingConnectionPool.from_url(
        redis_url, socket_timeout=SHORT_SOCKET_TIMEOUT, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3)
    )
    client = PoolRedis(connection_pool=pool)
    client.auto_close_connection_pool = True
    yield client
    await client.aclose()


async def blocked_clients(redis: PoolRedis, *commands: str) -> int:
    """How many connections are blocked in one of ``commands`` (a waiter, not the worker's XREADGROUP)."""
    return sum(1 for client in await redis.client_list() if client.get("cmd") in commands)


async def blocked_waiter(redis: PoolRedis) -> bool:
    return await blocked_clients(redis, "blpop", "xread") > 0


async def test_result_outlasts_a_socket_timeout_four_times_shorter_than_the_job(
    impatient: PoolRedis, redis_url: str
) -> None:
    """The job runs longer than the client's socket timeout and its retries together: result() still gets it."""
    job_seconds = 4 * SHORT_SOCKET_TIMEOUT + 2

    async def long_job(ctx: dict[str, Any]) -> str:
        await asyncio.sleep(job_seconds)
        return "finally"

    job = await impatient.enqueue_job("long_job")
    assert job is not None
    async with running_worker(redis_url, functions=[func(long_job, name="long_job")]):
        assert await job.result() == "finally"


async def test_result_with_a_timeout_raises_asyncio_timeout_error_within_it(impatient: PoolRedis) -> None:
    job = await impatient.enqueue_job("never_runs")
    assert job is not None
    timeout = 2.5 * SHORT_SOCKET_TIMEOUT
    began = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await job.result(timeout=timeout)
    assert timeout <= time.monotonic() - began < timeout + 1.0


async def test_a_blocking_read_of_the_worker_outlasts_a_short_socket_timeout(impatient: PoolRedis) -> None:
    """The worker's XREADGROUP ... BLOCK, asked to block longer than the socket timeout, ends without an error."""
    queue = RedisQueue(impatient, "default")
    await queue.ensure_group()
    assert await queue.read("consumer-1", 1, int(3 * SHORT_SOCKET_TIMEOUT * 1000)) == []
    assert await impatient.enqueue_job("task", _job_id="ready") is not None
    delivered = await queue.read("consumer-1", 1, int(3 * SHORT_SOCKET_TIMEOUT * 1000))
    assert [d.job_id for d in delivered] == ["ready"]


async def pool_bytes_besides_the_result(redis: PoolRedis, job_id: str) -> int:
    """Bytes Redis holds for the queue's keys other than the job's kept result (every sample counted)."""
    total = 0
    async for key in redis.scan_iter(match="pool:{default}:*"):
        if key.decode() != KEYS.result(job_id):
            total += await redis.memory_usage(key, samples=0) or 0
    return total


async def test_many_short_polls_of_a_slow_job_leave_one_copy_of_its_result(redis: PoolRedis, redis_url: str) -> None:
    size = 256 * 1024
    big = "x" * size
    release = asyncio.Event()

    async def slow_big(ctx: dict[str, Any]) -> str:
        await release.wait()
        return big

    job = await redis.enqueue_job("slow_big")
    assert job is not None
    async with running_worker(redis_url, functions=[func(slow_big, name="slow_big")]):
        for _ in range(20):
            with pytest.raises(asyncio.TimeoutError):
                await job.result(timeout=0.05)
        release.set()
        assert await job.result(timeout=5) == big
    assert await pool_bytes_besides_the_result(redis, job.job_id) < 2 * size  # was one copy per poll


async def test_a_reused_job_id_gets_its_own_runs_result(redis: PoolRedis, redis_url: str) -> None:
    """With keep_result=0 an id can be enqueued again once its job finished; waiting on the second run returns
    the second run's result, never a notification left over from the first."""
    gates = {1: asyncio.Event(), 2: asyncio.Event()}

    async def held(ctx: dict[str, Any], run: int) -> int:
        await gates[run].wait()
        return run

    async with running_worker(redis_url, functions=[func(held, name="held")], keep_result=0):
        first = await redis.enqueue_job("held", 1, _job_id="reused")
        assert first is not None
        with pytest.raises(asyncio.TimeoutError):  # a caller that gave up on the first run
            await first.result(timeout=0.05)
        waiting = asyncio.create_task(first.result(timeout=10))
        await wait_for(lambda: waiting.done() or blocked_waiter(redis), message="a caller blocked on run 1")
        gates[1].set()
        assert await waiting == 1
        second = await redis.enqueue_job("held", 2, _job_id="reused")
        assert second is not None
        waiting = asyncio.create_task(second.result(timeout=10))
        await wait_for(lambda: waiting.done() or blocked_waiter(redis), message="a caller blocked on run 2")
        gates[2].set()
        assert await waiting == 2


async def test_many_waiters_all_get_the_result_from_one_notification(redis: PoolRedis, redis_url: str) -> None:
    release = asyncio.Event()

    async def slow(ctx: dict[str, Any]) -> str:
        await release.wait()
        return "for everyone"

    job = await redis.enqueue_job("slow")
    assert job is not None
    async with running_worker(redis_url, functions=[func(slow, name="slow")]):
        waiters = [asyncio.create_task(job.result(timeout=10)) for _ in range(8)]

        async def all_blocked() -> bool:
            return await blocked_clients(redis, "xread") == len(waiters)

        await wait_for(all_blocked, message="every waiter blocked")
        release.set()
        assert await asyncio.gather(*waiters) == ["for everyone"] * 8
    assert await redis.xlen(KEYS.notify(job.job_id)) == 1


async def test_the_wait_script_run_twice_marks_one_wait_and_answers_the_same(redis: PoolRedis) -> None:
    """redis-py runs a script again when its reply was lost: the second run changes nothing."""
    job = await redis.enqueue_job("task", _job_id="waited")
    assert job is not None
    queue = RedisQueue(redis, "default")
    first = await queue.result_or_register_waiter("waited", 2.0)
    second = await queue.result_or_register_waiter("waited", 2.0)
    assert first == second == (None, "q", "0-0")
    assert await redis.get(KEYS.waiters("waited")) == b"1"
    assert 0 < await redis.pttl(KEYS.waiters("waited")) <= 2_000 + WAITER_MARGIN_MS
    await queue.result_or_register_waiter("waited", 0.1)  # a shorter wait does not cut the longer one's
    assert await redis.pttl(KEYS.waiters("waited")) > 1_000 + WAITER_MARGIN_MS
