"""Faults around the queue: Redis down, restarted, refusing us or stalled; workers killed in volleys.

Every process runs for real (``pool worker`` / ``pool start`` subprocesses, or in-process workers) against a
private redis-server; every wait is on a condition with a deadline. Jobs come from tests/chaos/app.py: ``pure``
records each start (``job_id try nonce`` in ``chaos:starts``) and returns its index without touching Redis
again, so a duplicate run shows as a second start, and a result due while Redis is down can only reach Redis
through the worker's retried result write.

A failure here names the scenario in its assertion message; each docstring says what the worker must do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pool import Job, PoolRedis, RedisSettings, Retry, create_pool
from tests.chaos import app
from tests.helpers import wait_for, wait_for_sync
from tests.job_functions import count_run, slow
from tests.redis_server import RedisServer, _die_with_parent, free_port
from tests.worker_utils import running_worker

REPO = Path(__file__).resolve().parent.parent
FAULT_SETTINGS = "tests.chaos.app.FaultSettings"
CRON_SETTINGS = "tests.chaos.app.CronSettings"


# --- processes ----------------------------------------------------------------------------------------------------


def pool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL_") and k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class PoolProcess:
    """``python -m pool ARGS`` in the background, its stdout and stderr in ``<name>.log``."""

    def __init__(self, directory: Path, name: str, *args: str) -> None:
        self.log_path = directory / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "pool", *args],
                cwd=directory,
                env=pool_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [c for c in psutil.Process(self.pid).children() if c.status() != psutil.STATUS_ZOMBIE]
        return []

    def kill(self) -> None:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.pid)
            for proc in [*parent.children(recursive=True), parent]:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., PoolProcess]]:
    """``spawn(name, *args)`` runs ``pool *args`` in tmp_path; every process tree left is killed at teardown."""
    started: list[PoolProcess] = []

    def start(name: str, *args: str) -> PoolProcess:
        proc = PoolProcess(tmp_path, name, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def run_pool(directory: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args],
        cwd=directory,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stays(predicate: Callable[[], object], seconds: float) -> bool:
    """True if ``predicate()`` stays falsy for ``seconds`` (a wait whose expected outcome is the timeout)."""
    try:
        wait_for_sync(predicate, timeout=seconds, interval=0.05)
    except AssertionError:
        return True
    return False


async def starts(client: PoolRedis) -> Counter[str]:
    """job id -> number of runs started (one per nonce)."""
    runs: Counter[str] = Counter()
    items: list[Any] = await client.lrange(app.STARTS, 0, -1)
    for item in set(items):
        runs[item.decode().split(" ")[0]] += 1
    return runs


@pytest.fixture
async def persistent(redis_server_factory: Callable[..., RedisServer]) -> AsyncIterator[tuple[RedisServer, PoolRedis]]:
    """A private redis-server with the AOF on (appendfsync always) and a client of it."""
    server = redis_server_factory(persistence=True, appendfsync="always")
    client = await create_pool(RedisSettings.from_dsn(server.url))
    yield server, client
    with contextlib.suppress(Exception):
        await client.aclose()


# --- Redis down when `pool start` starts ----------------------------------------------------------------------------


async def test_pool_start_waits_for_redis_then_serves(tmp_path: Path, spawn: Callable[..., PoolProcess]) -> None:
    """Scenario: Redis is down when the service starts (a reboot where Redis comes up later), started with a wait
    longer than that (--wait-for-redis; the default is the settings' conn_retries x conn_retry_delay, 0 here).
    Expected: one clear line naming the Redis it waits for, no traceback, retries with backoff, then serves.
    """
    port = free_port()
    (tmp_path / "downapp.py").write_text(
        textwrap.dedent(
            f"""
            from pool import RedisSettings
            from tests.chaos.app import pure

            class WorkerSettings:
                functions = [pure]
                redis_settings = RedisSettings(host="127.0.0.1", port={port}, conn_retries=0)
            """
        )
    )
    server = RedisServer(port=port)
    try:
        sup = spawn(
            "sup",
            "start",
            "--procs",
            "2",
            "--pidfile",
            str(tmp_path / "pool.pid"),
            "--wait-for-redis",
            "60",
            "downapp.WorkerSettings",
        )
        assert stays(sup.exited, 5.0), f"pool start gave up while Redis was down:\n{sup.log()[-3000:]}"
        log = sup.log()
        assert "Traceback" not in log, log[-3000:]
        assert f"127.0.0.1:{port}" in log, "the log does not say which Redis it waits for"
        server.start()
        client = await create_pool(RedisSettings.from_dsn(server.url))
        try:
            job = await client.enqueue_job("pure", 7, 0)
            assert job is not None
            assert await job.result(timeout=20) == 7
        finally:
            await client.aclose()
    finally:
        server.close()


# --- Redis restarted under load -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["shutdown", "kill-9"])
async def test_worker_carries_on_across_a_redis_restart(
    how: str, persistent: tuple[RedisServer, PoolRedis], spawn: Callable[..., PoolProcess]
) -> None:
    """A ``pool worker`` with 10 jobs in flight; Redis goes away for 1.5 s (SHUTDOWN, or kill -9: with
    ``appendfsync always`` nothing Redis acknowledged is lost) and comes back on the same port and AOF.
    The worker reconnects and finishes everything; results of jobs that finished during the outage are written
    once Redis is back (the result write is retried), and no job runs twice."""
    server, client = persistent
    # All enqueued first, so the worker's first fetch takes exactly max_jobs=10 of them; each job sleeps 1 s
    # after recording its start, so Redis goes down while all 10 sleep and no other job has started. (Enqueued
    # after the worker's start, a second batch could start just as Redis went away; `pure` does not retry its
    # own Redis write, so such a job would fail for good: the test would be flaky under load.)
    jobs = 60
    for i in range(jobs):
        assert await client.enqueue_job("pure", i, 1000, _job_id=f"p{i}") is not None
    worker = spawn("worker", "worker", FAULT_SETTINGS, "--redis", server.url)
    await wait_for(lambda: _at_least(client.llen(app.STARTS), 10), timeout=15, message="10 jobs in flight")

    down_at = time.time()
    await asyncio.to_thread(server.kill if how == "kill-9" else server.stop)
    await asyncio.sleep(1.5)  # the length of the outage, not a wait
    await asyncio.to_thread(server.start)
    up_at = time.time()

    async def all_done() -> bool:
        return all(await asyncio.gather(*(Job(f"p{i}", client).result_info() for i in range(jobs))))

    await wait_for(all_done, timeout=30, interval=0.2, message="every job has a result")
    infos = [await Job(f"p{i}", client).result_info() for i in range(jobs)]
    assert not worker.exited(), worker.log()[-3000:]
    wrong = [(i, info) for i, info in enumerate(infos) if not (info and info.success and info.result == i)]
    assert not wrong, f"jobs without their result: {wrong}\n{worker.log()[-3000:]}"
    runs = await starts(client)
    twice = {job_id: n for job_id, n in runs.items() if n > 1}
    assert not twice, f"jobs ran more than once across the restart: {twice}"
    written_late = [
        info.job_id
        for info in infos
        if info is not None and info.finish_time is not None and down_at <= info.finish_time.timestamp() <= up_at
    ]
    assert written_late, "no job finished during the outage: the retried result write was not exercised"
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


RETRY_GATE: asyncio.Event | None = None


async def retry_after_gate(ctx: dict[str, Any]) -> int:
    """First try: wait for the test's gate, then ask for a retry (the test stops Redis before opening it)."""
    if ctx["job_try"] == 1:
        assert RETRY_GATE is not None
        await RETRY_GATE.wait()
        raise Retry(defer=0)
    return int(ctx["job_try"])


async def test_retry_requested_while_redis_is_down_is_written_once_it_is_back(
    persistent: tuple[RedisServer, PoolRedis], caplog: pytest.LogCaptureFixture
) -> None:
    """A job raising Retry while Redis restarts (or is still loading its AOF) is put back once Redis answers:
    putting a job back is retried like a result, not logged as a traceback and left for a reclaim."""
    global RETRY_GATE
    RETRY_GATE = asyncio.Event()
    server, client = persistent
    job = await client.enqueue_job("retry_after_gate", _job_id="gated-retry")
    assert job is not None
    settings = RedisSettings.from_dsn(server.url)
    async with running_worker(server.url, functions=[retry_after_gate], redis_settings=settings) as worker:
        await wait_for(lambda: worker._running, timeout=5, message="the job started")
        await asyncio.to_thread(server.stop)
        RETRY_GATE.set()  # Retry raised while Redis is down
        await wait_for(lambda: "putting job gated-retry back failed" in caplog.text, timeout=5)
        await asyncio.to_thread(server.start)
        assert await Job("gated-retry", client).result(timeout=15) == 2
    assert "could not record its outcome" not in caplog.text
    assert worker.jobs_retried == 1


async def _at_least(value: Any, minimum: int) -> bool:
    return int(await value) >= minimum


# --- Redis refusing us: wrong password, ACL ----------------------------------------------------------------------


def _acl_user(server: RedisServer, name: str, *rules: str) -> str:
    client = server.client()
    try:
        client.execute_command("ACL", "SETUSER", name, "reset", "on", f">{name}-pw", *rules)
    finally:
        client.close()
    return f"redis://{name}:{name}-pw@127.0.0.1:{server.port}/0"


def test_worker_denied_the_queue_keys_by_acl_says_so_in_one_line(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    server = redis_server_factory()
    url = _acl_user(server, "elsewhere", "~other:*", "+@all")
    proc = run_pool(tmp_path, "worker", FAULT_SETTINGS, "--redis", url, timeout=15)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(lines) == 1 and "no permissions" in lines[0], lines
    assert "elsewhere-pw" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("refusal", ["wrong-password", "acl-denies-keys"])
def test_pool_start_refused_by_redis_one_line_no_traceback(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer], refusal: str
) -> None:
    """Expected, as for ``pool worker``: exit 1, no traceback, the reason on the last line, no child forked."""
    if refusal == "wrong-password":
        server = redis_server_factory(password="right-pw")
        url = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
    else:
        server = redis_server_factory()
        url = _acl_user(server, "elsewhere", "~other:*", "+@all")
    proc = run_pool(
        tmp_path,
        *("start", "--procs", "5", "--pidfile", str(tmp_path / "pool.pid"), "--redis", url, FAULT_SETTINGS),
        timeout=30,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output, output[-3000:]
    assert "started worker" not in output, "it forked workers before finding out that Redis refuses it"
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1].lower()
    assert "authentication" in last or "permission" in last, last
    assert "wrong-pw" not in output and "elsewhere-pw" not in output


def test_worker_denied_a_command_by_acl_exits_1(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    """A permission Redis denies (here: running scripts) is permanent, not worth retrying: ``pool worker``
    prints one line naming it and exits 1 within seconds."""
    server = redis_server_factory()
    url = _acl_user(server, "noscripts", "~*", "+@all", "-@scripting")
    try:
        proc = run_pool(tmp_path, "worker", FAULT_SETTINGS, "--redis", url, timeout=5)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(f"pool worker still running after 5 s:\n{output[-1000:]}") from None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "permission" in lines[-1], lines


# --- a stalled Redis ---------------------------------------------------------------------------------------------


async def test_client_pause_runs_no_job_twice(redis_server_factory: Callable[..., RedisServer]) -> None:
    """Two workers (heartbeat 0.5 s: reclaim after 1.5 s idle) with 10 jobs in flight; Redis stalls every client
    for 3 s (CLIENT PAUSE 3000 ALL), six heartbeats. When it resumes, every running entry looks idle, but the
    workers are alive: architecture.md promises they wait 3 heartbeats before reclaiming, so no job runs twice
    and none is lost."""
    server = redis_server_factory()
    client = await create_pool(RedisSettings.from_dsn(server.url))
    pauser = server.client()
    jobs = 30
    try:
        async with (
            running_worker(server.url, functions=[app.pure], heartbeat_interval=0.5, max_jobs=5, worker_id="A"),
            running_worker(server.url, functions=[app.pure], heartbeat_interval=0.5, max_jobs=5, worker_id="B"),
        ):
            for i in range(jobs):
                assert await client.enqueue_job("pure", i, 800, _job_id=f"s{i}") is not None
            await wait_for(lambda: _at_least(client.llen(app.STARTS), 10), timeout=10, message="10 jobs in flight")
            await asyncio.to_thread(pauser.execute_command, "CLIENT", "PAUSE", "3000", "ALL")

            async def finished() -> int:
                return int(await client.eval("return #redis.call('KEYS', ARGV[1])", 0, "pool:{default}:result:*"))

            await wait_for(lambda: _at_least(finished(), jobs), timeout=40, interval=0.2, message="all results")
        runs = await starts(client)
        assert set(runs) == {f"s{i}" for i in range(jobs)}
        twice = {job_id: n for job_id, n in runs.items() if n > 1}
        assert not twice, f"jobs of live workers ran twice after the pause: {twice}"
    finally:
        pauser.close()
        await client.aclose()


# --- cron across a Redis restart ----------------------------------------------------------------------------------


async def test_cron_tick_due_while_redis_restarts_still_runs(
    persistent: tuple[RedisServer, PoolRedis], spawn: Callable[..., PoolProcess], tmp_path: Path
) -> None:
    """``pool start`` leads a cron job that runs every second; Redis is SHUT DOWN for over a second (persistence on:
    the lock, the fence and the queue survive). Every second from the first tick to 3 s after Redis is back
    must have run (invariant 4: once per tick; missed ticks within 60 s are caught up).
    Redis is down for ~1.3 s, so the supervisor keeps its leadership (a new leader would catch up): a tick whose
    enqueue met a Redis error stays due and is retried (the fence makes the retry idempotent)."""
    server, client = persistent
    sup = spawn(
        "sup", "start", "--procs", "1", "--pidfile", str(tmp_path / "pool.pid"), "--redis", server.url, CRON_SETTINGS
    )

    async def ticks() -> set[int]:
        items: list[Any] = await client.lrange(app.EXECS, 0, -1)
        return {
            int(item.decode().split(" ")[0].split(":")[1]) // 1000
            for item in items
            if item.startswith(f"{app.CRON_NAME}:".encode())
        }

    await wait_for(lambda: _len_at_least(ticks(), 2), timeout=20, message="two ticks ran")
    down = time.time()
    await asyncio.to_thread(server.stop)
    # the length of the outage, not a wait: over a tick, and short enough (< lock TTL x 0.8 - renew interval)
    # that the supervisor stays leader: a new leader would catch the missed ticks up
    await asyncio.sleep(1.2)
    await asyncio.to_thread(server.start)
    back = int(time.time())
    await wait_for(lambda: _max_at_least(ticks(), back + 3), timeout=20, interval=0.2, message="ticks after restart")
    seen = await ticks()
    missing = sorted(set(range(min(seen), back + 3)) - seen)
    assert not missing, f"cron ticks never ran: {missing} (Redis down from {down:.1f} to {back})"
    assert not sup.exited(), sup.log()[-3000:]


async def _len_at_least(values: Any, minimum: int) -> bool:
    return len(await values) >= minimum


async def _max_at_least(values: Any, minimum: int) -> bool:
    found = await values
    return bool(found) and max(found) >= minimum


# --- workers killed in volleys ------------------------------------------------------------------------------------


async def test_workers_killed_after_serving_are_replaced_at_once(
    persistent: tuple[RedisServer, PoolRedis], spawn: Callable[..., PoolProcess], tmp_path: Path
) -> None:
    """Scenario: the OOM killer (or an operator) kills -9 every worker, twice, each time after it had been ready
    for a second. These are not crash loops (the workers booted and served); the supervisor must bring the pool
    back within 2 s each time: only a death soon after boot counts toward the crash backoff."""
    server, _ = persistent
    procs = 4
    sup = spawn(
        "sup",
        *("start", "--procs", str(procs), "--pidfile", str(tmp_path / "pool.pid"), "--redis", server.url),
        FAULT_SETTINGS,
    )

    def ready_count() -> int:
        return sup.log().count(") ready")

    wait_for_sync(lambda: ready_count() >= procs, timeout=20, message="workers ready")
    for volley in (1, 2):
        ready_before = ready_count()
        await asyncio.sleep(1.0)  # the workers serve for a second before they are killed (part of the scenario)
        victims = sup.children()
        assert len(victims) == procs
        for victim in victims:
            os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wanted = ready_before + procs
        await wait_for(
            lambda wanted=wanted: ready_count() >= wanted,  # type: ignore[misc]
            timeout=4,
            interval=0.05,
            message=f"volley {volley}: {procs} replacements ready within 4 s",
        )
        took = time.monotonic() - killed_at
        assert took < 2.0, f"volley {volley}: the pool had no worker for {took:.1f}s"


# --- Redis losing data or going away under running jobs -------------------------------------------------------


async def test_worker_survives_redis_losing_its_stream_and_group(redis: PoolRedis, redis_url: str) -> None:
    """Redis restarted without the stream (no persistence, or an RDB older than the group): every step that
    meets NOGROUP (the read, the heartbeat's reclaim) recreates the group and carries on; the worker keeps
    serving the jobs enqueued after it."""
    async with running_worker(redis_url, functions=[count_run], heartbeat_interval=0.1) as worker:
        serving = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Worker.main")  # type: ignore[union-attr]
        await redis.flushall()
        await asyncio.sleep(0.5)
        assert not serving.done(), f"worker stopped: {serving.exception()!r}"
        await redis.enqueue_job("count_run", _job_id="after")
        await wait_for(lambda: redis.exists("runs:after"), timeout=3)
        assert worker is not None


async def test_redis_outage_does_not_rerun_running_jobs(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """Redis down for longer than 3 heartbeats, then back: the running jobs' entries look idle to Redis, but
    their workers are alive and keep them; no worker takes over and runs them a second time."""
    server = redis_server_factory(persistence=True, appendfsync="always")
    url = server.url
    client = await create_pool(RedisSettings.from_dsn(url))
    try:
        async with (
            running_worker(url, functions=[slow], max_jobs=5, worker_id="A"),
            running_worker(url, functions=[slow], max_jobs=5, worker_id="B"),
        ):
            for i in range(4):
                await client.enqueue_job("slow", 8.0, _job_id=f"o{i}")
            for i in range(4):
                await wait_for(lambda i=i: client.exists(f"runs:o{i}"))
            server.stop()
            await asyncio.sleep(4.0)  # > 3 heartbeats of 1 s
            server.start()
            await asyncio.sleep(3.0)
            runs = [await client.get(f"runs:o{i}") for i in range(4)]
            assert runs == [b"1"] * 4, f"jobs started again while their workers were alive: {runs}"
    finally:
        await client.aclose()
