"""``ps`` never shows the Redis password: pool's processes retitle themselves before doing anything slow, and
``pool worker --watch`` hands the URL to its worker through the environment, not its command line.

Each test starts real processes and reads their command lines (/proc/PID/cmdline, through psutil) as another
user's ``ps`` would. The app's import blocks until the test says go, so the title is checked at a known point:
after the command line was parsed, before the settings are imported or Redis is contacted.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import wait_for_sync
from tests.redis_server import _die_with_parent
from tests.supervisor_utils import pool_env

PASSWORD = "Ps-t1tle/S3cret+x=="
PASSWORD_PARTS = ("Ps-t1tle", "S3cret")

BLOCKING_APP = """
import pathlib
import time

pathlib.Path("importing").touch()
deadline = time.monotonic() + 30
while not pathlib.Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)


async def add(ctx, a, b):
    return a + b


class WorkerSettings:
    functions = [add]
"""

WATCHED_APP = """
async def add(ctx, a, b):
    return a + b


class WorkerSettings:
    functions = [add]
"""


def command_line(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(" ".join(proc.cmdline()).split())  # setproctitle pads with spaces
    return ""


def assert_no_password(proc: psutil.Process) -> None:
    shown = command_line(proc)
    for part in (PASSWORD, *PASSWORD_PARTS):
        assert part not in shown, f"pid {proc.pid} shows {part!r}: {shown!r}"


@pytest.fixture
def start_pool(tmp_path: Path) -> Iterator[Callable[..., psutil.Process]]:
    """``start_pool(*args)``: ``python -m pool *args`` in tmp_path; it and its descendants are killed at teardown."""
    started: list[psutil.Process] = []

    def start(*args: str) -> psutil.Process:
        with open(tmp_path / f"pool-{len(started)}.log", "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "pool", *args],
                cwd=tmp_path,
                env=pool_env(PYTHONUNBUFFERED="1"),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        started.append(psutil.Process(popen.pid))
        return started[-1]

    yield start
    for proc in started:
        with contextlib.suppress(psutil.Error):
            family = [*proc.children(recursive=True), proc]
            for member in family:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            psutil.wait_procs(family, timeout=5)


@pytest.mark.parametrize(
    ("command", "title"),
    [
        ("worker", "pool: worker [blocking.WorkerSettings]"),
        ("start", "pool: supervisor [blocking.WorkerSettings]"),
        ("check", "pool: check [blocking.WorkerSettings]"),
    ],
)
def test_the_title_hides_the_password_before_the_settings_are_imported(
    tmp_path: Path, start_pool: Callable[..., psutil.Process], command: str, title: str
) -> None:
    (tmp_path / "blocking.py").write_text(BLOCKING_APP)
    extra = ["--pidfile", str(tmp_path / "pool.pid"), "--procs", "1"] if command == "start" else []
    proc = start_pool(command, *extra, "--redis", f"redis://:{PASSWORD}@127.0.0.1:1/0", "blocking.WorkerSettings")
    wait_for_sync(lambda: (tmp_path / "importing").exists(), timeout=15, message="the app's import began")
    assert command_line(proc) == title
    assert_no_password(proc)
    (tmp_path / "go").touch()


def test_watch_passes_the_url_to_its_worker_outside_the_command_line(
    tmp_path: Path, start_pool: Callable[..., psutil.Process], redis_server_factory: Callable[..., Any]
) -> None:
    server = redis_server_factory(password=PASSWORD)
    (tmp_path / "watchedapp.py").write_text(WATCHED_APP)
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    watcher = start_pool("worker", "--watch", str(tmp_path), "--redis", url, "watchedapp.WorkerSettings")
    log = tmp_path / "pool-0.log"
    client = server.client()
    try:
        # the worker connected with the password it was given: its health key is there
        wait_for_sync(
            lambda: client.keys("pool:{default}:health:*") or watcher.status() == psutil.STATUS_ZOMBIE,
            timeout=20,
            message="the watched worker's health key",
        )
    finally:
        client.close()
    workers = watcher.children(recursive=True)
    assert workers, log.read_text()
    assert command_line(watcher) == "pool: worker --watch [watchedapp.WorkerSettings]"
    assert "pool: worker [watchedapp.WorkerSettings]" in [command_line(w) for w in workers]
    for proc in (watcher, *workers):
        assert_no_password(proc)
    assert PASSWORD not in log.read_text()
