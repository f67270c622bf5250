"""Prometheus metrics (``--metrics``), scraped over HTTP from real processes: ``pool start`` with two children,
whose counts the parent sums, and a lone ``pool worker``.

The app (written into the test's directory) has a job that succeeds, one that fails, one that retries twice
before it succeeds, and one that holds its slot until the test lets it go (to have ready and running jobs while
the test reads the depth gauges).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from pool import PoolRedis, RedisSettings
from pool.client.inspection import queue_info
from pool.storage.queue import Delivery
from pool.storage.sync import SyncQueue
from pool.supervisor import pidfile as pidfiles
from pool.worker.exporter import PoolCollector, ProcessNumbers, QueueTarget, parse_address
from pool.worker.metrics import COMPLETED_AT, FAILED, FAILED_AT, JobMetrics, cumulative, merge
from tests.helpers import wait_for, wait_for_sync
from tests.redis_server import free_port
from tests.supervisor_utils import Supervisor, supervisors
from tests.worker_utils import WorkerProcess

APP = """
import asyncio

from pool import Retry


async def ok(ctx, x):
    return x


async def boom(ctx):
    raise ValueError("boom")


async def again(ctx):
    if ctx["job_try"] < 3:
        raise Retry(defer=0.01)
    return ctx["job_try"]


async def hold(ctx):
    while not await ctx["redis"].exists("release"):
        await asyncio.sleep(0.02)


class WorkerSettings:
    functions = [ok, boom, again, hold]
    max_jobs = 4
    heartbeat_interval = 0.2
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            name, labels, value = match.groups()
            samples[name, frozenset(LABEL.findall(labels or ""))] = float(value)
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, got), value in samples.items() if n == name and wanted <= got)


def try_scrape(port: int) -> Samples | None:
    try:
        return scrape(port)
    except OSError:
        return None


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


@pytest.fixture
def started() -> Iterator[list[Supervisor]]:
    with supervisors() as running:
        yield running


async def enqueue_mix(redis: PoolRedis, ok: int, boom: int, again: int) -> None:
    for i in range(ok):
        await redis.enqueue_job("ok", i)
    for _ in range(boom):
        await redis.enqueue_job("boom")
    for _ in range(again):
        await redis.enqueue_job("again")


async def test_supervisor_serves_the_sum_of_its_childrens_counts_and_the_queues_depth(
    app_dir: Path, redis_url: str, redis: PoolRedis, started: list[Supervisor]
) -> None:
    port = free_port()
    sup = Supervisor(app_dir, "pool", redis_url, "app.WorkerSettings", "--procs", "2", "--metrics", f"127.0.0.1:{port}")
    started.append(sup)
    sup.wait_ready(2)
    # depth: 2 children x 4 slots hold 8 jobs (4 each); 5 more wait in lane 2, 3 are deferred
    for _ in range(13):
        await redis.enqueue_job("hold", _priority=2)
    for _ in range(3):
        await redis.enqueue_job("ok", 0, _defer_by=3600)
    info = await wait_for(lambda: _info_when(redis, running=8, ready=5), 10, message="8 running, 5 ready")

    def depth_matches() -> Samples | None:
        samples = try_scrape(port)
        if samples is None:
            return None
        gauges = {state: total(samples, "pool_queue_jobs", state=state) for state in info}
        return samples if gauges == {state: float(n) for state, n in info.items()} else None

    samples = wait_for_sync(depth_matches, 5, interval=0.2, message=f"the depth gauges show {info}")
    assert total(samples, "pool_queue_lane_jobs", priority="2", state="ready") == 5
    assert total(samples, "pool_queue_lane_jobs", priority="2", state="running") == 8
    assert total(samples, "pool_queue_lane_jobs", priority="0", state="ready") == 0
    assert total(samples, "pool_queue_jobs", state="deferred") == 3
    await redis.set("release", 1)

    await enqueue_mix(redis, ok=40, boom=3, again=4)

    def settled() -> Samples | None:
        samples = try_scrape(port)
        done = samples is not None and total(samples, "pool_jobs_completed_total") == 13 + 44
        return samples if done and total(samples, "pool_jobs_failed_total") == 3 else None

    samples = wait_for_sync(settled, 20, interval=0.2, message="every job counted")
    assert total(samples, "pool_jobs_completed_total", function="hold", queue="default") == 13
    assert total(samples, "pool_jobs_completed_total", function="ok", queue="default") == 40
    assert total(samples, "pool_jobs_completed_total", function="again") == 4
    assert total(samples, "pool_jobs_failed_total", function="boom") == 3
    assert total(samples, "pool_jobs_retried_total", function="again") == 8
    assert total(samples, "pool_jobs_started_total") == 13 + 40 + 3 + 4 * 3
    assert total(samples, "pool_job_duration_seconds_count", function="ok") == 40
    assert total(samples, "pool_job_pickup_latency_seconds_count") == 13 + 40 + 3 + 4 * 3
    assert total(samples, "pool_supervisor_workers", state="ready") == 2
    assert total(samples, "pool_queue_jobs", state="failed") == 3

    # the sum is over both children: each ran jobs (4 holds at least), and their own counters add up to it
    def shares() -> list[int] | None:
        status = pidfiles.read_status(str(sup.pidfile)) or {}
        found = [c["complete"] for c in status.get("children", [])]
        return found if sum(found) == 13 + 44 else None

    both = wait_for_sync(shares, 5, interval=0.1, message="the status file's per-child counters")
    assert len(both) == 2 and min(both) >= 4, both


async def _info_when(redis: PoolRedis, **expected: int) -> dict[str, int] | None:
    info = await queue_info(redis)
    return info if all(info.get(k) == v for k, v in expected.items()) else None


async def test_a_child_killed_with_sigkill_shows_in_restarts_and_its_counts_stay(
    app_dir: Path, redis_url: str, redis: PoolRedis, started: list[Supervisor]
) -> None:
    port = free_port()
    sup = Supervisor(app_dir, "pool", redis_url, "app.WorkerSettings", "--procs", "2", "--metrics", str(port))
    started.append(sup)
    sup.wait_ready(2)
    assert f"metrics at http://127.0.0.1:{port}/metrics" in sup.log  # a port alone binds 127.0.0.1
    await enqueue_mix(redis, ok=20, boom=0, again=0)
    wait_for_sync(
        lambda: (s := try_scrape(port)) is not None and total(s, "pool_jobs_completed_total") == 20,
        20,
        interval=0.2,
        message="20 jobs counted",
    )
    victim = sup.children()[0].pid
    os.kill(victim, signal.SIGKILL)

    def replaced() -> Samples | None:
        samples = try_scrape(port)
        if samples is None or total(samples, "pool_supervisor_worker_restarts_total") != 1:
            return None
        return samples if total(samples, "pool_supervisor_workers", state="ready") == 2 else None

    samples = wait_for_sync(replaced, 20, interval=0.2, message="the restart counted and a replacement ready")
    # the dead child's counts stay in the sum
    assert total(samples, "pool_jobs_completed_total") == 20
    assert total(samples, "pool_supervisor_worker_recycles_total") == 0


def test_a_lone_worker_serves_its_own_metrics(app_dir: Path, redis_url: str) -> None:
    port = free_port()
    worker = WorkerProcess(redis_url, app_dir / "worker.log", "--metrics", str(port), settings="app.WorkerSettings")
    try:
        queue = SyncQueue.connect(RedisSettings.from_dsn(redis_url), "default")
        wait_for_sync(lambda: try_scrape(port) is not None, 15, interval=0.1, message="the worker serves /metrics")
        subprocess.run(
            [sys.executable, "-c", ENQUEUE, redis_url],
            check=True,
            cwd=app_dir,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )

        def counted() -> Samples | None:
            samples = try_scrape(port)
            ok = samples is not None and total(samples, "pool_jobs_completed_total", function="ok") == 5
            ok = ok and total(samples, "pool_jobs_failed_total", function="boom") == 1
            # the depth is read at most once a second: it may lag the counters
            return samples if ok and total(samples, "pool_queue_jobs", state="failed") == 1 else None

        samples = wait_for_sync(counted, 15, interval=0.1, message="the lone worker's jobs counted")
        assert total(samples, "pool_job_duration_seconds_count", function="boom") == 1
        assert queue.depth()[0]["failed"] == 1
        assert ("pool_supervisor_workers", frozenset()) not in samples  # no supervisor here
        queue.close()
    finally:
        worker.popen.send_signal(signal.SIGTERM)
        worker.popen.wait(15)


ENQUEUE = """
import asyncio, sys
from pool import create_pool, RedisSettings

async def main():
    redis = await create_pool(RedisSettings.from_dsn(sys.argv[1]))
    for i in range(5):
        await redis.enqueue_job("ok", i)
    await redis.enqueue_job("boom")
    await redis.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("command", ["worker", "start"])
@pytest.mark.parametrize("value", ["nope", "127.0.0.1:99999", "host:", ":8000x", "[zz]:80"])
def test_a_bad_metrics_address_is_one_line_and_exit_2(app_dir: Path, command: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pool", command, "app.WorkerSettings", "--metrics", value],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"pool {command}: error: --metrics: "), proc.stderr


def test_only_a_port_binds_the_loopback_address() -> None:
    assert parse_address("9100") == ("127.0.0.1", 9100)
    assert parse_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_address("[::1]:9100") == ("::1", 9100)


def test_the_depth_is_read_once_per_interval_whatever_the_scrapes(redis_url: str) -> None:
    target = QueueTarget(RedisSettings.from_dsn(redis_url), "default")
    collector = PoolCollector(JobMetrics("default").snapshot, ProcessNumbers, lambda: target, depth_interval=60)
    try:
        for _ in range(5):
            names = {family.name for family in collector.collect()}
        assert "pool_queue_jobs" in names
        assert collector.depth_reads == 1
    finally:
        collector.close()


async def _tick(ctx: object) -> None:
    pass


def test_a_takeover_counts_the_ticks_older_than_the_catch_up_window_as_missed() -> None:
    from datetime import datetime

    from pool.worker.cron import cron, resume_after, ticks_skipped

    job = cron(_tick, second=0)  # every minute
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    last = int(datetime(2026, 1, 1, 11, 50, tzinfo=UTC).timestamp() * 1000) + 123  # a fence: the tick, in ms
    assert ticks_skipped(job, last, now, catch_up_s=60) == 9  # 11:51 to 11:59; 12:00 is still to come
    resume_after(job, last, now, catch_up_s=60)
    assert job.next_run == datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    recent = int(datetime(2026, 1, 1, 11, 59, 45, tzinfo=UTC).timestamp() * 1000)
    assert ticks_skipped(job, recent, now, catch_up_s=60) == 0
    assert ticks_skipped(job, None, now, catch_up_s=60) == 0


def _ran(function: str, enqueued_ms: int, started_ms: int) -> Delivery:
    return Delivery("1-0", "job", function=function, score=enqueued_ms, started_ms=started_ms)


def test_the_counts_and_histograms_are_exact_at_the_buckets_edges() -> None:
    metrics = JobMetrics("default")
    jobs = [_ran("ok", 1_000, 1_000 + pickup) for pickup in (0, 5, 6, 10_000, 10_001, -3)]
    metrics.started_many(jobs[:4])  # one function: one increment
    metrics.started_many([*jobs[4:], _ran("boom", 0, 0)])  # two
    for job, duration in zip(jobs, (5, 6, 10, 10_000, 10_001, 2), strict=True):
        metrics.finished(job, COMPLETED_AT, job.started_ms + duration)
    metrics.finished(_ran("boom", 0, 7), FAILED_AT, 4)  # a clock set back: 0 ms
    metrics.counted("boom", FAILED)
    snap = metrics.snapshot()
    assert snap["jobs"] == {"ok": [6, 6, 0, 0, 0], "boom": [1, 0, 2, 0, 0]}
    ok = dict(cumulative(snap["durations"]["ok"]))
    assert (ok["0.005"], ok["0.01"], ok["10.0"], ok["+Inf"]) == (2, 4, 5, 6)  # <= le: 5 ms in 0.005
    assert snap["durations"]["ok"][-2:] == [20.024, 6]  # the sum in seconds, the count
    pickup = dict(cumulative(snap["pickup"]))
    # ok's 6 runs (-3 ms counted as 0) and boom's failed one (7 ms)
    assert (pickup["0.005"], pickup["0.01"], pickup["10.0"], pickup["+Inf"]) == (3, 5, 6, 7)
    assert snap["pickup"][-2:] == [(5 + 6 + 10_000 + 10_001 + 7) / 1000, 7]
    assert snap["durations"]["boom"][0] == 1 and snap["durations"]["boom"][-2:] == [0.0, 1]


def test_the_totals_add_up_over_many_jobs() -> None:
    metrics = JobMetrics("default")
    batch = [_ran("ok", 0, 3) for _ in range(25)]
    for _ in range(400):
        metrics.started_many(batch)
        for job in batch:
            metrics.finished(job, COMPLETED_AT, 1_003)
    snap = merge([metrics.snapshot(), metrics.snapshot()], "default")
    assert snap["jobs"]["ok"] == [20_000, 20_000, 0, 0, 0]
    assert snap["durations"]["ok"][-2:] == [20_000.0, 20_000]  # 1 s each
    assert snap["pickup"][0] == 20_000 and snap["pickup"][-2:] == [60.0, 20_000]
