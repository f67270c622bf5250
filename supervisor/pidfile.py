"""The pidfile ``pool reload``/``pool stop`` use, and the status file ``pool status`` reads beside it.

Both often live in a directory other users can write to. So neither is ever written or read through a
symlink: writes go to a fresh temporary file (created exclusively, under a random name, in the same directory)
renamed over the target, which replaces a planted symlink rather than writing where it points; reads open
with O_NOFOLLOW.

A pid read from the file is trusted only when the supervisor that wrote it is provably alive: it holds an
exclusive ``flock`` on the pidfile for as long as it runs (the kernel drops the lock when the process dies, even
by kill -9), the process at that pid is titled as a pool supervisor, and it started before the file was written.
Anything else is stale: a pidfile left by a dead supervisor (whose pid may now be anyone's, pid 1 after a
container restart), or one planted to get another process signalled. pool never signals a stale pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

DEFAULT_PIDFILE = "pool.pid"
SUPERVISOR_TITLE_PREFIX = "pool: supervisor"
MAX_READ_BYTES = 1 << 20
START_SLACK_S = 1.0  # a process start time and a file's mtime come from different clocks' roundings


class PidfileError(Exception):
    pass


@dataclass(frozen=True)
class Found:
    """What a pidfile says: ``pid`` when a live supervisor owns it, else None and why (``note``)."""

    pid: int | None
    note: str


def status_path(pidfile: str) -> Path:
    return Path(pidfile + ".status.json")


def read_pid(pidfile: str) -> int | None:
    """The pid of the live supervisor that owns the pidfile, else None."""
    return find(pidfile).pid


def find(pidfile: str) -> Found:
    """The owner of the pidfile if it is a live pool supervisor (see the module's docstring), else why not."""
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Found(None, "no pidfile")
    except OSError:  # ELOOP: a symlink
        return Found(None, "the pidfile is a symlink or unreadable")
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device planted there must not block or be read
            return Found(None, "the pidfile is not a regular file")
        pid = _parse_pid(file.read(MAX_READ_BYTES))
        if pid is None:
            return Found(None, "the pidfile holds no pid")
        if not _locked(fd):
            return Found(None, f"stale pidfile: pid {pid} holds no lock on it")
        if not _is_supervisor(pid, written_at=info.st_mtime):
            return Found(None, f"stale pidfile: pid {pid} is not the pool supervisor that wrote it")
    return Found(pid, f"supervisor pid {pid}")


def _locked(fd: int) -> bool:
    """Whether another open of the file holds an exclusive lock: a shared lock cannot be had beside it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a filesystem without flock: the title and start time still decide
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _is_supervisor(pid: int, written_at: float) -> bool:
    """A live process titled as a pool supervisor (it sets its title before it writes a pidfile) that started
    before the pidfile was written (a pid reused since is not the writer)."""
    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline())
        started = process.create_time()
    except psutil.Error:
        return False
    return command.startswith(SUPERVISOR_TITLE_PREFIX) and started <= written_at + START_SLACK_S


def create(pidfile: str) -> int:
    """Write our pid, and hold the file locked: returns the locked file's descriptor, to keep open for the
    process's life (and to close in forked children, which must not keep the lock after the supervisor dies)."""
    found = find(pidfile)
    if found.pid is not None and found.pid != os.getpid():
        raise PidfileError(f"a supervisor is already running with pid {found.pid} (pidfile {pidfile})")
    path = Path(pidfile)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _replace(path, f"{os.getpid()}\n", keep_locked=True)


def remove(pidfile: str, locked_fd: int | None = None) -> None:
    """Only our own pidfile: a new supervisor may already have replaced it."""
    if _pid_in(pidfile) == os.getpid():
        with contextlib.suppress(OSError):
            Path(pidfile).unlink()
    with contextlib.suppress(OSError):
        status_path(pidfile).unlink()
    if locked_fd is not None:
        with contextlib.suppress(OSError):
            os.close(locked_fd)


def write_status(pidfile: str, status: dict[str, Any]) -> None:
    _replace(status_path(pidfile), json.dumps(status, indent=1))


def read_status(pidfile: str) -> dict[str, Any] | None:
    text = _read_no_follow(status_path(pidfile))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _parse_pid(raw: bytes) -> int | None:
    try:
        pid = int(raw.decode(errors="replace").strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def _pid_in(pidfile: str) -> int | None:
    text = _read_no_follow(Path(pidfile))
    return _parse_pid(text.encode()) if text is not None else None


def _read_no_follow(path: Path) -> str | None:
    """The file's text, or None when it is missing, unreadable, a symlink or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # ELOOP: a symlink
        return None
    with os.fdopen(fd, "rb") as file:
        if not _is_regular(file.fileno()):  # a FIFO or device planted there must not block or be read
            return None
        return file.read(MAX_READ_BYTES).decode(errors="replace")


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def _replace(path: Path, text: str, keep_locked: bool = False) -> int:
    """Write ``text`` to a new file (O_EXCL, random name: nothing planted can be written through) and rename it
    over ``path`` (a rename replaces a symlink at ``path`` itself, never its target). ``keep_locked``: the new
    file is locked (flock, exclusive) before it gets its name, and its descriptor returned open; else -1."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # readable as before (mkstemp makes it 0600); the rename keeps it
        if keep_locked:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else can hold it
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if keep_locked:
        return fd
    os.close(fd)
    return -1
