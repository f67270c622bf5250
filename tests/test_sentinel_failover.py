"""pool behind Redis Sentinel: the client and ``pool worker`` through a real Sentinel set (a master, a replica, three
Sentinels: tests/sentinel_set.py), and what a failover does to jobs with and without the durability option.

The figures of longer runs (the chaos run's ``--sentinel`` faults) are in docs/sentinel.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError

from pool import PoolRedis, RedisSettings, create_pool
from pool.redis.replication import NotReplicated
from pool.storage.keys import QueueKeys
from tests.failover_load import read_runs, run_through_fault
from tests.helpers import wait_for, wait_for_sync
from tests.sentinel_set import SentinelSet
from tests.supervisor_utils import Supervisor, run_pool, supervisors
from tests.worker_utils import WorkerProcess

APP = "tests.apps.failover.WorkerSettings"


def with_query(url: str, **options: object) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


@pytest.fixture
def sentinel_worker(tmp_path: Path, sentinel_set: SentinelSet) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(**options: object) -> WorkerProcess:
        url = with_query(sentinel_set.url, **options)
        worker = WorkerProcess(url, tmp_path / f"worker-{len(workers)}.log", settings=APP)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.popen.poll() is None:
            worker.popen.kill()
        worker.popen.wait(10)


async def test_enqueue_and_run_through_sentinel(
    tmp_path: Path, sentinel_set: SentinelSet, sentinel_worker: Callable[..., WorkerProcess]
) -> None:
    pool = await create_pool(sentinel_set.settings())
    try:
        worker = sentinel_worker()
        job = await pool.enqueue_job("record_run", 7, _job_id="through-sentinel")
        assert job is not None
        assert await job.result(timeout=20) == 7
        assert read_runs(tmp_path) == [("through-sentinel", 1)]
        assert not worker.exited()
    finally:
        await pool.aclose()


async def test_client_follows_the_new_master_after_a_failover(sentinel_set: SentinelSet) -> None:
    """Connections to the old master are dropped when the Sentinels name a new one: the next enqueue lands on the
    new master (before the old one is even demoted, which Sentinel does ~10 s after a manual failover)."""
    pool = await create_pool(sentinel_set.settings(sentinel_check_interval=0.2))
    try:
        await pool.enqueue_job("record_run", 1, _job_id="before")
        sentinel_set.wait_replicas_in_sync()
        new_master = await asyncio.to_thread(sentinel_set.failover)
        await wait_for(
            lambda: pool.followed_master is not None and pool.followed_master.address == new_master,
            timeout=10,
            message="the client follows the new master",
        )
        await pool.enqueue_job("record_run", 2, _job_id="after")
        with sentinel_set.master_node().client() as direct:  # the new master, asked directly
            assert direct.execute_command("ROLE")[0] == b"master"
            assert direct.exists(QueueKeys("default").job("after"))
    finally:
        await pool.aclose()


async def test_enqueue_not_confirmed_by_a_replica_raises_not_replicated(sentinel_set: SentinelSet) -> None:
    # the confirmed enqueue gets a generous WAIT (a replica on a busy machine can take longer than 0.2 s); the
    # unconfirmed one a short one, since no replica is there to answer
    confirming = await create_pool(sentinel_set.settings(wait_replicas=1, wait_timeout=10))
    pool = await create_pool(sentinel_set.settings(wait_replicas=1, wait_timeout=0.2))
    try:
        sentinel_set.wait_replicas_in_sync()
        assert await confirming.enqueue_job("record_run", 1, _job_id="confirmed") is not None
        sentinel_set.replica_node().kill()
        with pytest.raises(NotReplicated, match=r"enqueueing job unconfirmed: written on the master, but 0 of 1"):
            await pool.enqueue_job("record_run", 2, _job_id="unconfirmed")
        # enqueueing again with the same id is safe: the job is there once
        sentinel_set.replica_node().start()
        sentinel_set.wait_replicas_in_sync()
        await wait_for(lambda: _enqueued_again(confirming), timeout=20, message="the replica confirms again")
    finally:
        await pool.aclose()
        await confirming.aclose()


async def _enqueued_again(pool: PoolRedis) -> bool:
    try:
        return await pool.enqueue_job("record_run", 2, _job_id="unconfirmed") is None
    except NotReplicated:
        return False


async def test_worker_does_not_run_a_job_whose_start_no_replica_confirmed(
    tmp_path: Path, sentinel_set: SentinelSet, sentinel_worker: Callable[..., WorkerProcess]
) -> None:
    """With the replica gone, a start cannot be made durable: the worker leaves the job queued (its attempt not
    counted) rather than run an attempt a failover could repeat; it runs, as try 1, once the replica is back."""
    pool = await create_pool(sentinel_set.settings())
    try:
        sentinel_set.replica_node().kill()
        sentinel_worker(wait_replicas=1, wait_timeout=0.2)
        job = await pool.enqueue_job("record_run", 3, _job_id="waits-for-replica")
        assert job is not None
        await wait_for(lambda: _log_mentions(tmp_path, "replicas confirmed"), timeout=20, message="start refused")
        assert read_runs(tmp_path) == []
        sentinel_set.replica_node().start()
        assert await job.result(timeout=30) == 3
        assert read_runs(tmp_path) == [("waits-for-replica", 1)]
    finally:
        await pool.aclose()


def _log_mentions(directory: Path, text: str) -> bool:
    return any(text in path.read_text(errors="replace") for path in directory.glob("worker-*.log"))


@pytest.mark.parametrize("fault", ["failover", "kill"])
async def test_failover_under_load_with_durability_loses_nothing_and_repeats_no_attempt(
    fault: str, tmp_path: Path, sentinel_set: SentinelSet, sentinel_worker: Callable[..., WorkerProcess]
) -> None:
    """Invariant 8: with wait_replicas=1, no acknowledged enqueue is lost and no job runs twice as the same try,
    whether the master hands over (SENTINEL FAILOVER) or dies (kill -9, then comes back as a replica)."""
    for _ in range(2):
        sentinel_worker(wait_replicas=1, sentinel_check_interval=0.5)

    async def strike() -> None:
        sentinel_set.wait_replicas_in_sync()
        if fault == "failover":
            await asyncio.to_thread(sentinel_set.failover)
        else:
            await asyncio.to_thread(sentinel_set.kill_master)
            await asyncio.to_thread(sentinel_set.restart_old, as_replica=True)

    settings = sentinel_set.settings(wait_replicas=1, sentinel_check_interval=0.5)
    report = await run_through_fault(settings, tmp_path, strike, before_s=2.0, after_s=4.0)
    print(report.line(f"sentinel {fault}, wait_replicas=1"))
    assert report.acked > 0
    assert report.lost == 0, report.line(fault)
    assert report.same_try_twice == 0, report.line(fault)


def test_pool_start_through_a_failover_runs_each_cron_tick_once_and_keeps_its_health(
    tmp_path: Path, sentinel_set: SentinelSet
) -> None:
    """``pool start --procs 2`` behind Sentinel: the parent (cron leader, health) and the children all follow the
    new master; no cron tick runs twice, ticks go on after the failover, and ``pool health`` stays healthy."""
    url = with_query(sentinel_set.url, wait_replicas=1, sentinel_check_interval=0.5)
    settings = "tests.apps.failover.CronSettings"

    def ticks() -> list[str]:
        return [job_id for job_id, _ in read_runs(tmp_path) if "tick" in job_id]

    def healthy() -> bool:
        return run_pool("health", "--redis", url, settings, cwd=tmp_path).returncode == 0

    with supervisors() as started:
        supervisor = Supervisor(tmp_path, "s", url, settings, "--procs", "2", "--health-interval", "0.3")
        started.append(supervisor)
        supervisor.wait_ready(2)
        wait_for_sync(lambda: len(ticks()) >= 2, 15, message="cron ticks run")
        wait_for_sync(healthy, 15, interval=0.3, message="healthy before the failover")
        sentinel_set.wait_replicas_in_sync()
        sentinel_set.failover()
        before = len(ticks())
        wait_for_sync(lambda: len(ticks()) >= before + 3, 60, message="cron ticks run after the failover")
        wait_for_sync(healthy, 30, interval=0.3, message="healthy after the failover")
        assert supervisor.process.poll() is None, supervisor.log
    runs = ticks()
    assert len(runs) == len(set(runs)), f"a tick ran twice: {sorted(runs)}"


async def test_passwords_database_and_url_reach_the_master_through_sentinel(
    sentinel_set_factory: Callable[..., SentinelSet], caplog: pytest.LogCaptureFixture
) -> None:
    """The master's password and database and the Sentinels' own password all apply, from settings or from the
    URL, and neither password shows in ``describe()``."""
    sentinels = sentinel_set_factory(service="jobs", password="m4ster secret", sentinel_password="s3ntinel:pw")
    url = sentinels.url.replace("/jobs/0", "/jobs/3")
    settings = RedisSettings.from_dsn(url)
    assert (settings.database, settings.sentinel_master, settings.password) == (3, "jobs", "m4ster secret")
    assert "secret" not in settings.describe() and "s3ntinel" not in settings.describe()
    pool = await create_pool(settings)
    try:
        assert await pool.enqueue_job("record_run", 1, _job_id="in-db-3") is not None
        with sentinels.master_node().client(db=3) as direct:
            assert direct.exists(QueueKeys("default").job("in-db-3"))
    finally:
        await pool.aclose()
    wrong = RedisSettings.from_dsn(url.replace("s3ntinel%3Apw", "wrong"))
    wrong.conn_retries = 0
    with pytest.raises(ConnectionError):
        await create_pool(wrong)
