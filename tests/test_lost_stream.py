"""A queue's stream or consumer group deleted under running workers (``DEL``, ``XTRIM MAXLEN 0``, ``XGROUP
DESTROY``, a FLUSHALL): jobs that were running still get their results recorded, none runs twice, and the
worker says what happened.

Workers run in-process so the jobs can be held on events while the stream is pulled out from under them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest

from pool import PoolRedis, func
from pool.jobs import Job, JobStatus
from pool.storage import ops
from pool.storage.drivers import run
from pool.storage.keys import CONSUMER_GROUP, QueueKeys
from pool.storage.queue import Completion, RedisQueue
from tests.helpers import wait_for
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")


class HeldJobs:
    """A job function that counts its runs and waits until the test releases it."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.release = asyncio.Event()

    @property
    def functions(self) -> list[Any]:
        return [func(self.held, name="held")]

    async def held(self, ctx: dict[str, Any], value: int) -> int:
        self.runs[ctx["job_id"]] += 1
        await self.release.wait()
        return value * 2


async def _enqueue(redis: PoolRedis, count: int) -> list[Job]:
    jobs = [await redis.enqueue_job("held", i) for i in range(count)]
    assert all(job is not None for job in jobs)
    return [job for job in jobs if job is not None]


async def _all_complete(jobs: list[Job]) -> bool:
    return all([await job.status() == JobStatus.complete for job in jobs])


def _lost_group_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "'default'" in r.getMessage() and "consumer group" in r.getMessage()
    ]


@pytest.mark.parametrize("how", ["DEL", "XTRIM MAXLEN 0"])
async def test_deleting_the_stream_under_running_jobs_keeps_their_results(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO, logger="pool")
    held = HeldJobs()
    jobs = await _enqueue(redis, 3)
    async with running_worker(redis_url, functions=held.functions, heartbeat_interval=0.2) as worker:
        await wait_for(lambda: sum(held.runs.values()) == 3, message="3 jobs running")
        if how == "DEL":
            await redis.delete(KEYS.stream)
        else:
            await redis.xtrim(KEYS.stream, maxlen=0)
        held.release.set()
        await wait_for(lambda: _all_complete(jobs), timeout=5, message="all jobs complete")
        if how == "DEL":  # a trim leaves the group in place: nothing to recreate, nothing to say
            await wait_for(lambda: _lost_group_warnings(caplog), message="a warning that the stream was lost")
        assert [await job.result(timeout=1) for job in jobs] == [0, 2, 4]
        assert worker.jobs_complete == 3
    assert set(held.runs.values()) == {1}


async def test_destroying_the_group_under_running_jobs_runs_none_twice(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pool")
    held = HeldJobs()
    jobs = await _enqueue(redis, 3)
    async with running_worker(redis_url, functions=held.functions, heartbeat_interval=0.2, worker_id="first"):
        await wait_for(lambda: sum(held.runs.values()) == 3, message="3 jobs running on the first worker")
        async with running_worker(redis_url, functions=held.functions, heartbeat_interval=0.2, worker_id="second"):
            await redis.xgroup_destroy(KEYS.stream, CONSUMER_GROUP)

            async def redelivered() -> bool:
                # the recreated group (read from id 0) delivered the running jobs' entries again
                try:
                    return int((await redis.xpending(KEYS.stream, CONSUMER_GROUP))["pending"]) == 3
                except Exception:
                    return False

            await wait_for(redelivered, timeout=5, message="the running entries delivered again")
            more = await _enqueue(redis, 2)  # the recreated group serves new jobs too
            await wait_for(lambda: sum(held.runs.values()) >= 5, message="the new jobs running")
            held.release.set()
            await wait_for(lambda: _all_complete(jobs + more), timeout=5, message="all jobs complete")
    assert dict(held.runs) == {job.job_id: 1 for job in jobs + more}
    assert _lost_group_warnings(caplog)


async def test_complete_of_a_vanished_entry_records_only_the_run_that_start_marked(redis: PoolRedis) -> None:
    """The storage contract behind the worker tests: with the stream deleted, COMPLETE records the result of
    the consumer START marked, ignores another consumer's (a worker the job was taken over from), and a replay
    of the call changes nothing."""
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    await redis.enqueue_job("held", 1, _job_id="j")
    (delivery,), _ = await queue.fetch("runner", 1, (3, 2, 1, 0), {})
    await redis.delete(KEYS.stream)
    await queue.complete([Completion(delivery.entry_id, "j", b"stale", -1)], "previous-owner")
    assert await redis.get(KEYS.result("j")) is None
    await queue.complete([Completion(delivery.entry_id, "j", b"mine", -1)], "runner")
    await queue.complete([Completion(delivery.entry_id, "j", b"replayed", -1)], "runner")
    assert await redis.get(KEYS.result("j")) == b"mine"
    assert not await redis.exists(KEYS.job("j"))


async def test_an_entry_read_again_after_the_group_was_recreated_goes_back_to_the_worker_running_it(
    redis: PoolRedis,
) -> None:
    """A recreated group delivers a running job's entry again; a worker that reads it as an extra and puts it
    back (UNREAD) hands it to the worker running the job rather than queueing the job a second time."""
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    await redis.enqueue_job("held", 1, _job_id="j")
    (running,), _ = await queue.fetch("runner", 1, (3, 2, 1, 0), {})
    await redis.xgroup_destroy(KEYS.stream, CONSUMER_GROUP)
    await queue.ensure_group()
    (again,) = await queue.read("other", 10, None)
    assert again.entry_id == running.entry_id
    await queue.unread("other", [again])
    pending = await redis.xpending_range(KEYS.stream, CONSUMER_GROUP, "-", "+", 10)
    assert [(p["message_id"].decode(), p["consumer"].decode()) for p in pending] == [(running.entry_id, "runner")]
    assert await redis.xlen(KEYS.stream) == 1  # not queued a second time
    await queue.complete([Completion(running.entry_id, "j", b"done", -1)], "runner")
    assert await redis.get(KEYS.result("j")) == b"done"


async def test_jobs_queued_in_a_deleted_stream_are_put_back_and_run(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker that recreates the lost group puts back the jobs still queued whose entries went with the
    stream; each runs once (jobs enqueued after the loss, with entries of their own, are not doubled)."""
    caplog.set_level(logging.INFO, logger="pool")
    held = HeldJobs()
    async with running_worker(redis_url, functions=held.functions, heartbeat_interval=0.2, max_jobs=1):
        first = await _enqueue(redis, 1)
        await wait_for(lambda: sum(held.runs.values()) == 1, message="the first job running")
        queued = await _enqueue(redis, 3)  # waiting for the worker's only slot
        await redis.delete(KEYS.stream)
        await wait_for(lambda: _lost_group_warnings(caplog), message="the loss noticed")
        after = await _enqueue(redis, 2)
        held.release.set()
        jobs = first + queued + after
        await wait_for(lambda: _all_complete(jobs), timeout=5, message="all jobs complete")
    assert dict(held.runs) == {job.job_id: 1 for job in jobs}
    assert any("put 3 queued jobs back" in r.getMessage() for r in caplog.records)


async def test_restore_puts_back_only_queued_jobs_without_an_entry_and_is_safe_to_replay(redis: PoolRedis) -> None:
    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    await redis.enqueue_job("held", 1, _job_id="lost")
    ((entry_id, _),) = await redis.xrange(KEYS.stream)
    await redis.xdel(KEYS.stream, entry_id)  # its entry went with the stream
    _, last_id = await run(redis, ops.lane_job_ids(KEYS.stream))  # the caller's listing: empty
    await redis.enqueue_job("held", 2, _job_id="fresh")  # queued after the listing, with an entry of its own
    job_ids = ["lost", "fresh", "gone"]
    keys = [*KEYS.lane_keys, *map(KEYS.job, job_ids)]  # (see RESTORE_QUEUED's header)
    args = [KEYS.prefix, 0, last_id, *job_ids]
    assert await queue.scripts.restore_queued(keys=keys, args=args) == 1
    assert await queue.scripts.restore_queued(keys=keys, args=args) == 0  # a replay
    assert sorted(await queue.job_ids_in_stream()) == ["fresh", "lost"]
