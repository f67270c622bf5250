"""The paths that let every script declare its keys (for Redis Cluster), run on a single Redis.

- The worker's two-step pickup (XREADGROUP, then START) that replaces FETCH where FETCH cannot declare the keys of
  the jobs it reads: RedisQueue.fetch and the worker take it when the client is a cluster client
  (``pool.storage.queue.on_cluster``, made to answer yes here: the commands still go to a real Redis).
- The steps after a script that returned work on keys it could not declare (parked jobs given a slot, the
  dependents of a finished job): done at once by the storage layer, and by the periodic ops when that step is
  lost with its process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from redis.asyncio import Redis

from pool import JobStatus, PoolRedis, Retry, func
from pool.storage import queue as queue_module
from pool.storage.keys import CONSUMER_GROUP, QueueKeys
from pool.storage.queue import RedisQueue
from pool.storage.scripts import FETCH, SCRIPTS
from tests.test_storage_contract import keys_of, monitor_lines
from tests.worker_utils import run_burst

KEYS = QueueKeys("default")


async def record(ctx: dict[str, Any], name: str) -> str:
    await ctx["redis"].rpush("order", name)
    return name


async def fail(ctx: dict[str, Any]) -> None:
    raise ValueError("this job fails")


async def retry(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.05)
    return int(ctx["job_try"])


@pytest.fixture
def two_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """RedisQueues built from now on declare every key as on a cluster, and pick jobs up in two steps (a read,
    then START: a worker's path after a blocking read): no FETCH."""
    monkeypatch.setattr(queue_module, "on_cluster", lambda client: True)
    monkeypatch.setattr(queue_module, "ONE_STEP_FETCH", False)


async def test_two_step_fetch_reads_then_starts_in_the_order_asked_and_puts_the_rest_back(
    redis: PoolRedis, two_step: None
) -> None:
    await redis.enqueue_job("record", "low", _job_id="low")
    await redis.enqueue_job("record", "high", _job_id="high", _priority=3)
    queue = RedisQueue(redis, "default")
    assert not queue.one_step_fetch
    await queue.ensure_group()

    started, expired = await queue.fetch("c", 1, (0, 3, 2, 1), {})  # the starvation guard's turn: 0 first

    assert ([d.job_id for d in started], expired) == (["low"], [])
    assert (started[0].attempts, started[0].function) == (1, "record")
    assert await queue.counts() == {"ready": 1, "running": 1, "deferred": 0, "parked": 0}  # "high" put back
    assert await redis.hget(KEYS.job("high"), "t") == b"0"


async def test_a_worker_that_cannot_fetch_in_one_step_runs_every_job(
    redis: PoolRedis, redis_url: str, two_step: None
) -> None:
    """Limited functions, dependencies and priorities on the two-step path; FETCH is never sent (it would leave
    the consumer's fetched:<id> record)."""
    first = await redis.enqueue_job("record", "first", _job_id="first")
    jobs = [first]
    jobs.append(await redis.enqueue_job("record", "after", _job_id="after", _depends_on=[first]))
    jobs += [await redis.enqueue_job("record", f"limited-{i}", _priority=i % 4) for i in range(8)]

    await run_burst(redis_url, functions=[func(record, max_concurrency=2)], max_jobs=10)

    assert [await job.status() for job in jobs if job is not None] == [JobStatus.complete] * len(jobs)
    assert await redis.lrange("order", 0, -1) and not [k async for k in redis.scan_iter(match=KEYS.pattern("fetched:"))]
    assert await redis.scard(KEYS.running("record")) == 0


async def _complete_without_the_next_step(redis: PoolRedis, entry_id: str, job_id: str, function: str) -> Any:
    """COMPLETE alone (as RedisQueue.complete sends it), as if its process died before the step after it."""
    queue = RedisQueue(redis, "default")
    record = (entry_id, job_id, b"result", 60_000, 0, "", b"", 0, "", function)
    keys = [*KEYS.lane_keys, KEYS.aborts, KEYS.deferred, KEYS.failed, KEYS.releasing, *KEYS.finished(job_id)]
    keys += KEYS.slots(function)
    args = [KEYS.prefix, CONSUMER_GROUP, msgpack.packb([record], use_bin_type=False), "c"]
    return await queue.scripts.complete(keys=keys, args=args)


async def test_dependents_whose_release_was_lost_run_after_the_next_promotion(redis: PoolRedis) -> None:
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    first = await redis.enqueue_job("record", "first", _job_id="first")
    await redis.enqueue_job("record", "after", _job_id="after", _depends_on=[first])
    (delivery,), _ = await queue.fetch("c", 1, (3, 2, 1, 0), {})

    reply = await _complete_without_the_next_step(redis, delivery.entry_id, "first", delivery.function)
    assert reply[1] == [[b"first", b"after"]]
    assert await redis.hget(KEYS.job("after"), "s") == b"w"

    await queue.promote_due()  # every worker's scheduler runs it: it counts the releases left undone

    assert await redis.hget(KEYS.job("after"), "s") == b"q"
    assert await redis.hgetall(KEYS.releasing) == {}
    assert await queue.job_ids_in_stream() == ["after"]


async def test_a_parked_job_given_a_slot_whose_release_was_lost_is_released_by_the_sweep(redis: PoolRedis) -> None:
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    limits = {"record": 1}
    for name in ("holder", "parked"):
        await redis.enqueue_job("record", name, _job_id=name)
    (holder,), _ = await queue.fetch("c", 10, (3, 2, 1, 0), limits)  # "parked" parked behind it

    reply = await _complete_without_the_next_step(redis, holder.entry_id, "holder", holder.function)
    assert reply[0] == [b"record", b"parked"]  # the slot is passed on, the job not yet on its lane
    assert await redis.smembers(KEYS.running("record")) == {b"parked"}
    assert await queue.counts() == {"ready": 0, "running": 0, "deferred": 0, "parked": 1}

    assert await queue.sweep_parked(limits) == 1

    assert await redis.hget(KEYS.job("parked"), "s") == b"q"
    assert await queue.counts() == {"ready": 1, "running": 0, "deferred": 0, "parked": 0}
    started, _ = await queue.fetch("d", 10, (3, 2, 1, 0), limits)
    assert [d.job_id for d in started] == ["parked"]  # its slot was reserved for it


async def test_hand_back_passes_the_slot_of_a_limited_job_to_the_parked_one(redis: PoolRedis) -> None:
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    limits = {"record": 1}
    for name in ("holder", "parked"):
        await redis.enqueue_job("record", name, _job_id=name)
    await queue.fetch("gone", 10, (3, 2, 1, 0), limits)

    assert await queue.hand_back_consumer("gone") == 1

    assert await redis.smembers(KEYS.running("record")) == {b"parked"}
    assert await queue.counts() == {"ready": 2, "running": 0, "deferred": 0, "parked": 0}
    assert [c["name"] for c in await redis.xinfo_consumers(KEYS.stream, CONSUMER_GROUP)] == []


async def test_on_a_cluster_every_script_call_declares_every_key_its_script_touches(
    redis: PoolRedis, redis_url: str, two_step: None
) -> None:
    """What the storage layer sends for a client and a worker on Redis Cluster (the jobs' keys declared, FETCH
    replaced by a read and START), over most of a job's life: enqueues with dependencies, delays, priorities and
    callbacks, limited functions that park, retries, failures, an abort, results waited for. Every script call
    seen by MONITOR must declare each key the commands of its script name; and FETCH is never sent."""
    calls: list[tuple[list[bytes], list[list[bytes]]]] = []  # (a script call, the commands its script issued)
    marker = b"end of the workload"
    client = Redis.from_url(redis_url)

    async def trace() -> None:
        async for source, args in monitor_lines(monitor, marker):
            if source == b"lua":
                assert calls, f"a script's command with no script call before it: {args}"
                calls[-1][1].append(args)
            elif args[0].upper() in (b"EVALSHA", b"EVAL"):
                calls.append((args, []))

    async with client.monitor() as monitor:
        tracer = asyncio.create_task(trace())
        first = await redis.enqueue_job("record", "first", _job_id="first", _on_success="record")
        failing = await redis.enqueue_job("fail", _job_id="failing")
        jobs = [first, await redis.enqueue_job("record", "after", _depends_on=[first], _priority=2)]
        jobs.append(await redis.enqueue_job("record", "after failing", _depends_on=[failing]))
        jobs += [await redis.enqueue_job("record", f"limited {i}", _priority=i % 4) for i in range(6)]
        jobs.append(await redis.enqueue_job("retry", _job_id="retried", _defer_by=0.05))
        aborted = await redis.enqueue_job("record", "aborted", _defer_by=3600)
        assert aborted is not None and await aborted.abort(timeout=0)
        await run_burst(
            redis_url, functions=[func(record, max_concurrency=1), fail, retry], max_jobs=10, poll_delay=0.05
        )
        assert first is not None and await first.result(timeout=1) == "first"
        await client.echo(marker)
        await asyncio.wait_for(tracer, 10)
    await client.aclose()

    assert [await j.status() for j in jobs if j is not None] == [JobStatus.complete] * len(jobs)
    fetch_sha = (await redis.script_load(FETCH)).encode()
    sources = {source.encode() for source in SCRIPTS.values()}
    seen = set()
    for call, commands in calls:
        if call[0].upper() == b"EVAL" and call[1] not in sources:
            continue  # a job's own EVAL (none here) or the test's
        assert call[1] != fetch_sha and call[1] != FETCH.encode(), "FETCH was sent on the cluster's path"
        numkeys = int(call[2])
        declared = set(call[3 : 3 + numkeys])
        for command in commands:
            undeclared = [key for key in await keys_of(redis, command) if key not in declared]
            assert not undeclared, f"{command[:2]} touches {undeclared}, not declared by its call"
        seen.add(call[1])
    assert len(seen) >= 8, f"only {len(seen)} scripts were seen"
