"""Running a Worker inside a test's event loop, against the test's private Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pool import RedisSettings, Worker
from tests.helpers import wait_for
from tests.redis_server import _die_with_parent

REPO_ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """The environment of a ``pool`` subprocess: this checkout importable, no POOL_REDIS_URL of the caller's."""
    env = {k: v for k, v in os.environ.items() if k != "POOL_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """``pool worker SETTINGS --redis URL [extra]`` in the background, its output in a log file."""

    def __init__(self, redis_url: str, log_path: Path, *extra: str, settings: str) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "pool", "worker", settings, "--redis", redis_url, *extra],
                cwd=log_path.parent,
                env=worker_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_exit(self, timeout: float) -> int:
        await wait_for(self.exited, timeout=timeout, message=f"worker {self.popen.pid} exited")
        code = self.popen.poll()
        assert code is not None
        return code


def make_worker(redis_url: str, **kwargs: Any) -> Worker:
    kwargs.setdefault("handle_signals", False)
    kwargs.setdefault("redis_settings", RedisSettings.from_dsn(redis_url))
    return Worker(**kwargs)


@asynccontextmanager
async def running_worker(redis_url: str, **kwargs: Any) -> AsyncIterator[Worker]:
    """Start a worker in the background; on exit stop it gracefully and re-raise anything it raised."""
    worker = make_worker(redis_url, **kwargs)
    task = asyncio.create_task(worker.main())
    await wait_for(lambda: worker._queue is not None or task.done(), message="worker started")
    if task.done():
        task.result()
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


async def run_burst(redis_url: str, **kwargs: Any) -> Worker:
    worker = make_worker(redis_url, burst=True, **kwargs)
    await asyncio.wait_for(worker.main(), 30)
    return worker
