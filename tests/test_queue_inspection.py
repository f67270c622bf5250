"""Queue inspection and maintenance (pool/client/inspection.py): what emptying a queue leaves behind, what queue_info
counts, queue names that look like glob patterns, and the failed registry's index staying bounded.

Jobs are driven through the storage layer (RedisQueue: ENQUEUE, XREADGROUP, START, COMPLETE) on a real Redis,
so a test needs no worker process and stays quick.
"""

from __future__ import annotations

from typing import Any

import pytest

from pool import JobStatus, PoolRedis
from pool.jobs import Job
from pool.storage.codecs import serialize_result
from pool.storage.queue import Completion, Delivery, RedisQueue, queue_for
from pool.utils import now_ms
from tests.helpers import wait_for

CONSUMER = "test-consumer"


def _payload(queue: RedisQueue, job_id: str, *, success: bool) -> bytes:
    result: Any = "done" if success else ValueError(f"{job_id} broke")
    now = now_ms()
    return serialize_result(
        function="record",
        args=(job_id,),
        kwargs={},
        attempts=1,
        enqueue_ms=now,
        success=success,
        result=result,
        start_ms=now,
        finish_ms=now,
        queue_name=queue.name,
        job_id=job_id,
        serializer=None,
    )


async def _start(redis: PoolRedis, queue_name: str, job_ids: list[str]) -> tuple[RedisQueue, list[Delivery]]:
    """Enqueue the jobs and start them as this test's consumer (what a worker does before running them)."""
    for job_id in job_ids:
        assert await redis.enqueue_job("record", job_id, _job_id=job_id, _queue_name=queue_name)
    queue = queue_for(redis, queue_name)
    await queue.ensure_group()
    deliveries = await queue.read(CONSUMER, len(job_ids), None)
    started, _ = await queue.start(CONSUMER, deliveries)
    assert sorted(d.job_id for d in started) == sorted(job_ids)
    return queue, started


async def _finish(
    redis: PoolRedis, queue_name: str, job_ids: list[str], *, failure_ttl_ms: int = 0, keep_ms: int = 60_000
) -> None:
    """Run the jobs to their end in one COMPLETE call: successes, or failures kept for failure_ttl_ms."""
    queue, started = await _start(redis, queue_name, job_ids)
    success = failure_ttl_ms == 0
    await queue.complete(
        [
            Completion(d.entry_id, d.job_id, _payload(queue, d.job_id, success=success), keep_ms, failure_ttl_ms)
            for d in started
        ]
    )


async def _keys(redis: PoolRedis, queue_name: str) -> set[str]:
    prefix = f"pool:{{{queue_name}}}:"
    return {key.decode() for key in await redis.keys("*") if key.decode().startswith(prefix)}


# --- emptying a queue ------------------------------------------------------------------------------------------


async def test_emptying_a_queue_removes_the_jobs_waiting_on_the_emptied_ones(redis: PoolRedis) -> None:
    later = await redis.enqueue_job("record", "later", _job_id="later", _defer_by=60)
    child = await redis.enqueue_job("record", "child", _job_id="child", _depends_on="later")
    grandchild = await redis.enqueue_job("record", "grandchild", _job_id="grandchild", _depends_on=["child"])
    assert later and child and grandchild
    assert await child.status() == JobStatus.deferred

    assert await redis.empty_queue() == 3

    for job in (later, child, grandchild):
        assert await job.status() == JobStatus.not_found
    left = await _keys(redis, "default")
    assert not {key for key in left if ":job:" in key or ":dependents:" in key}, left
    assert (await redis.queue_info())["deferred"] == 0


async def test_emptying_a_queue_removes_jobs_waiting_on_a_running_one_and_the_running_one_finishes(
    redis: PoolRedis,
) -> None:
    queue, (running,) = await _start(redis, "default", ["runs"])
    waiting = await redis.enqueue_job("record", "waits", _job_id="waits", _depends_on="runs")
    assert waiting is not None

    assert await redis.empty_queue() == 1

    assert await waiting.status() == JobStatus.not_found
    assert await Job("runs", redis).status() == JobStatus.in_progress
    payload = _payload(queue, "runs", success=True)
    await queue.complete([Completion(running.entry_id, "runs", payload, 60_000)])
    assert await Job("runs", redis).result(timeout=1) == "done"
    no_ttl = [key for key in await _keys(redis, "default") if ":job:" in key or ":dependents:" in key]
    assert no_ttl == []


async def test_emptying_a_queue_finds_waiting_jobs_through_dependents_sets_alone(redis: PoolRedis) -> None:
    """Jobs enqueued while nothing listed waiting jobs (as before the ``waiting`` set) are removed too."""
    assert await redis.enqueue_job("record", "later", _job_id="later", _defer_by=60)
    child = await redis.enqueue_job("record", "child", _job_id="child", _depends_on="later")
    grandchild = await redis.enqueue_job("record", "grandchild", _job_id="grandchild", _depends_on="child")
    assert child and grandchild
    await redis.delete(queue_for(redis, "default").keys.waiting)

    assert await redis.empty_queue() == 3

    assert await child.status() == JobStatus.not_found and await grandchild.status() == JobStatus.not_found
    assert [key for key in await _keys(redis, "default") if ":job:" in key or ":dependents:" in key] == []


async def test_queue_info_counts_jobs_waiting_for_dependencies_as_deferred(redis: PoolRedis) -> None:
    assert await redis.enqueue_job("record", "later", _job_id="later", _defer_by=60)
    assert await redis.enqueue_job("record", "child", _job_id="child", _depends_on="later")
    assert await redis.enqueue_job("record", "other", _job_id="other", _depends_on=["later", "child"])

    info = await redis.queue_info()

    assert info == {"ready": 0, "running": 0, "deferred": 3, "parked": 0, "failed": 0}
    assert await Job("other", redis).abort(timeout=1)  # a waiting job aborted is no longer counted
    assert (await redis.queue_info())["deferred"] == 2


async def test_a_dependent_released_by_its_dependency_is_counted_ready_not_deferred(redis: PoolRedis) -> None:
    queue, (running,) = await _start(redis, "default", ["dep"])
    assert await redis.enqueue_job("record", "child", _job_id="child", _depends_on="dep")
    assert (await redis.queue_info())["deferred"] == 1

    await queue.complete([Completion(running.entry_id, "dep", _payload(queue, "dep", success=True), 60_000)])

    info = await redis.queue_info()
    assert (info["ready"], info["deferred"]) == (1, 0)


# --- queue names that are glob patterns --------------------------------------------------------------------------

# each name, as an unescaped SCAN MATCH pattern, also matches one or more of the bystander queues
GLOB_NAMES = ["q?", "q*", "q[ab]", "q\\", "q[", "q]"]
BYSTANDERS = ["qa", "qb", "q1", "qxyz", "q"]


async def _fill(redis: PoolRedis, queue_name: str) -> None:
    await _finish(redis, queue_name, [f"{queue_name}-done"])
    assert await redis.enqueue_job("record", "x", _job_id=f"{queue_name}-waiting", _queue_name=queue_name)


@pytest.fixture
async def glob_queues(redis: PoolRedis) -> PoolRedis:
    for name in GLOB_NAMES + BYSTANDERS:
        await _fill(redis, name)
    return redis


@pytest.mark.parametrize("name", GLOB_NAMES)
async def test_deleting_a_queue_named_like_a_glob_leaves_other_queues_alone(glob_queues: PoolRedis, name: str) -> None:
    redis = glob_queues
    before = {other: await _keys(redis, other) for other in GLOB_NAMES + BYSTANDERS if other != name}

    assert await redis.delete_queue(name) > 0

    assert await _keys(redis, name) == set()
    assert {other: await _keys(redis, other) for other in before} == before


@pytest.mark.parametrize("name", GLOB_NAMES)
async def test_listing_a_queue_named_like_a_glob_shows_only_its_own_jobs(glob_queues: PoolRedis, name: str) -> None:
    redis = glob_queues

    statuses = await redis.job_statuses(name)
    results = await redis.all_job_results(name)
    result_ids = await queue_for(redis, name).result_job_ids()

    assert statuses == [(f"{name}-done", JobStatus.complete), (f"{name}-waiting", JobStatus.queued)]
    assert [r.job_id for r in results] == [f"{name}-done"]
    assert result_ids == [f"{name}-done"]


# --- the failed registry's index ---------------------------------------------------------------------------------


async def _wait_until_expired(redis: PoolRedis, queue_name: str, job_ids: list[str]) -> None:
    keys = [queue_for(redis, queue_name).keys.failed_job(job_id) for job_id in job_ids]
    await wait_for(lambda: _none_exist(redis, keys), message="failure records expired")


async def _none_exist(redis: PoolRedis, keys: list[str]) -> bool:
    return int(await redis.exists(*keys)) == 0


async def test_expired_failures_leave_the_registry_index_as_more_failures_arrive(redis: PoolRedis) -> None:
    early = [f"early-{i}" for i in range(400)]
    await _finish(redis, "default", early, failure_ttl_ms=1)
    await _wait_until_expired(redis, "default", early)
    registry = queue_for(redis, "default").keys.failed

    for i in range(4):  # later failures, one at a time, each kept for a minute
        await _finish(redis, "default", [f"late-{i}"], failure_ttl_ms=60_000)

    assert await redis.zcard(registry) < 50
    assert (await redis.queue_info())["failed"] == 4
    assert sorted(r.job_id or "" for r in await redis.failed_jobs()) == [f"late-{i}" for i in range(4)]


async def test_a_replayed_completion_of_failures_records_them_once(redis: PoolRedis) -> None:
    queue, started = await _start(redis, "default", ["a", "b"])
    completions = [
        Completion(d.entry_id, d.job_id, _payload(queue, d.job_id, success=False), 0, 60_000) for d in started
    ]

    await queue.complete(completions)
    await queue.complete(completions)  # what redis-py does when the first reply was lost

    assert await redis.zcard(queue.keys.failed) == 2
    assert (await redis.queue_info())["failed"] == 2


async def _commands_run(redis: PoolRedis) -> int:
    """Commands Redis ran so far, except INFO itself (read from INFO commandstats)."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def _commands_of_queue_info(redis: PoolRedis) -> tuple[int, int]:
    before = await _commands_run(redis)
    failed = (await redis.queue_info())["failed"]
    return failed, await _commands_run(redis) - before


async def test_queue_info_counts_live_failures_in_a_constant_number_of_commands(redis: PoolRedis) -> None:
    await _finish(redis, "default", ["live-0"], failure_ttl_ms=60_000)
    few = await _commands_of_queue_info(redis)

    await _finish(redis, "default", [f"gone-{i}" for i in range(300)], failure_ttl_ms=1)
    await _finish(redis, "default", [f"live-{i}" for i in range(1, 300)], failure_ttl_ms=60_000)
    await _wait_until_expired(redis, "default", [f"gone-{i}" for i in range(300)])
    many = await _commands_of_queue_info(redis)

    assert few[0] == 1 and many[0] == 300
    assert many[1] == few[1], f"queue_info ran {few[1]} commands with 1 failure, {many[1]} with 600"


async def _legacy_failure(redis: PoolRedis, job_id: str) -> None:
    """A failure as recorded before the registry was scored by expiry: the member scored by its failure time."""
    queue = queue_for(redis, "default")
    await redis.set(queue.keys.failed_job(job_id), _payload(queue, job_id, success=False), px=60_000)
    await redis.zadd(queue.keys.failed, {job_id: now_ms() - 1000})


async def test_failures_indexed_by_failure_time_are_counted_once_a_failure_or_a_listing_reindexes_them(
    redis: PoolRedis,
) -> None:
    await _legacy_failure(redis, "old-1")
    await _finish(redis, "default", ["new-1"], failure_ttl_ms=60_000)
    assert (await redis.queue_info())["failed"] == 2

    await _legacy_failure(redis, "old-2")
    assert sorted(r.job_id or "" for r in await redis.failed_jobs()) == ["new-1", "old-1", "old-2"]
    assert (await redis.queue_info())["failed"] == 3
