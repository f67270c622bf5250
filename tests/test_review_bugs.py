"""Review findings: each test once demonstrated a bug found in review; they now guard the fixes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pool import PoolRedis, RedisSettings, Retry, create_pool
from pool.jobs import JobStatus
from pool.keys import CONSUMER_GROUP, QueueKeys
from tests.helpers import wait_for
from tests.redis_server import RedisServer
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")


async def count_run(ctx: dict[str, Any]) -> int:
    return int(await ctx["redis"].incr("runs:" + ctx["job_id"]))


async def slow(ctx: dict[str, Any], seconds: float) -> int:
    runs = int(await ctx["redis"].incr("runs:" + ctx["job_id"]))
    await asyncio.sleep(seconds)
    return runs


async def slow_then_retry(ctx: dict[str, Any], seconds: float) -> int:
    runs = int(await ctx["redis"].incr("runs:" + ctx["job_id"]))
    await asyncio.sleep(seconds)
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return runs


# --- 1. XAUTOCLAIM cursor ignored ------------------------------------------------------------------------------


async def test_dead_workers_jobs_behind_long_running_live_jobs_are_reclaimed(redis: PoolRedis, redis_url: str) -> None:
    """20 long jobs held by a live consumer sit at the head of the PEL; 3 jobs of a dead consumer come after.
    An idle worker with max_jobs=1 asks XAUTOCLAIM for COUNT=1 from 0-0 every beat: Redis scans 10 entries,
    all fresh, returns a cursor the worker throws away. The dead worker's jobs are never taken over."""
    for i in range(23):
        await redis.enqueue_job("count_run", _job_id=f"j{i}")
    await redis.xgroup_create(KEYS.stream, CONSUMER_GROUP, id="0")
    live = await redis.xreadgroup(CONSUMER_GROUP, "live", {KEYS.stream: ">"}, count=20)
    live_ids = [entry_id for entry_id, _ in live[0][1]]
    await redis.xreadgroup(CONSUMER_GROUP, "dead", {KEYS.stream: ">"}, count=3)

    async def keep_live_fresh() -> None:  # a live worker heartbeating its 20 long jobs
        while True:
            await redis.xclaim(KEYS.stream, CONSUMER_GROUP, "live", 0, live_ids, justid=True)
            await asyncio.sleep(0.05)

    beat = asyncio.create_task(keep_live_fresh())
    try:
        async with running_worker(redis_url, functions=[count_run], max_jobs=1, heartbeat_interval=0.1):
            # min idle is 0.3 s: the dead consumer's jobs should run within a second or two
            await wait_for(lambda: redis.exists("runs:j20", "runs:j21", "runs:j22"), timeout=4)
            # (assertion: at least one ran) -- in fact none ever does
    finally:
        beat.cancel()


# --- 2. job hash TTL runs out while the job runs / waits for its retry -------------------------------------------


async def test_unique_id_while_running_past_expires(redis: PoolRedis, redis_url: str) -> None:
    """_expires means 'not started by then'; once started, the hash TTL still runs and the id frees up mid-run:
    status() says not_found, result() raises ResultNotFound and a second job with the same id is accepted."""
    async with running_worker(redis_url, functions=[slow]):
        job = await redis.enqueue_job("slow", 2.0, _job_id="uniq", _expires=0.5)
        assert job is not None
        await wait_for(lambda: redis.exists("runs:uniq"))
        await asyncio.sleep(1.0)  # still running, TTL elapsed
        status = await job.status()
        again = await redis.enqueue_job("slow", 2.0, _job_id="uniq")
        assert status == JobStatus.in_progress, status
        assert again is None, "a second job with a running job's id was accepted"


async def test_retry_after_hash_expired_is_not_lost(redis: PoolRedis, redis_url: str) -> None:
    async with running_worker(redis_url, functions=[slow_then_retry]):
        job = await redis.enqueue_job("slow_then_retry", 1.0, _job_id="r1", _expires=0.5)
        assert job is not None
        await wait_for(lambda: redis.exists("runs:r1"))
        await asyncio.sleep(2.0)
        # invariant 1: the job either runs again or leaves a recorded (failed) result
        assert await job.status() != JobStatus.not_found, "job vanished: no hash, no result, not queued"


async def test_expired_job_leaves_a_result(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("count_run", _job_id="e1", _expires=0.2, _defer_by=0.5)
    assert job is not None
    async with running_worker(redis_url, functions=[count_run]):
        await asyncio.sleep(1.5)
    assert await redis.exists(KEYS.result("e1")), "expired job left Redis without a recorded failure"


# --- 3. heartbeat crashes the worker on NOGROUP ------------------------------------------------------------------


async def test_worker_survives_stream_loss(redis: PoolRedis, redis_url: str) -> None:
    """Redis restarted without the stream (no persistence, or an RDB older than the group): read() recreates
    the group on NOGROUP, but the heartbeat's XAUTOCLAIM raises NOGROUP first and takes the worker down."""
    async with running_worker(redis_url, functions=[count_run], heartbeat_interval=0.1) as worker:
        serving = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Worker.main")  # type: ignore[union-attr]
        await redis.flushall()
        await asyncio.sleep(0.5)
        assert not serving.done(), f"worker stopped: {serving.exception()!r}"
        await redis.enqueue_job("count_run", _job_id="after")
        await wait_for(lambda: redis.exists("runs:after"), timeout=3)
        assert worker is not None


# --- 4. shutdown ---------------------------------------------------------------------------------------------------


async def test_shutdown_cancel_on_last_try_runs_again(redis: PoolRedis, redis_url: str) -> None:
    """Invariant 5: cancelled at shutdown, 'they run again later'. With max_tries=1 the job is failed instead."""
    job = await redis.enqueue_job("slow", 5.0, _job_id="last")
    assert job is not None
    async with running_worker(redis_url, functions=[slow], max_tries=1):
        await wait_for(lambda: redis.exists("runs:last"))
    assert await job.status() == JobStatus.queued, await redis.get(KEYS.result("last"))


async def slow_end_hook(ctx: dict[str, Any]) -> None:
    await ctx["redis"].set("in_end_hook:" + ctx["job_id"], 1)
    await asyncio.sleep(1.0)


async def test_shutdown_during_on_job_end_does_not_rerun_finished_job(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("count_run", _job_id="h1")
    assert job is not None
    async with running_worker(redis_url, functions=[count_run], on_job_end=slow_end_hook):
        await wait_for(lambda: redis.exists("in_end_hook:h1"))
    # the function finished once; the shutdown cancelled only the hook
    async with running_worker(redis_url, functions=[count_run]):
        await asyncio.sleep(0.5)
    assert await redis.get("runs:h1") == b"1", "a job whose function had completed ran a second time"


# --- 5. Redis outage: every running job is stolen by whichever worker heartbeats first ---------------------------


async def test_redis_outage_does_not_rerun_running_jobs(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(persistence=True, appendfsync="always")
    url = server.url
    client = await create_pool(RedisSettings.from_dsn(url))
    try:
        async with (
            running_worker(url, functions=[slow], max_jobs=5, worker_id="A"),
            running_worker(url, functions=[slow], max_jobs=5, worker_id="B"),
        ):
            for i in range(4):
                await client.enqueue_job("slow", 8.0, _job_id=f"o{i}")
            for i in range(4):
                await wait_for(lambda i=i: client.exists(f"runs:o{i}"))
            server.stop()
            await asyncio.sleep(4.0)  # > 3 heartbeats of 1 s
            server.start()
            await asyncio.sleep(3.0)
            runs = [await client.get(f"runs:o{i}") for i in range(4)]
            assert runs == [b"1"] * 4, f"jobs started again while their workers were alive: {runs}"
    finally:
        await client.aclose()
