"""Priorities (``_priority``, ``_at_front``) and per-function concurrency limits (``func(max_concurrency=)``),
against a real Redis, through the whole life of a job: enqueue, deferral, retry, crash and reclaim, hand-back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pool import JobStatus, PoolRedis, Retry, func
from pool.storage.keys import QueueKeys
from pool.storage.queue import Completion, RedisQueue
from pool.utils import now_ms
from pool.worker import STARVATION_GUARD
from tests.helpers import wait_for
from tests.worker_utils import make_worker, run_burst, running_worker

KEYS = QueueKeys("default")


async def record(ctx: dict[str, Any], name: str) -> str:
    await ctx["redis"].rpush("order", name)
    return name


async def retry_once(ctx: dict[str, Any], name: str) -> str:
    await ctx["redis"].rpush("order", f"{name}#{ctx['job_try']}")
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return name


async def gated(ctx: dict[str, Any], name: str) -> str:
    """Track how many run at once (peak in 'peak'), then wait for the gate key to open."""
    active = await ctx["redis"].incr("active")
    await ctx["redis"].rpush("starts", name)
    raise_peak = "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
    raise_peak += "redis.call('SET', KEYS[1], ARGV[1]) end"
    await ctx["redis"].eval(raise_peak, 1, "peak", active)
    while not await ctx["redis"].exists("gate"):
        await asyncio.sleep(0.02)
    await ctx["redis"].decr("active")
    return name


async def order(redis: PoolRedis, key: str = "order") -> list[str]:
    return [x.decode() for x in await redis.lrange(key, 0, -1)]


# --- priorities ---------------------------------------------------------------------------------------------------


async def test_higher_priorities_run_first_and_lower_ones_are_not_starved(redis: PoolRedis, redis_url: str) -> None:
    """One job at a time (max_jobs=1): strict priority order, except that every STARVATION_GUARD-th fetch
    serves the lowest priority first (docs/features.md)."""
    for i in range(3):
        await redis.enqueue_job("record", f"p0-{i}")
    for i in range(6):
        await redis.enqueue_job("record", f"p2-{i}", _priority=2)
    for i in range(2):
        await redis.enqueue_job("record", f"p1-{i}", _priority=1)
    await redis.enqueue_job("record", "front", _at_front=True)
    await run_burst(redis_url, functions=[record], max_jobs=1)
    ran = await order(redis)
    assert len(ran) == 12
    expected_head = ["front", "p2-0", "p2-1", "p2-2", "p2-3", "p2-4", "p2-5"][: STARVATION_GUARD - 1]
    assert ran[: STARVATION_GUARD - 1] == expected_head
    assert ran[STARVATION_GUARD - 1] == "p0-0", "the starvation guard's fetch serves the lowest priority"
    rest = [name for name in ran if name not in expected_head and name != "p0-0"]
    assert rest == ["p1-0", "p1-1", "p0-1", "p0-2"], ran


async def test_priority_is_kept_through_deferral_and_retry(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("retry_once", "urgent", _priority=2, _defer_by=0.05)
    assert job is not None
    queue = RedisQueue(redis, "default")
    moved, _ = await queue.promote_due(now_ms() + 60_000)  # as if its time had come
    assert moved == 1
    assert await redis.xlen(KEYS.lane(2)) == 1 and await redis.xlen(KEYS.stream) == 0
    await run_burst(redis_url, functions=[retry_once])
    assert await job.result(timeout=1) == "urgent"
    assert await order(redis) == ["urgent#1", "urgent#2"]
    assert await redis.xlen(KEYS.lane(2)) == 0


async def test_bulk_enqueue_honours_priorities(redis: PoolRedis, redis_url: str) -> None:
    specs = [redis.prepare("record", f"low-{i}") for i in range(3)]
    specs += [redis.prepare("record", "high", _priority=3)]
    assert all(await redis.enqueue_many(specs))
    await run_burst(redis_url, functions=[record], max_jobs=1)
    assert (await order(redis))[0] == "high"


@pytest.mark.parametrize("bad", [4, -1, True, "1"])
async def test_invalid_priority_is_refused_at_enqueue(redis: PoolRedis, bad: Any) -> None:
    with pytest.raises(ValueError, match="_priority must be one of 0, 1, 2, 3"):
        await redis.enqueue_job("record", "x", _priority=bad)
    assert await redis.dbsize() == 0


async def test_prioritised_job_of_a_dead_worker_is_reclaimed(redis: PoolRedis, redis_url: str) -> None:
    """A consumer reads a top-priority job and dies without a word: a live worker takes it over after 3
    heartbeats (reclaim scans every lane) and runs it with job_try=2."""
    job = await redis.enqueue_job("retry_once", "orphan", _at_front=True)
    assert job is not None
    dead = RedisQueue(redis, "default")
    await dead.ensure_group()
    started, _ = await dead.fetch("dead-consumer", 10, (3, 2, 1, 0), {})
    assert [d.priority for d in started] == [3]
    async with running_worker(redis_url, functions=[retry_once], heartbeat_interval=0.1):
        assert await job.result(timeout=5) == "orphan"
    assert await order(redis) == ["orphan#2"]  # try 1 was the dead consumer's (it never ran the function)


async def test_hand_back_returns_jobs_to_their_lane(redis: PoolRedis) -> None:
    await redis.enqueue_job("record", "a", _priority=1)
    await redis.enqueue_job("record", "b")
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    started, _ = await queue.fetch("leaving", 10, (3, 2, 1, 0), {})
    assert len(started) == 2
    assert (await queue.counts())["running"] == 2
    assert await queue.hand_back_consumer("leaving") == 2
    assert await queue.counts() == {"ready": 2, "running": 0, "deferred": 0, "parked": 0}
    assert await redis.xlen(KEYS.lane(1)) == 1 and await redis.xlen(KEYS.stream) == 1


# --- max_concurrency ----------------------------------------------------------------------------------------------


async def test_max_concurrency_holds_across_workers(redis: PoolRedis, redis_url: str) -> None:
    """Two workers with 10 slots each, 6 jobs of a function limited to 2: never more than 2 run at once,
    every job runs exactly once, and unlimited functions are not held up meanwhile."""
    limited = func(gated, max_concurrency=2)
    jobs = [await redis.enqueue_job("gated", f"g{i}") for i in range(6)]
    async with (
        running_worker(redis_url, functions=[limited, record], max_jobs=10),
        running_worker(redis_url, functions=[limited, record], max_jobs=10),
    ):
        await wait_for(lambda: redis.llen("starts"), timeout=5, message="limited jobs started")
        free_job = await redis.enqueue_job("record", "unlimited")
        assert free_job is not None
        assert await free_job.result(timeout=5) == "unlimited"  # not held up by the parked jobs
        assert int(await redis.get("active") or 0) == 2
        assert await redis.llen(KEYS.parked("gated")) == 4
        await redis.set("gate", 1)
        for job in jobs:
            assert job is not None
            await job.result(timeout=10)
    assert int(await redis.get("peak") or 0) == 2
    assert sorted(await order(redis, "starts")) == [f"g{i}" for i in range(6)]
    assert await redis.scard(KEYS.running("gated")) == 0 and await redis.llen(KEYS.parked("gated")) == 0


async def test_retried_job_frees_its_slot(redis: PoolRedis, redis_url: str) -> None:
    """Limit 1: each job asks for one retry; every retry frees the slot, and all of them finish."""
    limited_retry = func(retry_once, max_concurrency=1)
    jobs = [await redis.enqueue_job("retry_once", f"r{i}") for i in range(3)]
    await run_burst(redis_url, functions=[limited_retry], max_jobs=5)
    for i, job in enumerate(jobs):
        assert job is not None
        assert await job.result(timeout=1) == f"r{i}"
    assert sorted(await order(redis)) == sorted(f"r{i}#{t}" for i in range(3) for t in (1, 2))
    assert await redis.scard(KEYS.running("retry_once")) == 0


async def test_aborted_parked_job_does_not_block_the_ones_behind(redis: PoolRedis, redis_url: str) -> None:
    """Limit 1: the first job runs, two are parked; the first parked one is aborted. When the running job
    finishes, the aborted one is skipped and the last one runs."""
    limited = func(gated, max_concurrency=1)
    first, second, third = [await redis.enqueue_job("gated", name) for name in ("first", "second", "third")]
    assert first and second and third
    async with running_worker(redis_url, functions=[limited], max_jobs=5):

        async def two_parked() -> bool:
            return await redis.llen(KEYS.parked("gated")) == 2

        await wait_for(two_parked, timeout=5, message="two jobs parked")
        assert await second.status() == JobStatus.queued  # parked: waiting for a slot, reported as queued
        assert await second.abort(timeout=1) is True
        await redis.set("gate", 1)
        assert await first.result(timeout=5) == "first"
        assert await third.result(timeout=5) == "third"
    assert await order(redis, "starts") == ["first", "third"]


async def test_slot_of_a_dead_worker_is_freed_when_its_job_is_taken_over(redis: PoolRedis, redis_url: str) -> None:
    """Limit 1: a consumer dies holding the only slot. The job behind it stays parked (the slot is still taken:
    the job may be running somewhere), until the orphan is reclaimed and finishes; then it runs."""
    limited = func(retry_once, max_concurrency=1)
    orphan = await redis.enqueue_job("retry_once", "orphan")
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    started, _ = await queue.fetch("dead-consumer", 10, (3, 2, 1, 0), {"retry_once": 1})
    assert len(started) == 1
    behind = await redis.enqueue_job("retry_once", "behind")
    assert orphan and behind
    async with running_worker(redis_url, functions=[limited], heartbeat_interval=0.1):
        assert await orphan.result(timeout=5) == "orphan"
        assert await behind.result(timeout=5) == "behind"
    ran = await order(redis)
    assert ran.index("orphan#2") < ran.index("behind#1"), ran


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        func(record, max_concurrency=0)


# --- putting back what was read but will not run ------------------------------------------------------------------


async def report_try(ctx: dict[str, Any]) -> int:
    return int(ctx["job_try"])


async def test_stop_during_start_does_not_count_the_attempt(redis: PoolRedis, redis_url: str) -> None:
    """A stop that arrives while START runs (SIGQUIT and the read's reply ready in the same loop turn): the
    started job is put back with its attempt uncounted, so it later runs as try 1
    and a job can't reach max_tries without having run."""
    job = await redis.enqueue_job("report_try", _priority=1)
    assert job is not None
    worker = make_worker(redis_url, functions=[report_try])
    real_fetch = RedisQueue.fetch

    async def fetch_then_stop(queue: RedisQueue, *args: Any, **kwargs: Any) -> Any:
        result = await real_fetch(queue, *args, **kwargs)
        worker.request_stop()  # the stop lands while FETCH's reply (entries read and started) is on its way
        return result

    RedisQueue.fetch = fetch_then_stop  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(worker.main(), 15)
    finally:
        RedisQueue.fetch = real_fetch  # type: ignore[method-assign]
    fields = await redis.hmget(KEYS.job(job.job_id), ["t", "s"])
    assert fields == [b"0", b"q"]
    assert await redis.xlen(KEYS.lane(1)) == 1
    await run_burst(redis_url, functions=[report_try])
    assert await job.result(timeout=1) == 1


async def test_unread_undoes_only_this_consumers_start(redis: PoolRedis) -> None:
    await redis.enqueue_job("record", "a", _job_id="a")
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    deliveries = await queue.read("me", 10, None)
    started, _ = await queue.start("me", deliveries)
    assert [d.attempts for d in started] == [1]
    await queue.unread("someone-else", [])  # nothing to do
    await queue.unread("me", deliveries)
    assert await redis.hmget(KEYS.job("a"), ["t", "s", "e"]) == [b"0", b"q", None]
    assert await queue.counts() == {"ready": 1, "running": 0, "deferred": 0, "parked": 0}
    await queue.unread("me", deliveries)  # a replay acks nothing and adds nothing
    assert await redis.xlen(KEYS.stream) == 1


# --- slots that nobody passed on, a replayed START, the guard's rotation -------------------------------------------


@pytest.mark.parametrize("fate", ["aborted", "expired"])
async def test_parked_jobs_run_when_a_released_job_dies_before_it_starts(
    redis: PoolRedis, redis_url: str, fate: str
) -> None:
    """Limit 1: 'first' finishes and releases 'second' (its slot reserved), but 'second' never starts: it is
    aborted (ABORT passes the slot on at once) or its hash expires (nothing passes it on: the workers' sweep
    does, so 'third' does not wait forever). A burst worker does not call the queue drained
    while a job is parked."""
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    jobs = [await redis.enqueue_job("retry_once", name, _job_id=name) for name in ("first", "second", "third")]
    started, _ = await queue.fetch("c", 10, (3, 2, 1, 0), {"retry_once": 1})
    assert [d.job_id for d in started] == ["first"]
    assert (await queue.counts())["parked"] == 2
    first = started[0]
    await queue.complete([Completion(first.entry_id, "first", b"", 0, function=first.function)])  # releases 'second'
    assert (await queue.counts())["parked"] == 1
    if fate == "aborted":
        assert jobs[1] is not None and await jobs[1].abort(timeout=0) is True
        assert (await queue.counts())["parked"] == 0  # 'third' was released by the abort
    else:
        await redis.delete(KEYS.job("second"))  # what its _expires TTL running out does
    await run_burst(redis_url, functions=[func(retry_once, max_concurrency=1)])
    assert jobs[2] is not None and await jobs[2].result(timeout=1) == "third"
    assert await redis.scard(KEYS.running("retry_once")) == 0


async def test_replayed_start_does_not_restart_a_parked_job(redis: PoolRedis) -> None:
    """START parked P (acking its entry) but the reply was lost; meanwhile P was released on a new entry.
    redis-py replays START: it must not start P from the old entry (P would then run twice at once)."""
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    await redis.enqueue_job("retry_once", "holder", _job_id="holder")
    await redis.enqueue_job("retry_once", "p", _job_id="p")
    limits = {"retry_once": 1}
    holder = await queue.read("c1", 1, None)
    assert [d.job_id for d in (await queue.start("c1", holder, limits))[0]] == ["holder"]
    delivered = await queue.read("c2", 1, None)
    assert (await queue.start("c2", delivered, limits))[0] == []  # parked
    (holding,) = holder  # (START filled in its function)
    await queue.complete([Completion(holding.entry_id, "holder", b"", 0, function=holding.function)])  # releases p
    assert (await queue.start("c2", delivered, limits))[0] == []  # the replay starts nothing
    started, _ = await queue.fetch("c3", 10, (3, 2, 1, 0), limits)
    assert [(d.job_id, d.attempts) for d in started] == [("p", 1)]


async def test_starvation_guard_serves_each_lower_priority_in_turn(redis: PoolRedis, redis_url: str) -> None:
    """A flood of top-priority jobs with a backlog at priority 0 must not stop priorities 1 and 2."""
    specs = [redis.prepare("record", f"p3-{i}", _priority=3) for i in range(30)]
    specs += [redis.prepare("record", f"p{p}-{i}", _priority=p) for p in (0, 1, 2) for i in range(5)]
    await redis.enqueue_many(specs)
    await run_burst(redis_url, functions=[record], max_jobs=1)
    ran = await order(redis)
    last_top = max(i for i, name in enumerate(ran) if name.startswith("p3-"))
    for p in (0, 1, 2):
        first = ran.index(f"p{p}-0")
        assert first < last_top, f"priority {p} waited for the whole flood: {ran}"
    guard_picks = [ran[n * STARVATION_GUARD - 1] for n in (1, 2, 3)]
    assert guard_picks == ["p0-0", "p1-0", "p2-0"], ran
