"""A FETCH whose reply was lost (the connection dropped after Redis ran it) is replayed by redis-py with the same
arguments. FETCH reads new entries and starts them (counts their attempt) in one step, so a replay that read
the next entries instead would leave the first ones started under a worker that never learnt of them, until the
idle-time reclaim hands them over and START counts their attempt again: with max_tries=1 a job could fail for
good without its function ever running. The replay must answer the entries the first run read."""

from __future__ import annotations

from typing import Any

from pool import PoolRedis, func
from pool.storage.scripts import FETCH
from tests.helpers import wait_for
from tests.proxy import DropOneReplyProxy, port_of
from tests.worker_utils import running_worker

JOBS = 12


async def test_a_fetch_whose_reply_was_lost_runs_every_job_once_with_its_first_try(
    redis: PoolRedis, redis_url: str
) -> None:
    tries: list[tuple[str, int]] = []

    async def record(ctx: dict[str, Any]) -> None:
        tries.append((ctx["job_id"], ctx["job_try"]))

    for i in range(JOBS):
        assert await redis.enqueue_job("record", _job_id=f"j{i}") is not None
    proxy = DropOneReplyProxy(port_of(redis_url))
    proxy_url = f"redis://127.0.0.1:{await proxy.start()}"
    await redis.script_load(FETCH)  # so the call that gets cut is the one that runs
    proxy.drop_reply_of(FETCH)  # the worker's first FETCH: it reads and starts entries, its reply is lost
    try:
        functions = [func(record, name="record", max_tries=1)]
        # a long heartbeat: entries started under the worker without its knowledge would wait for the idle-time
        # reclaim (3 heartbeats) far beyond the deadline, instead of running now
        async with running_worker(proxy_url, functions=functions, max_jobs=8, heartbeat_interval=30):
            await wait_for(lambda: len(tries) >= JOBS, timeout=5, message="every job ran")
            assert proxy.dropped == 1
    finally:
        await proxy.close()
    assert sorted(tries) == sorted((f"j{i}", 1) for i in range(JOBS)), "a job ran twice, or not on its first try"
    for i in range(JOBS):
        assert (await redis.hgetall(f"pool:{{default}}:job:j{i}")) == {}  # finished: COMPLETE deleted it
