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
from pool.keys import QueueKeys
from pool.queue import RedisQueue
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
