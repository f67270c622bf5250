"""Redis down: commands that look fail at once; `pool worker` and `pool start` wait the same documented way.

One-shot commands (check, health, queue, failed) make one attempt and print one line. The long-running ones wait
up to ``--wait-for-redis S`` (default: the settings' conn_retries x conn_retry_delay), come up if Redis does,
and otherwise exit 1 with one line saying they gave up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pool import RedisSettings, create_pool
from tests.helpers import wait_for_sync
from tests.redis_server import RedisServer, _die_with_parent, free_port
from tests.supervisor_utils import pool_env, run_pool

SETTINGS = "tests.apps.basic.WorkerSettings"  # arq's defaults: conn_retries=5, conn_retry_delay=1


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("command", [["check"], ["health"], ["queue", "info"], ["failed", "list"]])
def test_commands_that_look_fail_at_once_in_one_line_when_redis_is_down(tmp_path: Path, command: list[str]) -> None:
    port = free_port()
    started = time.monotonic()
    proc = run_pool(*command, "--redis", f"redis://127.0.0.1:{port}/0", SETTINGS, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert "cannot connect to Redis" in lines[0] and str(port) in lines[0]
    assert elapsed < 4, f"{elapsed:.1f}s"  # no retries a second apart (it took ~9.5 s with 5 retry lines)


LONG_RUNNING = {"worker": ["worker"], "start": ["start", "--procs", "1"]}


def long_running(name: str, tmp_path: Path) -> list[str]:
    command = LONG_RUNNING[name]
    return command + (["--pidfile", str(tmp_path / "pool.pid")] if name == "start" else [])


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_worker_and_start_give_up_after_wait_for_redis(tmp_path: Path, name: str) -> None:
    port = free_port()
    started = time.monotonic()
    args = [*long_running(name, tmp_path), "--wait-for-redis", "1.5", "--redis", f"redis://127.0.0.1:{port}/0"]
    proc = run_pool(*args, SETTINGS, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = error_lines(proc)[-1]
    assert "cannot connect to Redis" in last and "gave up after waiting 1.5s" in last, last
    assert 1.5 <= elapsed < 8, f"{elapsed:.1f}s"
    assert not (tmp_path / "pool.pid").exists()


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_worker_and_start_by_default_wait_as_the_settings_say(tmp_path: Path, name: str) -> None:
    """DeadRedisSettings: conn_retries=0, so no wait at all (`pool start` used to wait forever)."""
    port = free_port()
    env = pool_env(POOL_TEST_DEAD_PORT=str(port))
    proc = subprocess.run(
        [sys.executable, "-m", "pool", *long_running(name, tmp_path), "tests.apps.basic.DeadRedisSettings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = error_lines(proc)[-1]
    assert "cannot connect to Redis" in last and str(port) in last, last
    assert "waiting for Redis" not in proc.stderr


@pytest.fixture
def late_redis() -> Iterator[RedisServer]:
    """A Redis on a port chosen now and started later, by the test."""
    server = RedisServer(port=free_port())
    yield server
    server.close()


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
async def test_worker_and_start_come_up_when_redis_does(tmp_path: Path, late_redis: RedisServer, name: str) -> None:
    log_path = tmp_path / "pool.log"
    url = f"redis://127.0.0.1:{late_redis.port}/0"
    args = [*long_running(name, tmp_path), "--wait-for-redis", "60", "--redis", url, SETTINGS]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pool", *args],
            cwd=tmp_path,
            env=pool_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        wait_for_sync(lambda: "waiting for Redis" in log_path.read_text(), 15, message="waiting for Redis")
        late_redis.start()
        redis = await create_pool(RedisSettings.from_dsn(url))
        try:
            job = await redis.enqueue_job("add", 1, 2)
            assert job is not None
            assert await job.result(timeout=20) == 3
        finally:
            await redis.aclose()
        assert proc.poll() is None, log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
