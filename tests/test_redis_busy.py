"""Redis answers BUSY to every other client while a slow Lua script runs (past ``busy-reply-threshold``), LOADING
while it loads its data, TRYAGAIN / MASTERDOWN / CLUSTERDOWN while a cluster or replica settles. None of these ran
the command: the worker retries them with backoff like a lost connection, so a job whose result meets one is not
given up (to run again later) but recorded once the server answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    ResponseError,
    TryAgainError,
)

from pool import RedisSettings, create_pool
from pool.redis.retries import transient
from pool.storage.keys import QueueKeys
from tests.helpers import BUSY_SCRIPT, wait_for
from tests.redis_server import RedisServer
from tests.supervisor_utils import Supervisor
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")
JOBS = 300
BUSY_MS = 2500

runs: Counter[str] = Counter()


async def work(ctx: dict[str, Any], ms: int) -> int:
    runs[ctx["job_id"]] += 1  # counted in this process: the job's own Redis commands would meet BUSY too
    await asyncio.sleep(ms / 1000)
    return ms


async def test_a_busy_script_on_the_server_does_not_make_any_job_run_twice(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(config={"lua-time-limit": "50"})
    runs.clear()
    client = await create_pool(RedisSettings.from_dsn(server.url))
    busy_client = redis.asyncio.Redis.from_url(server.url)
    try:
        await client.enqueue_many(client.prepare("work", 20 + i % 60, _job_id=f"j{i}") for i in range(JOBS))
        async with running_worker(server.url, functions=[work], max_jobs=10, heartbeat_interval=0.2, poll_delay=0.1):
            await wait_for(lambda: len(runs) >= 30, timeout=10, message="30 jobs started")
            # jobs finish (and write their results) all through the busy period
            assert await busy_client.eval(BUSY_SCRIPT, 0, BUSY_MS) == 1
            results = await wait_for(lambda: _results(client), timeout=20, message=f"{JOBS} results")
        assert results == JOBS
        twice = {job_id: n for job_id, n in runs.items() if n > 1}
        assert not twice, f"{len(twice)} jobs ran more than once: {sorted(twice)[:10]}"
        assert len(runs) == JOBS
    finally:
        await busy_client.aclose()
        await client.aclose()


async def _results(client: Any) -> int:
    count = sum([await client.exists(KEYS.result(f"j{i}")) for i in range(JOBS)])
    return count if count == JOBS else 0


def test_only_replies_that_mean_the_command_did_not_run_yet_count_as_transient() -> None:
    for error in (
        ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."),
        BusyLoadingError("Redis is loading the dataset in memory"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
        ClusterDownError("The cluster is down"),
        ResponseError("Command # 1 (XCLAIM s g c 0 1-1) of pipeline caused error: ('BUSY Redis is busy running',)"),
        ConnectionError("lost"),
    ):
        assert transient(error), error
    for error in (
        ResponseError("BUSYGROUP Consumer Group name already exists"),
        ResponseError("ERR Error running script"),
        ResponseError("NOGROUP No such key"),
        ResponseError("Command # 1 (XCLAIM s g c 0 1-1) of pipeline caused error: ('NOGROUP No such key',)"),
        ValueError("x"),
    ):
        assert not transient(error), error


async def test_a_worker_starting_while_redis_is_busy_waits_for_it_and_then_serves(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """Under the supervisor, a worker that fails to boot five times in a row stops the whole supervisor: a busy
    period while workers are (re)started must not count as a failure."""
    server = redis_server_factory(config={"lua-time-limit": "50"})
    runs.clear()
    client = await create_pool(RedisSettings.from_dsn(server.url))
    busy_client = redis.asyncio.Redis.from_url(server.url)
    probe = redis.asyncio.Redis.from_url(server.url)
    try:
        await client.enqueue_job("work", 1, _job_id="after-busy")
        busy = asyncio.create_task(busy_client.eval(BUSY_SCRIPT, 0, 1500))
        await wait_for(lambda: _answers_busy(probe), message="Redis answering BUSY")
        async with running_worker(server.url, functions=[work], poll_delay=0.1) as worker:
            await wait_for(lambda: worker._queue is not None, timeout=10, message="the worker started")
            assert await busy == 1
            await wait_for(lambda: client.exists(KEYS.result("after-busy")), message="the job ran")
        assert runs == {"after-busy": 1}
    finally:
        await probe.aclose()
        await busy_client.aclose()
        await client.aclose()


async def _answers_busy(client: Any) -> bool:
    try:
        await client.ping()
    except ResponseError as exc:
        return str(exc).startswith("BUSY ")
    return False


async def test_pool_start_while_redis_is_busy_waits_for_it_rather_than_exit(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    """``pool start`` checks Redis before forking; BUSY there is no refusal (a missing ACL permission is)."""
    server = redis_server_factory(config={"lua-time-limit": "50"})
    busy_client = redis.asyncio.Redis.from_url(server.url)
    probe = redis.asyncio.Redis.from_url(server.url)
    supervisor: Supervisor | None = None
    try:
        busy = asyncio.create_task(busy_client.eval(BUSY_SCRIPT, 0, 2000))
        await wait_for(lambda: _answers_busy(probe), message="Redis answering BUSY")
        supervisor = Supervisor(tmp_path, "sup", server.url, "tests.chaos.app.FaultSettings", "--procs", "1")
        assert await busy == 1
        await asyncio.to_thread(supervisor.wait_ready, 1)
        assert "BUSY" in supervisor.log  # it did meet the busy period, and waited
    finally:
        if supervisor is not None:
            supervisor.kill_all()
        await probe.aclose()
        await busy_client.aclose()
