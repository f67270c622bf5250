"""Running `pool start` as a real subprocess in tests, and never leaving a process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.helpers import wait_for_sync

REPO = Path(__file__).resolve().parent.parent


def pool_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_pool(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool", *args],
        cwd=cwd,
        env=pool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Supervisor:
    """A `pool start` process with its pidfile and log in a directory of its own."""

    def __init__(self, app_dir: Path, name: str, redis_url: str, settings: str, *args: str) -> None:
        self.app_dir, self.redis_url, self.settings = app_dir, redis_url, settings
        self.pidfile = app_dir / f"{name}.pid"
        self.log_path = app_dir / f"{name}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pool",
                "start",
                "--pidfile",
                str(self.pidfile),
                "--redis",
                redis_url,
                *args,
                settings,
            ],
            cwd=app_dir,
            env=pool_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.process.pid).children()
        return []

    def wait_ready(self, procs: int, timeout: float = 20) -> None:
        wait_for_sync(
            lambda: self.log.count(" ready") >= procs or self.process.poll() is not None,
            timeout,
            message=f"{procs} workers ready",
        )
        assert self.process.poll() is None, self.log

    def kill_all(self) -> None:
        """SIGKILL the supervisor and every descendant still alive."""
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.process.pid)
            for proc in [*parent.children(recursive=True), parent]:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


@contextlib.contextmanager
def supervisors() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    try:
        yield started
    finally:
        for sup in started:
            pids = [c.pid for c in sup.children()]
            sup.kill_all()
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).send_signal(signal.SIGKILL)
