"""The pidfile ``pool reload``/``pool stop`` use, and the status file ``pool status`` reads beside it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_PIDFILE = "pool.pid"


class PidfileError(Exception):
    pass


def status_path(pidfile: str) -> Path:
    return Path(pidfile + ".status.json")


def read_pid(pidfile: str) -> int | None:
    """The pid in the file if that process is alive, else None."""
    try:
        pid = int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def create(pidfile: str) -> None:
    running = read_pid(pidfile)
    if running is not None and running != os.getpid():
        raise PidfileError(f"a supervisor is already running with pid {running} (pidfile {pidfile})")
    path = Path(pidfile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)


def remove(pidfile: str) -> None:
    """Only our own pidfile: a new supervisor may already have replaced it."""
    with contextlib.suppress(OSError, ValueError):
        if int(Path(pidfile).read_text().strip()) == os.getpid():
            Path(pidfile).unlink()
    with contextlib.suppress(OSError):
        status_path(pidfile).unlink()


def write_status(pidfile: str, status: dict[str, Any]) -> None:
    path = status_path(pidfile)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status, indent=1))
    tmp.replace(path)


def read_status(pidfile: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(status_path(pidfile).read_text())
    except (OSError, ValueError):
        return None
    return data
