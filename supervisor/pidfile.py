"""The pidfile ``pool reload``/``pool stop`` use, and the status file ``pool status`` reads beside it.

Both often live in a directory other users can write to. So neither is ever written or read through a
symlink: writes go to a fresh temporary file (created exclusively, under a random name, in the same directory)
renamed over the target, which replaces a planted symlink rather than writing where it points; reads open
with O_NOFOLLOW. And a pid read from the file is only trusted when that process is a pool supervisor: a stale
or planted pidfile must not get someone else's process signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import psutil

DEFAULT_PIDFILE = "pool.pid"
SUPERVISOR_TITLE_PREFIX = "pool: supervisor"
MAX_READ_BYTES = 1 << 20


class PidfileError(Exception):
    pass


def status_path(pidfile: str) -> Path:
    return Path(pidfile + ".status.json")


def read_pid(pidfile: str) -> int | None:
    """The pid in the file if that process is alive and is a pool supervisor, else None."""
    pid = _pid_in(pidfile)
    if pid is None or not is_supervisor(pid):
        return None
    return pid


def is_supervisor(pid: int) -> bool:
    """Whether ``pid`` is a live pool supervisor: its title (set before it writes a pidfile) says so."""
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return command.startswith(SUPERVISOR_TITLE_PREFIX)


def create(pidfile: str) -> None:
    running = read_pid(pidfile)
    if running is not None and running != os.getpid():
        raise PidfileError(f"a supervisor is already running with pid {running} (pidfile {pidfile})")
    path = Path(pidfile)
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, f"{os.getpid()}\n")


def remove(pidfile: str) -> None:
    """Only our own pidfile: a new supervisor may already have replaced it."""
    if _pid_in(pidfile) == os.getpid():
        with contextlib.suppress(OSError):
            Path(pidfile).unlink()
    with contextlib.suppress(OSError):
        status_path(pidfile).unlink()


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


def _pid_in(pidfile: str) -> int | None:
    text = _read_no_follow(Path(pidfile))
    try:
        pid = int(text.strip()) if text is not None else 0
    except ValueError:
        return None
    return pid if pid > 0 else None


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


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a new file (O_EXCL, random name: nothing planted can be written through) and rename it
    over ``path`` (a rename replaces a symlink at ``path`` itself, never its target)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # readable as before (mkstemp makes it 0600); the rename keeps it
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
