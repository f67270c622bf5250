"""The ``pool`` command, run for real as a subprocess (``python -m pool ...``) against a private Redis.

Exit codes: 0 success, 1 failure, 2 usage error; a failure is one line on stderr, never a traceback.
Settings come from tests/apps/basic.py (importable through PYTHONPATH) or from an app written into a tmp dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pool import RedisSettings, create_pool
from pool.jobs import JobStatus
from tests.helpers import wait_for, wait_for_sync
from tests.redis_server import _die_with_parent, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = "tests.apps.basic"
SETTINGS = f"{APP}.WorkerSettings"
HEALTH_LINE = re.compile(
    r"Health check successful: [A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} "
    r"j_complete=\d+ j_failed=\d+ j_retried=\d+ j_ongoing=\d+ queued=\d+"
)
NO_SENTINEL = "Health check failed: no health check sentinel value found"


def pool_env(**extra: str) -> dict[str, str]:
    """The environment of a ``pool`` subprocess: the repo importable, no POOL_REDIS_URL unless given."""
    env = {k: v for k, v in os.environ.items() if k != "POOL_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_pool(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 15
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args],
        cwd=cwd,
        env=env or pool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Exit ``code``, exactly one non-empty line on stderr containing each fragment, and no traceback."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output
    assert "Traceback" not in output, output
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class PoolProcess:
    """A background ``pool`` process whose combined output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "pool", *args],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def returncode(self) -> int | None:
        return self.popen.poll()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., PoolProcess]]:
    """``spawn(*args, env=None)`` starts ``pool *args`` in the background; anything left is killed at teardown."""
    procs: list[PoolProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> PoolProcess:
        proc = PoolProcess(list(args), tmp_path / f"pool-{len(procs)}.log", tmp_path, env or pool_env())
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.popen.wait(10)


def write_app(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(source)


# --- help and usage errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["worker", "check"]),
        (["worker", "--help"], ["SETTINGS", "--burst", "--watch", "--redis"]),
        (["check", "--help"], ["SETTINGS", "--redis"]),
    ],
)
def test_help_exits_0(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    proc = run_pool(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in expected:
        assert word in proc.stdout
    assert proc.stdout.startswith("usage: pool")


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_pool(cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage: pool" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["worker", SETTINGS, "--bogus"], ["check", SETTINGS, "--burst"], ["worker"], ["frobnicate"]],
    ids=["top-level", "worker", "check", "missing-settings", "unknown-command"],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    proc = run_pool(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error:" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("command", ["worker", "check"])
def test_settings_must_be_a_dotted_path(tmp_path: Path, command: str) -> None:
    proc = run_pool(command, "nodots", cwd=tmp_path)
    assert_one_line_error(proc, 2, "nodots")


def test_watch_needs_a_directory(tmp_path: Path) -> None:
    proc = run_pool("worker", SETTINGS, "--watch", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert_one_line_error(proc, 2, "nowhere")


# --- settings that cannot be used -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["worker", "check"])
@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ("missing_module.WorkerSettings", "missing_module"),
        (f"{APP}.NoSuchSettings", "NoSuchSettings"),
        ("broken_app.WorkerSettings", "boom at import"),
    ],
    ids=["missing-module", "missing-class", "module-raises"],
)
def test_settings_that_do_not_import(
    tmp_path: Path, redis_url: str, command: str, settings: str, fragment: str
) -> None:
    write_app(tmp_path, "broken_app", "raise RuntimeError('boom at import')\n")
    proc = run_pool(command, settings, "--redis", redis_url, cwd=tmp_path)
    assert_one_line_error(proc, 1, fragment)


def test_settings_without_functions(tmp_path: Path, redis_url: str) -> None:
    proc = run_pool("worker", f"{APP}.NoFunctions", "--redis", redis_url, cwd=tmp_path)
    assert_one_line_error(proc, 1, "NoFunctions", "function")


@pytest.mark.parametrize(
    ("functions", "fragments"),
    [
        ("['nope']", ["functions[0]: 'nope' is not a function nor a dotted path"]),
        ("[add, 'bad_functions.nonexistent']", ["functions[1]: cannot import 'bad_functions.nonexistent'"]),
        ("[add, 'no_such_module.job']", ["functions[1]: cannot import 'no_such_module.job'", "No module"]),
        ("'bad_functions.add'", ["functions must be a list of job functions"]),
    ],
    ids=["not-a-path", "missing-attribute", "missing-module", "not-a-list"],
)
def test_a_bad_entry_in_functions_is_one_line_naming_it(
    tmp_path: Path, redis_url: str, functions: str, fragments: list[str]
) -> None:
    write_app(
        tmp_path,
        "bad_functions",
        f"async def add(ctx, a, b):\n    return a + b\n\nclass WorkerSettings:\n    functions = {functions}\n",
    )
    proc = run_pool("worker", "bad_functions.WorkerSettings", "--redis", redis_url, cwd=tmp_path)
    line = assert_one_line_error(proc, 1, "invalid settings 'bad_functions.WorkerSettings'", *fragments)
    assert "app.WorkerSettings" not in line  # the example given for settings paths, not for functions


@pytest.mark.parametrize("command", ["worker", "check"])
def test_settings_with_an_invalid_queue_name(tmp_path: Path, redis_url: str, command: str) -> None:
    proc = run_pool(command, f"{APP}.BadQueueName", "--redis", redis_url, cwd=tmp_path)
    assert_one_line_error(proc, 1, "bad{name}")


# --- Redis unreachable or refusing us ----------------------------------------------------------------------------


def test_redis_unreachable(tmp_path: Path) -> None:
    """Settings with conn_retries=0 pointing at a port nothing listens on: exit 1 with one line, for both commands."""
    port = free_port()
    env = pool_env(POOL_TEST_DEAD_PORT=str(port))
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pool", command, f"{APP}.DeadRedisSettings"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in ("worker", "check")
    ]
    for popen in procs:
        stdout, stderr = popen.communicate(timeout=15)
        result = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
        line = assert_one_line_error(result, 1, str(port))
        assert "connect" in line.lower()
    # conn_retries=0: no retry at all (redis-py's own default Retry would add ~4 s per attempt)
    assert time.monotonic() - started < 5


WRONG_PASSWORD = "wr0ng-pw-x9"
RIGHT_PASSWORD = "s3cret-pw"


def _wrong_password_url(transport: str, redis_server_factory: Callable[..., Any]) -> str:
    """The URL (tcp or unix socket) of a new password-protected private server, with the wrong password in it."""
    server = redis_server_factory(password=RIGHT_PASSWORD, unix_socket=True)
    url: str = server.url if transport == "tcp" else server.unix_url
    assert f":{RIGHT_PASSWORD}@" in url
    return url.replace(f":{RIGHT_PASSWORD}@", f":{WRONG_PASSWORD}@")


@pytest.fixture(params=["tcp", "unix", "nothing-listening"])
def wrong_password_url(request: pytest.FixtureRequest, redis_server_factory: Callable[..., Any]) -> str:
    if request.param == "nothing-listening":
        return f"redis://:{WRONG_PASSWORD}@127.0.0.1:{free_port()}/0"
    return _wrong_password_url(request.param, redis_server_factory)


@pytest.fixture(params=["tcp", "unix"])
def wrong_password_url_tcp_or_unix(request: pytest.FixtureRequest, redis_server_factory: Callable[..., Any]) -> str:
    return _wrong_password_url(request.param, redis_server_factory)


def test_wrong_password_is_never_shown(tmp_path: Path, wrong_password_url: str) -> None:
    """Settings with conn_retries=0 and a wrong password: one line, exit 1, and no password anywhere."""
    env = pool_env(POOL_TEST_AUTH_URL=wrong_password_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pool", command, f"{APP}.WrongPasswordSettings"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in ("worker", "check")
    ]
    for popen in procs:
        stdout, stderr = popen.communicate(timeout=15)
        result = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
        assert_one_line_error(result, 1)
        assert WRONG_PASSWORD not in stdout + stderr
        assert RIGHT_PASSWORD not in stdout + stderr


async def test_password_url_works_and_is_redacted(tmp_path: Path, redis_server_factory: Callable[..., Any]) -> None:
    server = redis_server_factory(password=RIGHT_PASSWORD)
    pool = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        job = await pool.enqueue_job("add", 20, 22)
        assert job is not None
        proc = run_pool("worker", SETTINGS, "--burst", "-v", "--redis", server.url, cwd=tmp_path)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        assert await job.result(timeout=1) == 42
        assert f"redis://:***@127.0.0.1:{server.port}/0" in output
        assert RIGHT_PASSWORD not in output
    finally:
        await pool.aclose()


@pytest.mark.parametrize("command", ["worker", "check"])
def test_wrong_password_fails_at_once_saying_authentication(
    tmp_path: Path, wrong_password_url_tcp_or_unix: str, command: str
) -> None:
    """A wrong password via --redis (default conn_retries=5, 1 s apart) is not retried: the timeout of 3 s is
    well under the 5 s the retries would take (it would not become right by waiting)."""
    proc = run_pool(command, SETTINGS, "--redis", wrong_password_url_tcp_or_unix, cwd=tmp_path, timeout=3)
    line = assert_one_line_error(proc, 1)
    assert "authentication" in line.lower()
    assert WRONG_PASSWORD not in proc.stdout + proc.stderr


# --- running jobs ------------------------------------------------------------------------------------------------


async def test_burst_worker_runs_enqueued_jobs(tmp_path: Path, redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        jobs = [await pool.enqueue_job("add", i, 10, _job_id=f"add-{i}") for i in range(3)]
        proc = run_pool("worker", SETTINGS, "--burst", "--redis", redis_url, cwd=tmp_path)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        for i, job in enumerate(jobs):
            assert job is not None
            assert await job.status() == JobStatus.complete
            assert await job.result(timeout=1) == i + 10
        assert re.search(r"→ add-0:add\(0, 10\)", output), output
        assert re.search(r"← add-0:add ● 10", output), output
        assert "Traceback" not in output
    finally:
        await pool.aclose()


async def test_burst_worker_with_nothing_to_do_exits_0(tmp_path: Path, redis_url: str) -> None:
    proc = run_pool("worker", SETTINGS, "--burst", "--redis", redis_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "shutdown complete: j_complete=0 j_failed=0 j_retried=0" in proc.stderr


async def test_settings_are_imported_from_the_current_directory(tmp_path: Path, redis_url: str) -> None:
    """As arq does: ``pool worker myapp.WorkerSettings`` finds myapp.py in the working directory."""
    write_app(
        tmp_path,
        "myapp",
        "async def double(ctx, x):\n    return 2 * x\n\n\nclass WorkerSettings:\n    functions = [double]\n",
    )
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        job = await pool.enqueue_job("double", 21)
        assert job is not None
        proc = run_pool("worker", "myapp.WorkerSettings", "--burst", "--redis", redis_url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await job.result(timeout=1) == 42
    finally:
        await pool.aclose()


async def test_console_script_imports_from_the_current_directory(tmp_path: Path, redis_url: str) -> None:
    """The installed ``pool`` script (not ``python -m``, which puts the cwd on sys.path itself)."""
    script = Path(sys.executable).with_name("pool")
    if not script.exists():
        pytest.skip("the pool console script is not installed next to this interpreter")
    write_app(
        tmp_path, "cwdapp", "async def hello(ctx):\n    return 'hi'\n\n\nclass Settings:\n    functions = [hello]\n"
    )
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        job = await pool.enqueue_job("hello")
        assert job is not None
        env = pool_env()
        env.pop("PYTHONPATH")
        proc = subprocess.run(
            [str(script), "worker", "cwdapp.Settings", "--burst", "--redis", redis_url],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=15,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await job.result(timeout=1) == "hi"
    finally:
        await pool.aclose()


async def test_redis_url_from_env_and_flag_wins(tmp_path: Path, redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        first = await pool.enqueue_job("add", 1, 1)
        assert first is not None
        proc = run_pool("worker", SETTINGS, "--burst", cwd=tmp_path, env=pool_env(POOL_REDIS_URL=redis_url))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await first.result(timeout=1) == 2

        second = await pool.enqueue_job("add", 2, 2)
        assert second is not None
        dead = f"redis://127.0.0.1:{free_port()}/0"
        proc = run_pool(
            "worker", SETTINGS, "--burst", "--redis", redis_url, cwd=tmp_path, env=pool_env(POOL_REDIS_URL=dead)
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await second.result(timeout=1) == 4
    finally:
        await pool.aclose()


def test_invalid_redis_url_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_pool("worker", SETTINGS, "--redis", "http://user:hunter2@example.invalid/", cwd=tmp_path)
    line = assert_one_line_error(proc, 2, "http")
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "***" in line


# --- pool check and signals --------------------------------------------------------------------------------------


def test_check_reports_a_running_worker(tmp_path: Path, redis_url: str, spawn: Callable[..., PoolProcess]) -> None:
    proc = run_pool("check", SETTINGS, "--redis", redis_url, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert NO_SENTINEL in proc.stderr
    assert "Traceback" not in proc.stderr

    worker = spawn("worker", SETTINGS, "--redis", redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        wait_for_sync(
            lambda: worker.exited() or client.keys("pool:{default}:health:*"),
            timeout=10,
            message="the worker's health line",
        )
        assert not worker.exited(), worker.output()

        proc = run_pool("check", SETTINGS, "--redis", redis_url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert HEALTH_LINE.search(proc.stderr), proc.stderr

        worker.popen.send_signal(signal.SIGTERM)
        wait_for_sync(worker.exited, timeout=5, message="worker exit after SIGTERM")
        assert worker.returncode() == 0, worker.output()
        assert "shutdown on SIGTERM" in worker.output()
        assert "Traceback" not in worker.output()
        assert not client.keys("pool:{default}:health:*")
    finally:
        client.close()

    proc = run_pool("check", SETTINGS, "--redis", redis_url, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert NO_SENTINEL in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_hands_back_a_running_job(
    tmp_path: Path, redis_url: str, spawn: Callable[..., PoolProcess], sig: signal.Signals
) -> None:
    """job_completion_wait=0: the long job is cancelled at once, put back, and run again by the next worker."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        job = await pool.enqueue_job("slow", _job_id="slow-1")
        assert job is not None
        worker = spawn("worker", SETTINGS, "--redis", redis_url)
        await wait_for(
            lambda: worker.exited() or pool.get("started:slow-1"), timeout=10, message="the slow job started"
        )
        assert not worker.exited(), worker.output()
        assert await job.status() == JobStatus.in_progress

        worker.popen.send_signal(sig)
        await wait_for(worker.exited, timeout=5, message=f"worker exit after {sig.name}")
        assert worker.returncode() == 0, worker.output()
        assert "Traceback" not in worker.output()
        assert await job.status() == JobStatus.queued

        proc = run_pool("worker", SETTINGS, "--burst", "--redis", redis_url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert await job.result(timeout=1) == 2
        info = await job.info()
        assert info is not None
        assert info.job_try == 2
        assert await pool.get("runs:slow-1") == b"2"
    finally:
        await pool.aclose()
