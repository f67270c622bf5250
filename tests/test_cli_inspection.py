"""The commands that look at a queue (``check``, ``health``, ``queue``, ``failed``), and the ``pool`` command's
small promises: ``--version``; ``--queue NAME`` instead of a settings module; ``queue list`` with each job's
function, try, enqueue time and status; removal asks first on a terminal and needs ``--yes`` elsewhere;
counts in words ("1 job"); a missing password said plainly, not in Redis's words about HELLO.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pool import PoolRedis, RedisSettings, __version__, create_pool
from tests.supervisor_utils import pool_env


def run_pool(*args: str, cwd: Path, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args],
        cwd=cwd,
        env=pool_env(),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_version(tmp_path: Path) -> None:
    proc = run_pool("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pool, version {__version__}"  # arq's form (click's)


async def enqueue(redis_url: str, queue: str, *job_ids: str) -> PoolRedis:
    redis = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue)
    for job_id in job_ids:
        assert await redis.enqueue_job("send", job_id, _job_id=job_id) is not None
    return redis


async def test_queue_option_needs_no_settings_module(tmp_path: Path, redis_url: str) -> None:
    redis = await enqueue(redis_url, "emails", "e1", "e2")
    await redis.aclose()
    where = ["--queue", "emails", "--redis", redis_url]
    info = run_pool("queue", "info", *where, cwd=tmp_path)
    assert info.returncode == 0 and "queue 'emails': ready=2" in info.stdout, info.stdout + info.stderr
    failed = run_pool("failed", "list", *where, cwd=tmp_path)
    assert failed.returncode == 0 and failed.stdout == "", failed.stderr
    assert "no failed job 'e9'" in one_error_line(run_pool("failed", "show", *where, "e9", cwd=tmp_path), 1)
    health = run_pool("health", *where, cwd=tmp_path)
    assert health.returncode == 1 and "no live supervisor" in health.stdout, health.stdout + health.stderr
    check = run_pool("check", *where, cwd=tmp_path)
    assert check.returncode == 1 and "Health check failed" in check.stdout + check.stderr
    for command in (["queue", "info"], ["health"], ["check"], ["failed", "list"]):
        line = one_error_line(run_pool(*command, "--redis", redis_url, cwd=tmp_path), 2)
        assert "SETTINGS" in line and "--queue" in line
    assert "bad{name}" in one_error_line(run_pool("queue", "info", "--queue", "bad{name}", cwd=tmp_path), 2)


async def test_queue_list_shows_function_try_enqueue_time_and_status(tmp_path: Path, redis_url: str) -> None:
    redis = await enqueue(redis_url, "emails", "first-job")
    await redis.aclose()
    listed = run_pool("queue", "list", "--queue", "emails", "--redis", redis_url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["job", "id", "function", "try", "enqueued", "status"]
    assert re.fullmatch(r"first-job\s+send\s+0\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+queued", row), row
    empty = run_pool("queue", "list", "--queue", "other", "--redis", redis_url, cwd=tmp_path)
    assert empty.stdout.strip() == "no jobs in queue 'other'"


@pytest.mark.parametrize("command", [["queue", "empty"], ["queue", "delete"], ["failed", "purge"]])
async def test_removing_asks_on_a_terminal_and_needs_yes_elsewhere(
    tmp_path: Path, redis_url: str, command: list[str]
) -> None:
    redis = await enqueue(redis_url, "emails", "e1")
    try:
        where = ["--queue", "emails", "--redis", redis_url]
        assert "--yes" in one_error_line(run_pool(*command, *where, cwd=tmp_path), 2)
        assert await redis.queue_info() == {**await redis.queue_info(), "ready": 1}  # nothing removed

        said_no = answer_on_a_terminal("n\n", *command, *where, cwd=tmp_path)
        assert said_no.returncode == 1 and "cancelled" in said_no.stdout, said_no.stdout
        assert (await redis.queue_info())["ready"] == 1

        said_yes = answer_on_a_terminal("y\n", *command, *where, cwd=tmp_path)
        assert said_yes.returncode == 0, said_yes.stdout
        done = run_pool(*command, *where, "--yes", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        if command != ["failed", "purge"]:
            assert (await redis.queue_info())["ready"] == 0
    finally:
        await redis.aclose()


def answer_on_a_terminal(answer: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``pool *args`` with a terminal as its stdin, stdout and stderr, typing ``answer``."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pool", *args],
            cwd=cwd,
            env=pool_env(),
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.write(leader, answer.encode())
        proc.wait(30)
        output = b""
        os.set_blocking(leader, False)
        while True:
            try:
                chunk = os.read(leader, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(follower)
        os.close(leader)
    return subprocess.CompletedProcess(args, proc.returncode, output.decode(errors="replace"), "")


def test_requeue_takes_a_job_id_or_all_not_both(tmp_path: Path, redis_url: str) -> None:
    proc = run_pool("failed", "requeue", "--queue", "q", "--redis", redis_url, "some-id", "--all", cwd=tmp_path)
    assert "not both" in one_error_line(proc, 2)


async def test_counts_are_in_words(tmp_path: Path, redis_url: str) -> None:
    redis = await enqueue(redis_url, "emails", "e1")
    await redis.aclose()
    proc = run_pool("queue", "empty", "--queue", "emails", "--redis", redis_url, "--yes", cwd=tmp_path)
    assert proc.stdout.strip() == "removed 1 waiting job", proc.stdout
    proc = run_pool("failed", "purge", "--queue", "emails", "--redis", redis_url, "--yes", cwd=tmp_path)
    assert proc.stdout.strip() == "purged 0 failed jobs", proc.stdout


@pytest.mark.parametrize("command", [["check"], ["health"], ["queue", "info"], ["worker"]])
def test_a_missing_password_is_one_plain_line(
    tmp_path: Path, redis_server_factory: Callable[..., Any], command: list[str]
) -> None:
    server = redis_server_factory(password="s3cret-pw")
    url = f"redis://127.0.0.1:{server.port}/0"  # no password
    proc = run_pool(*command, "--redis", url, "tests.apps.basic.WorkerSettings", cwd=tmp_path)
    line = one_error_line(proc, 1)
    assert "needs a password" in line and "HELLO" not in line and "NOAUTH" not in line, line
