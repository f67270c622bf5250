"""A log reader that stops reading stalls nothing: ``pool start … 2>&1 | sleep 45``.

The supervisor and its workers log to a pipe that nobody reads. Once the pipe's buffer is full, a blocking write
would freeze the supervisor's loop (no dead worker reaped or replaced, ``pool stop`` unanswered) and the workers'
event loops (no job run). Each process must go on, dropping the lines it cannot write, and say how many it
dropped once the reader is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pool import RedisSettings, create_pool
from tests.helpers import wait_for, wait_for_sync
from tests.redis_server import _die_with_parent
from tests.supervisor_utils import pool_env, run_pool

APP = """
import logging

log = logging.getLogger("pool.app")


async def chatty(ctx, i):
    log.info("job %d says %s", i, "x" * 10_000)
    return i


class WorkerSettings:
    functions = [chatty]
    heartbeat_interval = 0.2
"""
JOBS = 600  # 6 MB of log lines: far more than a pipe's buffer and each process's LogSink.LIMIT


@pytest.fixture
def unread_supervisor(tmp_path: Path, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`pool start --procs 2` whose stdout and stderr go to a pipe the test does not read (yet)."""
    (tmp_path / "chattyapp.py").write_text(APP)
    command = ["start", "--procs", "2", "--pidfile", str(tmp_path / "pool.pid"), "--redis", redis_url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pool", *command, "chattyapp.WorkerSettings"],
        cwd=tmp_path,
        env=pool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(psutil.Error):
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            for each in family:
                with contextlib.suppress(psutil.Error):
                    each.kill()
        proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait(10)


def ready_children(tmp_path: Path) -> dict[int, str]:
    """pid -> state of each worker, from the supervisor's status file (what `pool status` shows)."""
    try:
        status: dict[str, Any] = json.loads((tmp_path / "pool.pid.status.json").read_text())
    except (OSError, ValueError):
        return {}
    return {c["pid"]: c["state"] for c in status.get("children", []) if c["state"] == "ready"}


async def test_a_log_reader_that_stops_reading_stalls_neither_the_supervisor_nor_its_workers(
    tmp_path: Path, redis_url: str, unread_supervisor: subprocess.Popen[bytes]
) -> None:
    first = await wait_for(lambda: len(ready_children(tmp_path)) == 2 and ready_children(tmp_path), 20)

    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        jobs = [await redis.enqueue_job("chatty", i) for i in range(JOBS)]
        for job in jobs:  # the workers run every job while nobody reads their output
            assert job is not None
            await job.result(timeout=30)
    finally:
        await redis.aclose()

    victim = next(iter(first))
    os.kill(victim, signal.SIGKILL)  # the supervisor must still reap and replace a worker
    await wait_for(
        lambda: len(ready_children(tmp_path)) == 2 and victim not in ready_children(tmp_path),
        15,
        message="the killed worker replaced while the log pipe is full",
    )

    output: list[bytes] = []
    assert unread_supervisor.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(iter(unread_supervisor.stdout.readline, b"")))
    reader.start()  # the reader is back: the processes say what they dropped
    wait_for_sync(lambda: b"log lines dropped" in b"".join(output), 15, message="a line counting the dropped lines")

    stop = run_pool("stop", "--pidfile", str(tmp_path / "pool.pid"), "--timeout", "20", cwd=tmp_path)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert unread_supervisor.wait(10) == 0
    reader.join(10)
    text = b"".join(output).decode(errors="replace")
    assert "Traceback" not in text
    assert f"(pid {victim}) was killed by SIGKILL" in text
