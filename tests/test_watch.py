"""`pool worker --watch DIR` restarts the worker when a file under DIR changes (development)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import wait_for_sync
from tests.supervisor_utils import pool_env

APP = "async def job(ctx):\n    return {version!r}\n\nclass WorkerSettings:\n    functions = [job]\n"


def test_watch_restarts_the_worker_on_change(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "watchapp.py").write_text(APP.format(version="v1"))
    log_path = tmp_path / "watch.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pool",
                "worker",
                "--watch",
                str(tmp_path),
                "--redis",
                redis_url,
                "watchapp.WorkerSettings",
            ],
            cwd=tmp_path,
            env=pool_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        starts = lambda: log_path.read_text().count("Starting worker")  # noqa: E731
        wait_for_sync(lambda: starts() >= 1, 20, message="the worker started")
        time.sleep(0.5)  # let the watcher settle before the change (it ignores changes made while starting)
        (tmp_path / "watchapp.py").write_text(APP.format(version="v2"))
        wait_for_sync(lambda: starts() >= 2, 20, message="the worker restarted after the change")
    finally:
        proc.terminate()
        proc.wait(10)


def test_watch_without_watchfiles_says_how_to_install_it(tmp_path: Path) -> None:
    """watchfiles is an extra (pool-queue[watch]): without it, one line saying how to get it, not a traceback."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "watchfiles.py").write_text("raise ModuleNotFoundError('no watchfiles here', name='watchfiles')\n")
    env = pool_env()
    env["PYTHONPATH"] = f"{hidden}:{env['PYTHONPATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", "pool", "worker", "--watch", str(tmp_path), "tests.apps.basic.WorkerSettings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'pool-queue[watch]'" in lines[0]
