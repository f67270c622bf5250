"""Hosts' clocks disagree; Redis's is the one they share. Due times of deferred jobs are judged by Redis's
clock (a worker an hour ahead must not run a job deferred by 600 s at once, nor delay its own retries by an
hour), health entries live by Redis's clock (a supervisor or worker whose clock is behind is still seen
as alive, and one that stopped writing goes stale on time), and so do failures kept in the failed registry.

The skewed host is simulated in-process: pool's notion of the time (``now_ms``) is patched in the worker or
supervisor module under test; the reader keeps the real clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pool import PoolRedis, Retry, func
from pool.client.health_report import read_entries
from pool.client.inspection import queue_info
from pool.connections import RedisSettings
from pool.jobs import JobStatus
from pool.storage.keys import QueueKeys
from pool.storage.sync import SyncQueue
from pool.supervisor import health
from pool.utils import now_ms
from tests.helpers import wait_for
from tests.redis_server import RedisServer
from tests.supervisor_utils import run_pool
from tests.worker_utils import running_worker

HOUR_MS = 3_600_000


def skewed(offset_ms: int) -> Callable[[], int]:
    return lambda: int(time.time() * 1000) + offset_ms


def skew_worker(monkeypatch: pytest.MonkeyPatch, offset_ms: int) -> None:
    """The worker's modules take the time from a clock ``offset_ms`` off, as on a host whose clock is (a module
    that takes Redis's clock instead has none to patch: raising=False)."""
    for module in ("pool.worker.main", "pool.worker.execution", "pool.storage.queue"):
        monkeypatch.setattr(f"{module}.now_ms", skewed(offset_ms), raising=False)


async def test_a_worker_whose_clock_is_ahead_runs_a_deferred_job_on_time_not_early(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    async def record(ctx: dict[str, Any]) -> None:
        ran.append(ctx["job_id"])

    skew_worker(monkeypatch, HOUR_MS)
    later = await redis.enqueue_job("record", _job_id="later", _defer_by=600)
    soon = await redis.enqueue_job("record", _job_id="soon", _defer_by=0.3)
    assert later is not None and soon is not None
    async with running_worker(redis_url, functions=[func(record, name="record")], poll_delay=0.05):
        # 'soon' came due on Redis's clock and was promoted: promotion has looked at 'later' since
        await wait_for(lambda: _is_complete(soon), timeout=5, message="'soon' complete")
        assert await later.status() == JobStatus.deferred
    assert ran == ["soon"]


async def test_a_client_whose_clock_is_behind_defers_a_job_by_the_delay_it_asked_for(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client asks for a delay by its own clock; the due time counts that delay from Redis's clock, so a
    client an hour behind does not make a job deferred by 600 s due at once."""
    ran: list[str] = []

    async def record(ctx: dict[str, Any]) -> None:
        ran.append(ctx["job_id"])

    monkeypatch.setattr("pool.client.specs.now_ms", skewed(-HOUR_MS))
    later = await redis.enqueue_job("record", _job_id="later", _defer_by=600)
    soon = await redis.enqueue_job("record", _job_id="soon", _defer_by=0.3)
    assert later is not None and soon is not None
    due_ms = await redis.zscore(QueueKeys("default").deferred, "later")
    assert due_ms is not None and abs(due_ms - (now_ms() + 600_000)) < 60_000
    async with running_worker(redis_url, functions=[func(record, name="record")], poll_delay=0.05):
        await wait_for(lambda: _is_complete(soon), timeout=5, message="'soon' complete")
        assert await later.status() == JobStatus.deferred
    assert ran == ["soon"]


async def _is_complete(job: Any) -> bool:
    return bool(await job.status() == JobStatus.complete)


async def test_a_worker_whose_clock_is_ahead_retries_after_the_delay_not_an_hour_later(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def flaky(ctx: dict[str, Any]) -> int:
        if ctx["job_try"] == 1:
            raise Retry(defer=0.2)
        return int(ctx["job_try"])

    skew_worker(monkeypatch, HOUR_MS)
    job = await redis.enqueue_job("flaky")
    assert job is not None
    async with running_worker(redis_url, functions=[func(flaky, name="flaky")], poll_delay=0.05):
        await wait_for(lambda: _is_complete(job), timeout=5, message="the retried job complete")
    assert await job.result(timeout=1) == 2


FAILURE_TTL_S = 3.0


@pytest.mark.parametrize("offset_ms", [-HOUR_MS, HOUR_MS])
async def test_a_failure_recorded_by_a_skewed_worker_is_counted_for_its_failure_ttl_by_redis_clock(
    redis: PoolRedis, redis_url: str, monkeypatch: pytest.MonkeyPatch, offset_ms: int
) -> None:
    """The failed registry is scored by each record's expiry: a worker an hour behind must not record a
    failure already expired (never counted), nor one an hour ahead a failure counted for an hour."""

    async def fail(ctx: dict[str, Any]) -> None:
        raise ValueError("failed for good")

    skew_worker(monkeypatch, offset_ms)
    job = await redis.enqueue_job("fail", _job_id="failing")
    assert job is not None
    functions = [func(fail, name="fail", max_tries=1)]
    async with running_worker(redis_url, functions=functions, failure_ttl=FAILURE_TTL_S, poll_delay=0.05):
        await wait_for(lambda: _has_result(job), timeout=5, message="the failure recorded")
        recorded = now_ms()
        assert (await queue_info(redis))["failed"] == 1, "a failure within its failure_ttl is counted"
    await wait_for(lambda: _failed_count_is(redis, 0), timeout=10, message="the failure gone from the count")
    assert now_ms() - recorded >= FAILURE_TTL_S * 1000 - 1_000  # by its failure_ttl, not at once


async def _has_result(job: Any) -> bool:
    return await job.result_info() is not None


async def _failed_count_is(redis: PoolRedis, count: int) -> bool:
    return bool((await queue_info(redis))["failed"] == count)


async def test_a_worker_whose_clock_is_behind_is_seen_alive_by_pool_check(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    skew_worker(monkeypatch, -15_000)
    async with running_worker(redis_url, functions=[func(_noop, name="noop")], health_check_interval=1) as worker:
        await wait_for(lambda: worker.pool.exists(QueueKeys("default").health(worker.worker_id)), message="health")
        proc = run_pool("check", "tests.apps.basic.WorkerSettings", "--redis", redis_url, cwd=_repo())
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def _noop(ctx: dict[str, Any]) -> None:
    return None


def _repo() -> Any:
    from tests.supervisor_utils import REPO

    return REPO


def _entry(pid: int, queue: SyncQueue, interval_s: float) -> dict[str, Any]:
    status = {"children": [], "pid": pid, "settings": "app.WorkerSettings", "started": time.time(), "procs": 1}
    counts = {"ready": 0, "running": 0, "deferred": 0, "parked": 0}
    written_ms = health.redis_now_ms(queue)
    return health.build_entry(health.new_supervisor_id(), status, counts, False, interval_s, written_ms)


@pytest.mark.parametrize("offset_ms", [-15_000, HOUR_MS])
async def test_a_supervisor_health_entry_lives_by_redis_clock_not_its_writer(
    redis_server: RedisServer, redis_url: str, monkeypatch: pytest.MonkeyPatch, offset_ms: int
) -> None:
    """Fresh while its TTL runs (a writer behind was invisible), gone once it ran out (whatever the writer's
    clock said)."""
    # the writer's notion of the time (raising=False: a writer that takes Redis's clock has none to patch)
    monkeypatch.setattr("pool.supervisor.health.now_ms", skewed(offset_ms), raising=False)
    monkeypatch.setattr("pool.utils.now_ms", skewed(offset_ms))
    client = redis_server.client()
    settings = RedisSettings.from_dsn(redis_url)
    try:
        queue = SyncQueue(client, "default")
        health.write(queue, _entry(1234, queue, 0.2), interval_s=0.2)  # TTL 1.4 s
        written = now_ms()
        entries = await read_entries(settings, "default")
        assert [e["pid"] for e in entries] == [1234]
        assert entries[0]["age"] < 1 and not entries[0]["stale"]  # its age measured on Redis's clock too
        await wait_for(lambda: _no_entries(settings), timeout=5, message="the entry stale")
        assert now_ms() - written >= 1000  # stale by its TTL, not at once
    finally:
        client.close()


async def _no_entries(settings: RedisSettings) -> bool:
    return not await read_entries(settings, "default")
