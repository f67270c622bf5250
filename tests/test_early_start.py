"""A job enqueued on its own has its stream entry carry the job, so an idle worker begins it as soon as START is
on the wire, not after START's reply (one round trip less per pickup: see docs/performance.md). START's verdict
still decides: a job it does not confirm is cancelled and its outcome dropped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pool import PoolRedis, func
from pool.storage.keys import QueueKeys
from pool.storage.queue import RedisQueue
from tests.helpers import wait_for
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")
BEGAN: list[str] = []


async def mark(ctx: dict[str, Any]) -> int:
    BEGAN.append(ctx["job_id"])
    return int(ctx["job_try"])


async def long(ctx: dict[str, Any]) -> str:
    await asyncio.sleep(30)
    await ctx["redis"].set(f"finished:{ctx['job_id']}", 1)
    return "ran"


async def blocked_reader(redis: PoolRedis) -> bool:
    """The worker is idle: blocked in its XREADGROUP (a job enqueued now meets the blocked read, not a FETCH)."""
    return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in await redis.client_list())


async def entry_fields(redis: PoolRedis) -> list[set[bytes]]:
    return [set(fields) for _, fields in await redis.xrange(KEYS.stream)]


async def test_a_job_enqueued_alone_has_its_entry_carry_it_and_a_bulk_call_does_not(redis: PoolRedis) -> None:
    await redis.enqueue_job("mark")
    assert await entry_fields(redis) == [{b"id", b"d", b"t", b"sc", b"f"}]
    await redis.delete(KEYS.stream)
    await redis.enqueue_many([redis.prepare("mark"), redis.prepare("mark")])
    await redis.enqueue_job("mark", "x" * 20_000)  # a payload past EARLY_PAYLOAD_BYTES stays in the hash only
    assert await entry_fields(redis) == [{b"id"}] * 3


async def test_an_idle_worker_begins_a_job_enqueued_alone_before_start_answers(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    began_at_reply: list[list[str]] = []
    start = RedisQueue.start

    async def recording_start(self: RedisQueue, *args: Any, **kwargs: Any) -> Any:
        reply = await start(self, *args, **kwargs)
        began_at_reply.append(list(BEGAN))
        return reply

    monkeypatch.setattr(RedisQueue, "start", recording_start)
    async with running_worker(redis_url, functions=[func(mark, name="mark")]) as worker:
        await wait_for(lambda: blocked_reader(redis), message="the worker blocked in its read")
        job = await redis.enqueue_job("mark")
        assert job is not None
        assert await job.result(timeout=10) == 1  # its attempt counted once: job_try 1
        assert [job.job_id in began for began in began_at_reply] == [True]
        assert worker.jobs_complete == 1


async def test_a_job_begun_early_that_start_refuses_is_cancelled_and_writes_nothing(
    redis: PoolRedis, redis_url: str
) -> None:
    """The job's id was aborted between its enqueue and START (a result recorded, the hash gone): START acks the
    entry and answers false; the job begun meanwhile is cancelled, and the aborted result stays as it was."""
    async with running_worker(redis_url, functions=[func(long, name="long")]) as worker:
        await wait_for(lambda: blocked_reader(redis), message="the worker blocked in its read")
        payload = redis.prepare("long", _job_id="gone").payload
        await redis.set(KEYS.result("gone"), b"aborted")
        now = str(int(time.time() * 1000))
        await redis.xadd(KEYS.stream, {"id": "gone", "d": payload, "t": "0", "sc": now, "f": "long"})
        await wait_for(lambda: worker.jobs_started == 1, message="the job began before START answered")
        await wait_for(lambda: not worker._running, message="the job was cancelled")
        assert await redis.get(KEYS.result("gone")) == b"aborted"
        assert await redis.xlen(KEYS.stream) == 0  # START acked and deleted the entry
        assert not await redis.exists("finished:gone")
        assert worker.jobs_complete == 0 and worker.jobs_failed == 0
