"""The supervisor (``pool start``) run for real: a parent process forking worker children, against a private Redis.

Each test writes its own ``app.py`` into a tmp dir and runs ``python -m pool start ... app.WorkerSettings`` there
(the CLI puts the current directory on sys.path), with stdout and stderr going to ``pool.log`` in that dir.
Children are found with psutil (the supervisor's children); "ready" is the parent's log line
``worker N (pid P) ready``. Jobs record each start in ``starts:<job_id>`` ("try pid") and each completion in
``done:<job_id>`` (INCR), so a lost or duplicated execution shows.

Every process a test starts is SIGKILLed at teardown (the supervisor, its descendants, and anything still
running with the test's tmp dir as its working directory), so a failing test leaves nothing behind.
Run with ``-s`` to see the measured timings ([timing] lines).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from pool import Job, JobStatus, PoolRedis, RedisSettings, create_pool
from pool.cli.commands import build_parser
from pool.storage.keys import DEFAULT_QUEUE_NAME, QueueKeys
from pool.supervisor.config import SupervisorConfig
from pool.supervisor.pidfile import DEFAULT_PIDFILE
from tests.helpers import wait_for, wait_for_sync
from tests.redis_server import _die_with_parent

T = TypeVar("T")

SETTINGS = "app.WorkerSettings"
READY_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) ready")
CHILD_TITLE = re.compile(r"pool: worker ([12])/2 \[app\.WorkerSettings\] jobs=\d+")
SUPERVISOR_TITLE = "pool: supervisor [app.WorkerSettings]"

# Job functions shared by every app; each test appends its own WorkerSettings (and extra functions).
COMMON = """
import asyncio
import os
import time


async def whoami(ctx):
    return os.getpid()


async def tracked(ctx, seconds=0.0, every_try=False):
    '''Record the start ("try pid"), sleep (on the first try only unless every_try), count the completion.'''
    r = ctx["redis"]
    await r.rpush("starts:" + ctx["job_id"], f"{ctx['job_try']} {os.getpid()}")
    if seconds and (every_try or ctx["job_try"] == 1):
        await asyncio.sleep(seconds)
    await r.incr("done:" + ctx["job_id"])
    return {"job_try": ctx["job_try"], "pid": os.getpid()}
"""

DEFAULT_SETTINGS = """
class WorkerSettings:
    functions = [whoami, tracked]
    heartbeat_interval = 0.2
"""


# --- processes -----------------------------------------------------------------------------------------------------


def pool_env(**extra: str) -> dict[str, str]:
    """No POOL_REDIS_URL or NOTIFY_SOCKET from outside; no .pyc files (a reload must see the source on disk)."""
    env = {k: v for k, v in os.environ.items() if k not in ("POOL_REDIS_URL", "NOTIFY_SOCKET")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_pool(app_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args],
        cwd=app_dir,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_app(app_dir: Path, settings: str = DEFAULT_SETTINGS, extra: str = "") -> None:
    source = COMMON + textwrap.dedent(extra) + textwrap.dedent(settings)
    (app_dir / "app.py").write_text(source)


def title(pid: int) -> str:
    """The process title as ``ps`` shows it (/proc/PID/cmdline, NULs as separators)."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a reparented child's zombie may wait a while for its reaper)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is ``directory``: all a test started, even reparented ones."""
    target = os.path.realpath(directory)
    found = []
    for proc in psutil.process_iter(["cwd"]):
        if proc.info["cwd"] == target and proc.pid != os.getpid() and alive(proc):
            found.append(proc)
    return found


class Supervisor:
    """``pool start --procs N --pidfile DIR/pool.pid --redis URL [args] app.WorkerSettings`` in DIR."""

    def __init__(self, app_dir: Path, redis_url: str, *args: str, procs: int = 2, **env: str) -> None:
        self.dir = app_dir
        self.pidfile = app_dir / "pool.pid"
        self.log_path = app_dir / "pool.log"
        command = [sys.executable, "-m", "pool", "start", "--procs", str(procs), "--pidfile", str(self.pidfile)]
        command += ["--redis", redis_url, *args, SETTINGS]
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                command,
                cwd=app_dir,
                env=pool_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.process = psutil.Process(self.popen.pid)
        self.seen: dict[int, psutil.Process] = {}  # every child observed, to check (and kill) them later

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def children(self) -> dict[int, psutil.Process]:
        try:
            found = {p.pid: p for p in self.process.children() if alive(p)}
        except psutil.NoSuchProcess:
            found = {}
        self.seen.update(found)
        return found

    def child_pids(self) -> set[int]:
        return set(self.children())

    def logged_ready(self) -> set[int]:
        return {int(m.group(2)) for m in READY_LINE.finditer(self.log())}

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_pool(self.dir, command, "--pidfile", str(self.pidfile), *args)

    async def wait(self, predicate: Callable[[], T], what: str, timeout: float = 10.0) -> T:
        """wait_for, with the supervisor's log in the failure message."""
        try:
            return await wait_for(predicate, timeout=timeout, interval=0.02, message=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- pool.log ---\n{self.log()}") from None

    async def wait_ready(
        self, count: int, exclude: set[int] | frozenset[int] = frozenset(), timeout: float = 10.0
    ) -> set[int]:
        """Exactly ``count`` live children, none of them in ``exclude``, each logged as ready: their pids."""

        def check() -> set[int] | None:
            if self.exited():
                raise AssertionError(f"supervisor exited ({self.popen.returncode}):\n{self.log()}")
            live = self.child_pids()
            if len(live) == count and not live & exclude and live <= self.logged_ready():
                return live
            return None

        return await self.wait(check, f"{count} ready children (not {sorted(exclude)})", timeout)

    async def wait_exit(self, timeout: float) -> int:
        await self.wait(self.exited, "the supervisor exited", timeout)
        code = self.popen.returncode
        assert code is not None
        return code

    def kill_everything(self) -> None:
        procs = {self.pid: self.process} if alive(self.process) else {}
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.update({p.pid: p for p in self.process.children(recursive=True)})
        procs.update({pid: p for pid, p in self.seen.items() if alive(p)})
        procs.update({p.pid: p for p in processes_in(self.dir)})
        for proc in procs.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(list(procs.values()), timeout=5)
        if self.popen.poll() is None:
            self.popen.wait(5)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return Path(os.path.realpath(tmp_path))


@pytest.fixture
def start_supervisor(app_dir: Path) -> Iterator[Callable[..., Supervisor]]:
    """``start_supervisor(redis_url, *args, procs=2, **env)``; everything is SIGKILLed at teardown."""
    started: list[Supervisor] = []

    def start(redis_url: str, *args: str, procs: int = 2, **env: str) -> Supervisor:
        supervisor = Supervisor(app_dir, redis_url, *args, procs=procs, **env)
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.kill_everything()
    for proc in processes_in(app_dir):  # e.g. a `pool worker --burst` a failed assertion left behind
        proc.kill()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[PoolRedis]:
    client = await create_pool(RedisSettings.from_dsn(redis_url))
    yield client
    await client.aclose()


async def starts(redis: PoolRedis, job_id: str) -> list[tuple[int, int]]:
    """[(job_try, pid), ...] of each start of the job, in order."""
    entries = await redis.lrange("starts:" + job_id, 0, -1)
    return [(int(a), int(b)) for a, b in (e.decode().split() for e in entries)]


async def done(redis: PoolRedis, job_id: str) -> int:
    return int(await redis.get("done:" + job_id) or 0)


def burst_worker(app_dir: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    proc = run_pool(app_dir, "worker", "--burst", "--redis", redis_url, SETTINGS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {lines}"
    assert "Traceback" not in lines[0]
    return lines[0]


BUSY_SETTINGS = """
class WorkerSettings:
    functions = [whoami, tracked]
    heartbeat_interval = 0.2
    max_jobs = 1  # a busy child has no read outstanding
"""


async def occupy_both_children(sup: Supervisor, redis: PoolRedis, *job_ids: str) -> list[Job]:
    """One 30 s job on each of the two children (max_jobs = 1). With an idle sibling, a job handed back at an
    immediate stop could reach the sibling's outstanding read (test_immediate_stop_starts_no_job_in_a_sibling)."""
    jobs = [await redis.enqueue_job("tracked", 30.0, _job_id=job_id) for job_id in job_ids]

    async def both_started() -> bool:
        runs = [await starts(redis, job_id) for job_id in job_ids]
        return all(runs) and len({r[0][1] for r in runs}) == len(job_ids)

    await sup.wait(both_started, "one job started on each child")
    return [job for job in jobs if job is not None]


async def assert_handed_back_and_rerun(app_dir: Path, redis_url: str, redis: PoolRedis, jobs: list[Job]) -> None:
    """Every job is queued again (nothing lost), and a later worker runs each one as try 2, exactly once."""
    for job in jobs:
        assert await job.status() == JobStatus.queued, (job.job_id, await job.result_info())
    burst_worker(app_dir, redis_url)
    for job in jobs:
        result = await job.result(timeout=5)
        assert result["job_try"] == 2, (job.job_id, await starts(redis, job.job_id))
        assert [t for t, _ in await starts(redis, job.job_id)] == [1, 2]
        assert await done(redis, job.job_id) == 1


# --- 1. bad input: exit codes before anything starts -----------------------------------------------------------------

FORK_SPY = """
import os
os.register_at_fork(after_in_child=lambda: open("forked", "w").close())
"""
BARE_JOB = "async def job(ctx):\n    return 1\n"


@pytest.mark.parametrize(
    ("source", "settings", "expected"),
    [
        (None, "nosuchmodule.WorkerSettings", "cannot import settings 'nosuchmodule.WorkerSettings'"),
        (FORK_SPY + "raise RuntimeError('boom at import')\n", SETTINGS, "RuntimeError: boom at import"),
        (FORK_SPY + "class WorkerSettings:\n    functions = []\n", SETTINGS, "no functions"),
        (FORK_SPY + "class Other:\n    pass\n", SETTINGS, "cannot import settings 'app.WorkerSettings'"),
        (FORK_SPY + "class WorkerSettings:\n    functions = ['nope']\n", SETTINGS, "functions[0]: 'nope' is not"),
        (
            FORK_SPY + "class WorkerSettings:\n    functions = ['app.nonexistent']\n",
            SETTINGS,
            'functions[0]: cannot import \'app.nonexistent\': Module "app" does not define a "nonexistent" attribute',
        ),
        (
            FORK_SPY + BARE_JOB + "class WorkerSettings:\n    functions = [job]\n    cron_jobs = [job]\n",
            SETTINGS,
            "cron_jobs[0]: expected cron(...), got function job",
        ),
        (
            FORK_SPY + BARE_JOB + "class WorkerSettings:\n    functions = [job]\n    on_startup = 'app.boot'\n",
            SETTINGS,
            "on_startup: expected an async function, got the string 'app.boot'",
        ),
    ],
    ids=[
        "missing-module",
        "raises-at-import",
        "no-functions",
        "missing-attribute",
        "function-not-a-path",
        "function-not-found",
        "cron-job-not-a-cron",
        "hook-not-callable",
    ],
)
def test_bad_settings_exit_1_before_any_fork(
    app_dir: Path, redis_url: str, source: str | None, settings: str, expected: str
) -> None:
    if source is not None:
        (app_dir / "app.py").write_text(source)
    pidfile = app_dir / "pool.pid"
    proc = run_pool(app_dir, "start", "--procs", "2", "--pidfile", str(pidfile), "--redis", redis_url, settings)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert expected in one_line(proc)
    assert not (app_dir / "forked").exists(), "the supervisor forked before reporting the settings error"
    assert not pidfile.exists()


@pytest.mark.parametrize("args", [["--no-such-flag"], ["--procs", "0"], ["--child-timeout", "-1"]])
def test_bad_flags_exit_2(app_dir: Path, args: list[str]) -> None:
    write_app(app_dir)
    proc = run_pool(app_dir, "start", "--pidfile", str(app_dir / "pool.pid"), *args, SETTINGS)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (app_dir / "pool.pid").exists()


def test_pool_start_without_flags_gives_the_supervisor_config_defaults() -> None:
    """Each option is defined once: the flags' defaults are the config's, and a flag lands in its config field."""
    parser = build_parser()
    given = SupervisorConfig.from_args(parser.parse_args(["start", SETTINGS]), None)
    assert given == SupervisorConfig(settings_path=SETTINGS, pidfile=os.path.abspath(DEFAULT_PIDFILE))
    flags = ["--max-memory-per-child", "64", "--graceful-timeout", "0", "--procs", "3"]
    given = SupervisorConfig.from_args(parser.parse_args(["start", *flags, SETTINGS]), None)
    assert (given.max_memory_per_child_mb, given.graceful_timeout, given.procs) == (64.0, 0.0, 3)


@pytest.mark.parametrize("command", ["reload", "stop", "status"])
@pytest.mark.parametrize("pidfile_content", [None, "dead-pid", "garbage"])
def test_commands_without_a_running_supervisor_exit_1(app_dir: Path, command: str, pidfile_content: str | None) -> None:
    pidfile = app_dir / "pool.pid"
    if pidfile_content == "dead-pid":
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        pidfile.write_text(f"{gone.pid}\n")
    elif pidfile_content == "garbage":
        pidfile.write_text("not a pid\n")
    proc = run_pool(app_dir, command, "--pidfile", str(pidfile))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no running supervisor" in one_line(proc)


# --- 2. a healthy start --------------------------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55word-zq"


async def test_start_titles_status_and_jobs_without_leaking_the_password(
    app_dir: Path, start_supervisor: Callable[..., Supervisor], redis_server_factory: Callable[..., Any]
) -> None:
    server = redis_server_factory(password=PASSWORD)
    assert PASSWORD in server.url
    write_app(app_dir)
    sup = start_supervisor(server.url, procs=2)
    pids = await sup.wait_ready(2)

    assert title(sup.pid) == SUPERVISOR_TITLE
    await sup.wait(lambda: all(CHILD_TITLE.fullmatch(title(pid)) for pid in pids), "child titles with jobs=N")
    slots = sorted(CHILD_TITLE.fullmatch(title(pid)).group(1) for pid in pids)  # type: ignore[union-attr]
    assert slots == ["1", "2"]

    def status_rows() -> dict[int, str] | None:
        proc = sup.cli("status")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = {int(m[2]): m[3] for m in re.finditer(r"^\s*(\d+)\s+(\d+)\s+(\w+)\s", proc.stdout, re.M)}
        return rows if rows == dict.fromkeys(pids, "ready") else None

    await sup.wait(status_rows, "`pool status` lists both children as ready")

    client = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        jobs = [await client.enqueue_job("whoami") for _ in range(6)]
        results = {await job.result(timeout=10) for job in jobs if job is not None}
    finally:
        await client.aclose()
    assert len(jobs) == 6
    assert results and results <= pids

    for proc in [sup.process, *sup.children().values()]:
        assert PASSWORD.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes(), title(proc.pid)
    assert PASSWORD not in sup.log()
    assert sup.child_pids() == pids


# --- 3. a child killed -9 mid-job -----------------------------------------------------------------------------------


async def test_killed_child_is_replaced_and_its_job_handed_back_at_once(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    # A slow Worker heartbeat (settings) makes the idle-time reclaim take >= 2 s after the kill (>= 2 x the
    # heartbeat, whichever the supervisor applies): a retry sooner than that can only be the parent's hand-back.
    write_app(app_dir, DEFAULT_SETTINGS.replace("heartbeat_interval = 0.2", "heartbeat_interval = 2"))
    sup = start_supervisor(redis_url, procs=2)
    pids = await sup.wait_ready(2)
    job = await redis.enqueue_job("tracked", 3.0, True, _job_id="victim")
    assert job is not None
    [(job_try, victim)] = await sup.wait(lambda: starts(redis, "victim"), "the job started")
    assert job_try == 1 and victim in pids

    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    async def retried() -> bool:
        return len(await starts(redis, "victim")) >= 2

    await sup.wait(retried, "the job started again", timeout=5)
    retried_after = time.monotonic() - killed_at

    def replacement_ready() -> set[int]:
        return (sup.logged_ready() & sup.child_pids()) - pids

    [replacement] = await sup.wait(replacement_ready, "a replacement child is ready")
    ready_after = time.monotonic() - killed_at
    print(
        f"\n[timing] child kill -9 -> replacement ready: {ready_after:.3f}s; job restarted after {retried_after:.3f}s"
    )

    result = await job.result(timeout=5)
    completed_after = time.monotonic() - killed_at
    assert result["job_try"] == 2 and result["pid"] != victim
    assert completed_after < 5.0
    assert retried_after < 1.5, "the job was not handed back at once (it waited for the idle-time reclaim)"
    assert [t for t, _ in await starts(redis, "victim")] == [1, 2]
    assert await done(redis, "victim") == 1
    info = await job.result_info()
    assert info is not None and info.job_try == 2
    assert re.search(rf"\(pid {victim}\) was killed by SIGKILL.*1 job handed back", sup.log())
    assert sup.child_pids() == (pids - {victim}) | {replacement}


# --- 4. crash loops and boot failures -------------------------------------------------------------------------------


async def test_crash_loop_restarts_with_growing_delays(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(
        app_dir,
        """
        class WorkerSettings:
            functions = [crash]
            max_tries = 50
        """,
        extra="""
        async def crash(ctx):
            await ctx["redis"].rpush("crash-times", repr(time.time()))
            os._exit(3)
        """,
    )
    sup = start_supervisor(redis_url, procs=1)
    await sup.wait_ready(1)
    await redis.enqueue_job("crash", _job_id="crasher")
    loop_line = re.compile(r"crashing in a loop \((\d+) in a row\): next restart in ([\d.]+)s")
    await sup.wait(lambda: len(loop_line.findall(sup.log())) >= 3, "three 'crashing in a loop' reports", timeout=15)

    reports = [(int(n), float(delay)) for n, delay in loop_line.findall(sup.log())]
    counts = [n for n, _ in reports]
    delays = [delay for _, delay in reports]
    assert counts == list(range(3, 3 + len(counts)))
    assert all(b > a for a, b in itertools.pairwise(delays)), delays
    assert sup.log().count("exited with code 3") >= counts[-1]
    # The delays are honoured: crash k (job start k) is followed by start k+1 no sooner than the announced delay.
    times = [float(t) for t in await redis.lrange("crash-times", 0, -1)]
    for n, delay in reports:
        if n < len(times):
            assert times[n] - times[n - 1] >= delay * 0.9, (n, delay, times)
    assert not sup.exited()


async def test_children_that_fail_to_boot_stop_the_supervisor(
    app_dir: Path, redis_url: str, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(
        app_dir,
        """
        class WorkerSettings:
            functions = [whoami]
            on_startup = startup
        """,
        extra="""
        async def startup(ctx):
            raise RuntimeError("startup boom")
        """,
    )
    sup = start_supervisor(redis_url, procs=2)
    assert await sup.wait_exit(timeout=15) == 1
    log = sup.log()
    assert "fail to boot" in log
    assert "boot failure 5 of 5" in log and "boot failure 6" not in log
    assert "startup boom" in log
    assert not READY_LINE.search(log)
    await sup.wait(lambda: not processes_in(app_dir), "no child left")
    assert not sup.pidfile.exists()


# --- 5. a stalled event loop ----------------------------------------------------------------------------------------

STALL = """
async def stall_the_loop(ctx):
    await ctx["redis"].rpush("starts:" + ctx["job_id"], f"{ctx['job_try']} {os.getpid()}")
    if ctx["job_try"] == 1:
        time.sleep(60)  # blocks the event loop: no heartbeat reaches the parent
    return {"job_try": ctx["job_try"], "pid": os.getpid()}
"""


async def test_stalled_child_is_dumped_killed_and_its_job_rerun(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(
        app_dir,
        """
        class WorkerSettings:
            functions = [stall_the_loop]
            heartbeat_interval = 5  # no idle-time takeover (15 s) before the parent's stall kill + hand-back
        """,
        extra=STALL,
    )
    sup = start_supervisor(redis_url, "--child-timeout", "2", procs=2)
    pids = await sup.wait_ready(2)
    job = await redis.enqueue_job("stall_the_loop", _job_id="staller")
    assert job is not None
    [(_, stalled)] = await sup.wait(lambda: starts(redis, "staller"), "the job started")

    await sup.wait(lambda: re.search(rf"\(pid {stalled}\) stalled", sup.log()), "'stalled' logged", timeout=6)
    await sup.wait(lambda: stalled not in sup.child_pids(), "the stalled child is gone")
    result = await job.result(timeout=8)
    assert result["job_try"] == 2 and result["pid"] != stalled
    [replacement] = (await sup.wait_ready(2, exclude={stalled})) - pids

    log = sup.log()
    assert re.search(r"(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\)", log), log
    assert re.search(r'File ".*app\.py", line \d+ in stall_the_loop', log), log
    assert replacement != stalled
    assert [t for t, _ in await starts(redis, "staller")] == [1, 2]
    assert re.search(rf"\(pid {stalled}\) was killed by SIGKILL.*1 job handed back", log)


# --- 6. stopping ----------------------------------------------------------------------------------------------------


async def test_sigterm_stops_cleanly_and_hands_the_job_back(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(app_dir)
    sup = start_supervisor(redis_url, "--graceful-timeout", "1", procs=2)
    await sup.wait_ready(2)
    children = list(sup.children().values())
    job = await redis.enqueue_job("tracked", 30.0, _job_id="long")
    assert job is not None
    await sup.wait(lambda: starts(redis, "long"), "the job started")

    sent = time.monotonic()
    sup.popen.send_signal(signal.SIGTERM)
    assert await sup.wait_exit(timeout=10) == 0, sup.log()
    assert time.monotonic() - sent < 1 + 3
    assert not [p.pid for p in children if alive(p)]
    assert not processes_in(app_dir)
    assert await job.status() == JobStatus.queued, (await job.result_info(), sup.log())
    assert not sup.pidfile.exists()

    burst_worker(app_dir, redis_url)
    result = await job.result(timeout=5)
    assert result["job_try"] == 2, (await starts(redis, "long"), sup.log())
    assert [t for t, _ in await starts(redis, "long")] == [1, 2]
    assert await done(redis, "long") == 1


@pytest.mark.parametrize("how", ["second-sigterm", "stop-force"])
async def test_immediate_stop_cuts_the_graceful_timeout_and_loses_nothing(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor], how: str
) -> None:
    write_app(app_dir, BUSY_SETTINGS)
    sup = start_supervisor(redis_url, "--graceful-timeout", "20", procs=2)
    await sup.wait_ready(2)
    children = list(sup.children().values())
    jobs = await occupy_both_children(sup, redis, "long-a", "long-b")

    sent = time.monotonic()
    if how == "second-sigterm":
        sup.popen.send_signal(signal.SIGTERM)
        # Signals of one kind do not queue: send the second once the first has been handled.
        await sup.wait(lambda: "graceful shutdown" in sup.log(), "the first SIGTERM handled")
        sup.popen.send_signal(signal.SIGTERM)
    else:
        stop = sup.cli("stop", "--force")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert f"supervisor {sup.pid} stopped" in stop.stdout
    assert await sup.wait_exit(timeout=10) == 0, sup.log()
    assert time.monotonic() - sent < 4, ("the immediate stop waited for the 20 s graceful timeout", sup.log())
    assert "immediate shutdown" in sup.log()
    assert not [p.pid for p in children if alive(p)]
    await assert_handed_back_and_rerun(app_dir, redis_url, redis, jobs)


# --- 7. reload ------------------------------------------------------------------------------------------------------


def write_helper(app_dir: Path, source: str, bump: float) -> None:
    """Replace helper.py atomically, with an mtime no cached bytecode could match."""
    tmp = app_dir / "helper.py.new"
    tmp.write_text(source)
    stamp = time.time() + bump
    os.utime(tmp, (stamp, stamp))
    os.replace(tmp, app_dir / "helper.py")


async def test_reload_swaps_code_and_survives_a_broken_reload(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_helper(app_dir, "VERSION = 'v1'\n", 0)
    write_app(
        app_dir,
        """
        class WorkerSettings:
            functions = [version]
            heartbeat_interval = 0.2
        """,
        extra="""
        import helper


        async def version(ctx):
            return [helper.VERSION, os.getpid()]
        """,
    )
    sup = start_supervisor(redis_url, procs=2)
    old = await sup.wait_ready(2)

    async def versions(count: int) -> list[list[Any]]:
        jobs = [await redis.enqueue_job("version") for _ in range(count)]
        return [await job.result(timeout=10) for job in jobs if job is not None]

    assert {v for v, _ in await versions(4)} == {"v1"}

    write_helper(app_dir, "VERSION = 'v2'\n", 10)
    began = time.monotonic()
    reload = sup.cli("reload")
    signalled = time.monotonic()
    assert reload.returncode == 0, reload.stdout + reload.stderr
    new = await sup.wait_ready(2, exclude=old, timeout=15)
    took = time.monotonic()
    print(
        f"\n[timing] jobless reload of 2 children: {took - began:.3f}s from running `pool reload` "
        f"({took - signalled:.3f}s after the command returned)"
    )
    results = await versions(6)
    assert {v for v, _ in results} == {"v2"}
    assert {pid for _, pid in results} <= new

    # The same jobless reload timed from the signal itself (`pool reload` above includes the CLI's start-up).
    sent = time.monotonic()
    sup.popen.send_signal(signal.SIGHUP)
    new = await sup.wait_ready(2, exclude=old | new, timeout=15)
    print(f"[timing] jobless reload of 2 children: {time.monotonic() - sent:.3f}s from a direct SIGHUP")

    write_helper(app_dir, "VERSION = 'v3\n", 20)  # a syntax error
    reload = sup.cli("reload")
    assert reload.returncode == 0, reload.stdout + reload.stderr
    await sup.wait(lambda: "reload failed" in sup.log(), "'reload failed' logged")
    assert "SyntaxError" in sup.log()
    results = await versions(6)
    assert {v for v, _ in results} == {"v2"}
    assert {pid for _, pid in results} <= new
    time.sleep(1.5)  # let time pass: nothing is replaced
    assert sup.child_pids() == new
    assert sup.log().count("retiring worker") == 4  # those of the two good reloads only


# --- 8. scaling -----------------------------------------------------------------------------------------------------


async def test_ttin_adds_a_child_and_ttou_removes_one(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(app_dir)
    sup = start_supervisor(redis_url, procs=2)
    two = await sup.wait_ready(2)
    sup.popen.send_signal(signal.SIGTTIN)
    three = await sup.wait_ready(3)
    assert two < three
    # Let the new child's first health write finish before it is retired: a cancel landing on that Redis call
    # can be swallowed (redis-py's asyncio.wait_for on Python 3.11) and the child then hangs in close() until
    # it is SIGKILLed. That is redis-py's behaviour, not the supervisor's; this test is about scaling.
    workers = QueueKeys(DEFAULT_QUEUE_NAME).workers

    async def three_health_entries() -> bool:
        return await redis.zcard(workers) == 3

    await sup.wait(three_health_entries, "three children wrote their health entry")
    sup.popen.send_signal(signal.SIGTTOU)
    back = await sup.wait_ready(2)
    assert back < three
    assert "scaling down" in sup.log()


# --- 9. the parent dies ---------------------------------------------------------------------------------------------


async def test_children_exit_when_the_supervisor_is_killed(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(app_dir, BUSY_SETTINGS)
    sup = start_supervisor(redis_url, procs=2)
    await sup.wait_ready(2)
    children = list(sup.children().values())
    jobs = await occupy_both_children(sup, redis, "orphan-a", "orphan-b")

    sup.popen.kill()
    sup.popen.wait(5)
    killed_at = time.monotonic()
    await sup.wait(lambda: not any(alive(p) for p in children), "every child exited", timeout=5)
    print(f"\n[timing] children gone {time.monotonic() - killed_at:.3f}s after the supervisor's SIGKILL")
    assert not processes_in(app_dir)
    await assert_handed_back_and_rerun(app_dir, redis_url, redis, jobs)


# --- 10. recycling --------------------------------------------------------------------------------------------------


async def test_children_are_recycled_after_max_jobs_and_no_job_runs_twice(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    write_app(app_dir)
    sup = start_supervisor(redis_url, "--max-jobs-per-child", "5", "--graceful-timeout", "5", procs=2)
    first = await sup.wait_ready(2)
    jobs = [await redis.enqueue_job("tracked", 0.05, True, _job_id=f"j{i}") for i in range(20)]
    results = [await job.result(timeout=10) for job in jobs if job is not None]
    assert len(results) == 20

    per_pid: dict[int, int] = {}
    for i in range(20):
        runs = await starts(redis, f"j{i}")
        assert len(runs) == 1, (i, runs)
        assert await done(redis, f"j{i}") == 1
        per_pid[runs[0][1]] = per_pid.get(runs[0][1], 0) + 1
    over_limit = {pid for pid, count in per_pid.items() if count >= 6}  # the limit is 5 plus a jitter of 0-1
    assert over_limit & first, per_pid

    await sup.wait(lambda: not sup.child_pids() & over_limit, "children over the limit are gone")
    await sup.wait_ready(2, exclude=over_limit)
    for pid in over_limit:
        assert re.search(rf"retiring worker \d+ \(pid {pid}\): \d+ jobs done \(limit [56]\)", sup.log())


# --- 11. systemd --------------------------------------------------------------------------------------------------


def test_sd_notify_ready_once_every_child_is_ready(
    app_dir: Path, redis_url: str, start_supervisor: Callable[..., Supervisor]
) -> None:
    address = str(app_dir / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(15)
        write_app(app_dir)
        sup = start_supervisor(redis_url, procs=2, NOTIFY_SOCKET=address)
        message = sock.recv(4096).decode()
        assert message == "READY=1"
        # The parent logs each child's readiness before it notifies.
        assert len(READY_LINE.findall(sup.log())) == 2
        assert len(sup.children()) == 2

        stop = sup.cli("stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert sock.recv(4096).decode() == "STOPPING=1"
    wait_for_sync(sup.exited, timeout=10, message="the supervisor exited")
    assert sup.popen.returncode == 0


# --- what the supervisor passes on to its children, and errors it reports before detaching ---------------------


def test_daemon_reports_bad_settings_before_detaching(app_dir: Path, redis_url: str) -> None:
    """`pool start --daemon` imports the settings before it detaches: exit 1 and one line, not exit 0 and a line
    in the log file only."""
    log_file = app_dir / "daemon.log"
    proc = run_pool(
        app_dir,
        *("start", "--daemon", "--log-file", str(log_file), "--pidfile", str(app_dir / "pool.pid")),
        *("--redis", redis_url, "nosuchmodule.WorkerSettings"),
    )
    try:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "cannot import settings" in one_line(proc)
    finally:
        wait_for_sync(lambda: not processes_in(app_dir), message="the daemon exited")


def start_daemon(app_dir: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pool(
        app_dir,
        *("start", "--daemon", "--log-file", str(app_dir / "daemon.log"), "--pidfile", str(app_dir / "pool.pid")),
        *("--redis", redis_url, "--procs", "2", *args, SETTINGS),
    )


def test_daemon_exits_0_only_once_its_workers_are_ready(app_dir: Path, redis_url: str) -> None:
    """`pool start --daemon` returns when the workers serve: `pool status` right after shows them all ready."""
    write_app(app_dir)
    try:
        proc = start_daemon(app_dir, redis_url)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        line = one_line(proc)
        assert "ready with 2 workers" in line and str(app_dir / "daemon.log") in line
        status = run_pool(app_dir, "status", "--pidfile", str(app_dir / "pool.pid"))
        assert status.returncode == 0, status.stderr
        assert len(re.findall(r"^\s*\d+\s+\d+\s+ready\s", status.stdout, re.M)) == 2, status.stdout

        again = start_daemon(app_dir, redis_url)  # a second start while this one runs
        assert again.returncode == 1, again.stdout + again.stderr
        assert "already running" in one_line(again)

        stop = run_pool(app_dir, "stop", "--pidfile", str(app_dir / "pool.pid"))
        assert stop.returncode == 0, stop.stdout + stop.stderr
    finally:
        for proc_left in processes_in(app_dir):
            proc_left.kill()
    wait_for_sync(lambda: not processes_in(app_dir), message="the daemon exited")


def test_daemon_that_cannot_come_up_exits_1_with_the_reason(
    app_dir: Path, redis_server_factory: Callable[..., Any]
) -> None:
    """A wrong password and workers that fail to boot: exit 1 and the reason in one line, nothing left running."""
    server = redis_server_factory(password=PASSWORD)
    write_app(app_dir)
    try:
        proc = start_daemon(app_dir, server.url.replace(PASSWORD, "wrong-password"))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "refused authentication" in one_line(proc)
        assert "wrong-password" not in proc.stderr
        wait_for_sync(lambda: not processes_in(app_dir), message="the daemon exited")

        write_app(
            app_dir,
            "class WorkerSettings:\n    functions = [whoami]\n    on_startup = startup\n",
            extra="async def startup(ctx):\n    raise RuntimeError('startup boom')\n",
        )
        proc = start_daemon(app_dir, server.url)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "fail to boot" in one_line(proc)
    finally:
        for proc_left in processes_in(app_dir):
            proc_left.kill()
    wait_for_sync(lambda: not processes_in(app_dir), message="the daemon exited")
    assert not (app_dir / "pool.pid").exists()


async def test_children_use_the_settings_heartbeat_interval(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    """A standalone worker (heartbeat 0.2 s) dies -9 mid-job; the supervisor's children, with the same settings,
    must take its job over after ~3 heartbeats (0.6-0.8 s), not after 3 x the supervisor's own 1 s heartbeat:
    the children keep the Worker's heartbeat_interval; the supervisor's pipe heartbeat is a separate one."""
    write_app(app_dir)  # heartbeat_interval = 0.2
    with open(app_dir / "standalone.log", "wb") as log:
        standalone = subprocess.Popen(
            [sys.executable, "-m", "pool", "worker", "--redis", redis_url, SETTINGS],
            cwd=app_dir,
            env=pool_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        job = await redis.enqueue_job("tracked", 30.0, _job_id="foreign")
        assert job is not None
        [(_, pid)] = await wait_for(lambda: starts(redis, "foreign"), timeout=10, message="the job started")
        assert pid == standalone.pid
        sup = start_supervisor(redis_url, procs=1)
        await sup.wait_ready(1)
        standalone.kill()
        standalone.wait(5)
        killed_at = time.monotonic()

        async def retried() -> bool:
            return len(await starts(redis, "foreign")) >= 2

        await sup.wait(retried, "the job was taken over", timeout=8)
        took = time.monotonic() - killed_at
        assert took < 2.0, f"taken over after {took:.2f}s: the children heartbeat every 1 s, not 0.2 s"
    finally:
        if standalone.poll() is None:
            standalone.kill()
            standalone.wait(5)


async def test_reload_lets_a_running_job_finish_within_the_default_graceful_timeout(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    """Without --graceful-timeout a retired child still lets its running job finish: the children get the
    graceful timeout as job_completion_wait (the Worker's own default, 0, would cancel running jobs)."""
    write_app(app_dir)
    sup = start_supervisor(redis_url, procs=1)
    old = await sup.wait_ready(1)
    job = await redis.enqueue_job("tracked", 2.0, True, _job_id="deploy")
    assert job is not None
    await sup.wait(lambda: starts(redis, "deploy"), "the job started")
    sup.popen.send_signal(signal.SIGHUP)
    result = await job.result(timeout=10)
    assert result["job_try"] == 1, "the reload cancelled the running job"
    await sup.wait_ready(1, exclude=old)


BLOCKER = """
async def blocker(ctx, seconds):
    '''Record the start, let the fetch loop issue its next read, then block the event loop.'''
    await ctx["redis"].rpush("starts:" + ctx["job_id"], f"{ctx['job_try']} {os.getpid()}")
    await asyncio.sleep(0.2)
    await ctx["redis"].rpush("blocking:" + ctx["job_id"], os.getpid())
    time.sleep(seconds)
"""


async def test_immediate_stop_starts_no_job_in_a_sibling(
    app_dir: Path, redis_url: str, redis: PoolRedis, start_supervisor: Callable[..., Supervisor]
) -> None:
    """Child X runs a long job; sibling Y's event loop is blocked (by a job) while its XREADGROUP is outstanding.
    On an immediate stop X cancels its job and hands it back, Redis delivers it to Y's read, and Y wakes up to
    both the reply and its own SIGQUIT. Y was told to stop: it must not start that job. The job stays queued
    and its next run is try 2."""
    write_app(
        app_dir,
        """
        class WorkerSettings:
            functions = [tracked, blocker]
            heartbeat_interval = 0.2
        """,
        extra=BLOCKER,
    )
    sup = start_supervisor(redis_url, procs=2)
    pids = await sup.wait_ready(2)

    async def both_reading() -> bool:
        clients = await redis.client_list()
        return sum(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in clients) == 2

    await sup.wait(both_reading, "both children wait in XREADGROUP")
    long_job = await redis.enqueue_job("tracked", 30.0, _job_id="long")
    assert long_job is not None
    [(_, x)] = await sup.wait(lambda: starts(redis, "long"), "the long job started")
    await sup.wait(both_reading, "X reads again, now behind Y")
    await redis.enqueue_job("blocker", 2.0, _job_id="block")
    [(_, y)] = await sup.wait(lambda: starts(redis, "block"), "the blocker started")
    assert {x, y} == pids  # Redis serves blocked readers first come, first served: Y was waiting first
    await sup.wait(lambda: redis.lrange("blocking:block", 0, -1), "Y's event loop is blocked")

    sup.popen.send_signal(signal.SIGQUIT)
    assert await sup.wait_exit(timeout=10) == 0, sup.log()
    assert await long_job.status() == JobStatus.queued, (await long_job.result_info(), sup.log())

    burst_worker(app_dir, redis_url)
    result = await long_job.result(timeout=5)
    assert [t for t, _ in await starts(redis, "long")] == [1, 2]
    assert result["job_try"] == 2, (await starts(redis, "long"), sup.log())


def test_a_worker_forked_just_as_its_supervisor_died_exits_rather_than_serve(tmp_path: Path) -> None:
    """PDEATHSIG is armed by the child after the fork: if the supervisor died in between, nothing signals the
    child and a watch of "has my parent pid changed?" starts from the new parent. The child compares with the
    supervisor's pid taken before the fork and exits (here: a child whose recorded parent is not its parent)."""
    script = (
        "import os\n"
        "from pool.supervisor.child import ChildSpec, run_child\n"
        "spec = ChildSpec(1, 1, 'x.Settings', 'w', 1.0, {}, os.getppid() + 1_000_000)\n"
        "run_child(spec, object(), os.open(os.devnull, os.O_WRONLY), [])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=pool_env(), timeout=30, capture_output=True, text=True
    )
    # it exits before it builds a worker from the settings (which, here, would fail with a traceback)
    assert (done.returncode, done.stderr) == (1, "")
