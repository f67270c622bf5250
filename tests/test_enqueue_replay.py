"""An ENQUEUE call replayed after its reply was lost (redis-py re-sends a command whose connection dropped, even
when Redis had run it) is recognised as the same call for as long as a replay can come, whatever became of the
job meanwhile: it answers "enqueued" and creates nothing, even after the job finished and its hash is gone."""

from __future__ import annotations

import pytest

from pool import PoolRedis
from pool.storage.keys import QueueKeys
from pool.storage.queue import RedisQueue, enqueue_args, job_record
from pool.storage.scripts import ENQUEUE
from pool.utils import now_ms
from tests.job_functions import count_run
from tests.proxy import client_through_proxy
from tests.worker_utils import run_burst

KEYS = QueueKeys("default")


@pytest.mark.parametrize("keep_result", [0, 3600])
async def test_an_enqueue_replayed_after_its_job_finished_answers_enqueued_and_runs_nothing_again(
    redis: PoolRedis, redis_url: str, keep_result: int
) -> None:
    scripts = redis._queue(None).scripts
    spec = redis.prepare("count_run", _job_id="once")
    now = now_ms()
    record = job_record(
        KEYS, spec.job_id, spec.payload, score_ms=now, now_ms=now, expires_ms=60_000, function="count_run"
    )
    keys, args = enqueue_args(KEYS, [record])  # one call: the same nonce and arguments both times

    assert await scripts.enqueue(keys=keys, args=args) == [1]
    await run_burst(redis_url, functions=[count_run], keep_result=keep_result)
    assert await redis.get("runs:once") == b"1"
    assert not await redis.exists(KEYS.job("once"))  # COMPLETE deleted the hash

    replayed = await scripts.enqueue(keys=keys, args=args)  # the reply of the first was lost: redis-py re-sends

    assert replayed == [1], "a replay of an enqueue that succeeded was reported as refused (id taken)"
    assert not await redis.exists(KEYS.job("once")), "the replay enqueued the finished job a second time"
    assert await redis.xlen(KEYS.stream) == 0
    await run_burst(redis_url, functions=[count_run], keep_result=keep_result)
    assert await redis.get("runs:once") == b"1"


async def test_a_new_enqueue_of_a_finished_id_is_still_answered_by_its_own_merits(
    redis: PoolRedis, redis_url: str
) -> None:
    """The replay marker belongs to one call: another call with the same id (a new nonce) is judged as before:
    enqueued again when keep_result=0 freed the id, refused while the result is kept."""
    assert await redis.enqueue_job("count_run", _job_id="free") is not None
    await run_burst(redis_url, functions=[count_run], keep_result=0)
    assert await redis.enqueue_job("count_run", _job_id="free") is not None
    await run_burst(redis_url, functions=[count_run], keep_result=3600)
    assert await redis.get("runs:free") == b"2"
    assert await redis.enqueue_job("count_run", _job_id="free") is None


async def test_an_enqueue_replayed_after_a_lost_reply_reports_enqueued(redis: PoolRedis, redis_url: str) -> None:
    """The reply of enqueue_job's ENQUEUE is lost after Redis ran it; redis-py's retry sends it again, and the
    caller still gets its Job (not None, "id taken"): the replay is recognised as the same call."""
    async with client_through_proxy(redis_url) as (via_proxy, proxy):
        await redis.script_load(ENQUEUE)
        proxy.drop_reply_of(ENQUEUE)
        job = await via_proxy.enqueue_job("count_run")  # a fresh uuid id: nobody else can hold it
        assert proxy.dropped == 1
        ids = await RedisQueue(redis, "default").job_ids_in_stream()
        assert job is not None, f"enqueue_job returned None (id taken) but the job was enqueued: {ids}"
