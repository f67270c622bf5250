"""``--log-format json``: every line a process writes is one JSON object, and a job's lines carry its fields.

Real processes: a lone ``pool worker`` and a ``pool start`` whose two children write to the same pipe as their
parent (through pool/logs.py's LogSink), with a failing job (its traceback inside its line).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from pool import PoolRedis
from pool.logs import whole_lines
from tests.helpers import wait_for, wait_for_sync
from tests.supervisor_utils import pool_env
from tests.worker_utils import WorkerProcess

APP = """
async def ok(ctx, x):
    return x


async def boom(ctx):
    raise ValueError("boom")


class WorkerSettings:
    functions = [ok, boom]
    heartbeat_interval = 0.2
"""


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as a JSON object (a line that is not one fails the test, naming it)."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


def about(entries: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("job_id") == job_id]


async def test_a_worker_with_json_logs_writes_one_object_per_line_with_the_jobs_fields(
    tmp_path: Path, redis_url: str, redis: PoolRedis
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    worker = WorkerProcess(redis_url, tmp_path / "worker.log", "--log-format", "json", settings="app.WorkerSettings")
    try:
        ok = await redis.enqueue_job("ok", 42)
        failing = await redis.enqueue_job("boom")
        assert ok is not None and failing is not None
        assert await ok.result(timeout=15) == 42
        await wait_for(lambda: failing.result_info(), 10, message="the failing job recorded")
    finally:
        worker.popen.send_signal(signal.SIGTERM)
        worker.popen.wait(15)
    entries = json_lines(worker.log_path.read_text())
    started, finished = about(entries, ok.job_id)
    assert started["function"] == "ok" and started["try"] == 1 and "duration" not in started
    assert finished["function"] == "ok" and isinstance(finished["duration"], float)
    assert finished["level"] == "INFO" and finished["logger"] == "pool.worker"
    [failure] = [e for e in about(entries, failing.job_id) if e["level"] == "ERROR"]
    assert failure["function"] == "boom" and failure["try"] == 1
    assert 'raise ValueError("boom")' in failure["exc_info"]  # the traceback inside its line
    assert any(e["message"].startswith("shutdown complete") for e in entries)


async def test_a_supervisor_and_its_children_write_whole_json_lines_to_one_pipe(
    tmp_path: Path, redis_url: str, redis: PoolRedis
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    command = [sys.executable, "-m", "pool", "start", "--procs", "2", "--pidfile", str(tmp_path / "pool.pid")]
    command += ["--redis", redis_url, "--log-format", "json", "app.WorkerSettings"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=pool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output: list[bytes] = []
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    reader = threading.Thread(target=lambda: output.extend(iter(lambda: os.read(fd, 512), b"")), daemon=True)
    reader.start()  # small reads: the writers meet a pipe whose reader lags, as a log collector's would
    try:
        wait_for_sync(lambda: b'"message": "2 workers ready"' in b"".join(output), 20, message="2 workers ready")
        jobs = [await redis.enqueue_job("ok", i) for i in range(300)]
        jobs.append(await redis.enqueue_job("boom"))
        for job in jobs:
            assert job is not None
            await wait_for(job.result_info, 20, message=f"job {job.job_id} finished")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    entries = json_lines(b"".join(output).decode())
    finished = [e for e in entries if e.get("function") == "ok" and "duration" in e]
    assert len(finished) == 300
    assert any(e["logger"] == "pool.supervisor" and "ready" in e["message"] for e in entries)


def test_a_bad_log_format_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pool", "worker", "app.WorkerSettings", "--log-format", "yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=pool_env(),
    )
    assert proc.returncode == 2 and "--log-format" in proc.stderr


def test_log_output_is_cut_at_line_ends_within_a_pipe_write() -> None:
    data = b"".join(b"%d " % i + b"x" * 120 + b"\n" for i in range(200))
    chunks = whole_lines(data)
    assert b"".join(chunks) == data
    assert all(len(c) <= 4096 and c.endswith(b"\n") for c in chunks)
    long_line = b"y" * 5000 + b"\n"
    assert whole_lines(b"a\n" + long_line) == [b"a\n", long_line]
