"""The pidfile and its status file cannot be turned against their user.

In a shared directory another user may plant symlinks where ``pool start`` writes (``pool.pid``, its
``.status.json`` and temporary files beside them) or a pidfile naming someone else's process. ``pool start``
must never write through a symlink, and ``pool stop`` / ``pool reload`` must never signal a process that is not
a pool supervisor, whatever the pidfile says.

A pidfile is trusted only while the supervisor that wrote it holds its lock: a pidfile naming a process that
merely looks like a supervisor (its title), or a live supervisor of another pidfile, is stale. ``pool start``
takes a stale pidfile over; ``stop``, ``reload`` and ``status`` refuse it, signalling nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for_sync
from tests.redis_server import _die_with_parent
from tests.supervisor_utils import Supervisor, run_pool, supervisors

SETTINGS = "tests.apps.basic.WorkerSettings"
VICTIM_TEXT = "precious data, not a pid\n"


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a pool supervisor (someone else's daemon, a reused pid)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=_die_with_parent)
    yield proc
    proc.kill()
    proc.wait(5)


IMPOSTOR = """
import sys, time, setproctitle
setproctitle.setproctitle("pool: supervisor [tests.apps.basic.WorkerSettings]")
print("titled", flush=True)
time.sleep(60)
"""


@pytest.fixture
def impostor() -> Iterator[subprocess.Popen[bytes]]:
    """A live process titled exactly like a pool supervisor, started before any pidfile names it, that holds no
    pidfile: what a reused pid (a supervisor of another pidfile, or a process that took a dead one's pid) is."""
    proc = subprocess.Popen([sys.executable, "-c", IMPOSTOR], stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
    assert proc.stdout is not None and proc.stdout.readline() == b"titled\n"
    yield proc
    proc.kill()
    proc.wait(5)


def _status_written(pidfile: Path) -> bool:
    status = Path(str(pidfile) + ".status.json")
    if status.is_symlink() or not status.is_file():
        return False
    try:
        return len(json.loads(status.read_text()).get("children", [])) == 1
    except ValueError:
        return False


def _start_and_stop(app_dir: Path, redis_url: str) -> None:
    """``pool start`` until its worker is ready and its status file written, then ``pool stop``."""
    pidfile = app_dir / "pool.pid"
    with supervisors() as started:
        sup = Supervisor(app_dir, "pool", redis_url, SETTINGS, "--procs", "1")
        started.append(sup)
        sup.wait_ready(1)
        wait_for_sync(lambda: _status_written(pidfile), timeout=10, message="the status file")
        assert not pidfile.is_symlink()
        assert pidfile.read_text().strip() == str(sup.process.pid)
        stop = run_pool("stop", "--pidfile", str(pidfile), cwd=app_dir)
        assert stop.returncode == 0, stop.stdout + stop.stderr + sup.log
        sup.process.wait(10)


def test_start_never_writes_through_symlinks_at_its_temporary_names(tmp_path: Path, redis_url: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    for name in ("pool.pid.tmp", "pool.pid.status.json.tmp"):
        (tmp_path / name).symlink_to(victim)
    _start_and_stop(tmp_path, redis_url)
    assert victim.read_text() == VICTIM_TEXT


def test_start_replaces_a_symlinked_pidfile_without_reading_or_writing_through_it(
    tmp_path: Path, redis_url: str, bystander: subprocess.Popen[bytes]
) -> None:
    """The symlinked pidfile points at a file naming a live process: not followed, so no 'already running'."""
    victim = tmp_path / "victim.pid"
    victim.write_text(f"{bystander.pid}\n")
    for name in ("pool.pid", "pool.pid.status.json"):
        (tmp_path / name).symlink_to(victim)
    _start_and_stop(tmp_path, redis_url)
    assert victim.read_text() == f"{bystander.pid}\n"
    assert bystander.poll() is None


@pytest.mark.parametrize("command", ["stop", "reload"])
@pytest.mark.parametrize("planted", ["pidfile", "symlink"])
def test_stop_and_reload_never_signal_a_process_that_is_not_a_supervisor(
    tmp_path: Path, bystander: subprocess.Popen[bytes], command: str, planted: str
) -> None:
    pidfile = tmp_path / "pool.pid"
    if planted == "pidfile":
        pidfile.write_text(f"{bystander.pid}\n")
    else:
        (tmp_path / "elsewhere.pid").write_text(f"{bystander.pid}\n")
        pidfile.symlink_to(tmp_path / "elsewhere.pid")
    timeout = ["--timeout", "2"] if command == "stop" else []
    proc = run_pool(command, "--pidfile", str(pidfile), *timeout, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert bystander.poll() is None, "the bystander was signalled"


@pytest.mark.parametrize("command", ["stop", "reload", "status"])
def test_a_pidfile_no_supervisor_holds_is_never_trusted_even_when_its_pid_looks_like_one(
    tmp_path: Path, impostor: subprocess.Popen[bytes], command: str
) -> None:
    pidfile = tmp_path / "pool.pid"
    pidfile.write_text(f"{impostor.pid}\n")
    timeout = ["--timeout", "2"] if command == "stop" else []
    proc = run_pool(command, "--pidfile", str(pidfile), *timeout, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no running supervisor" in lines[0] and "stale" in lines[0], proc.stderr
    assert proc.stdout == ""
    assert impostor.poll() is None, "a process that only looks like a supervisor was signalled"


@pytest.mark.parametrize("stale", ["pid-1", "impostor", "live-supervisor-of-another-pidfile"])
def test_start_takes_over_a_stale_pidfile(
    tmp_path: Path, redis_url: str, impostor: subprocess.Popen[bytes], stale: str
) -> None:
    """After a restart the pidfile names pid 1, or a pid now used by some other process: never "already
    running", and the process it names is left alone."""
    pidfile = tmp_path / "pool.pid"
    with supervisors() as started:
        named = 1
        if stale == "impostor":
            named = impostor.pid
        elif stale == "live-supervisor-of-another-pidfile":
            other = Supervisor(tmp_path, "other", redis_url, SETTINGS, "--procs", "1")
            started.append(other)
            other.wait_ready(1)
            named = other.process.pid
        pidfile.write_text(f"{named}\n")
        _start_and_stop(tmp_path, redis_url)
        assert impostor.poll() is None
        if started:
            assert started[0].process.poll() is None, "the supervisor named by the stale pidfile was stopped"
            assert run_pool("status", "--pidfile", str(started[0].pidfile), cwd=tmp_path).returncode == 0


def test_the_pidfile_lock_dies_with_the_supervisor_not_with_its_workers(tmp_path: Path, redis_url: str) -> None:
    """kill -9 of the supervisor: at once its pidfile is stale (its workers inherit no lock), so `pool start`
    comes up again with the same pidfile while the old workers may still be exiting."""
    with supervisors() as started:
        first = Supervisor(tmp_path, "pool", redis_url, SETTINGS, "--procs", "1")
        started.append(first)
        first.wait_ready(1)
        assert run_pool("status", "--pidfile", str(first.pidfile), cwd=tmp_path).returncode == 0
        workers = first.children()
        assert workers
        for worker in workers:  # a worker that kept the pidfile open would keep the lock after a kill -9
            assert str(first.pidfile) not in {f.path for f in worker.open_files()}
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(5)
        status = run_pool("status", "--pidfile", str(first.pidfile), cwd=tmp_path)
        assert status.returncode == 1 and "stale" in status.stderr, status.stderr
        first.log_path.rename(tmp_path / "first.log")
        second = Supervisor(tmp_path, "pool", redis_url, SETTINGS, "--procs", "1")
        started.append(second)
        second.wait_ready(1)
        assert first.pidfile.read_text().strip() == str(second.process.pid)
        status = run_pool("status", "--pidfile", str(second.pidfile), cwd=tmp_path)
        assert status.returncode == 0 and f"supervisor pid {second.process.pid}" in status.stdout, status.stderr
