"""``pool start --daemon``: detach into the background, yet exit with the supervisor's outcome.

The launching process forks the daemon (fork, setsid, fork) and waits on a pipe until the daemon reports: ready
(every worker is serving: exit 0 and one line saying so) or failed (exit 1 and the one-line reason: a pidfile
held by a running supervisor, a refused password, workers that fail to boot...). A daemon that dies without a
word closes the pipe, which also reads as a failure. Workers close their copy of the pipe at fork, so a
supervisor killed before it was ready is seen at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

READY = "ready"
FAILED = "failed"


class LaunchFailed(Exception):
    """The daemon did not come up; the message is its one-line reason."""


class Reporter(logging.Handler):
    """The daemon's end of the pipe. Also a logging handler remembering the last error the supervisor logged:
    the reason given when it exits before it was ready."""

    def __init__(self, fd: int) -> None:
        super().__init__(logging.ERROR)
        self.fd: int | None = fd
        self.last_error: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last_error = record.getMessage()

    def ready(self, text: str) -> None:
        self._send(READY, text)

    def failed(self, code: int) -> None:
        """The supervisor exits (with ``code``) before it was ready: say why, unless ready was said already."""
        reason = self.last_error or (
            "the supervisor was stopped before its workers were ready"
            if code == 0
            else f"the supervisor exited with code {code} before its workers were ready"
        )
        self._send(FAILED, reason)

    def _send(self, kind: str, text: str) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, f"{kind} {' '.join(text.split())}\n".encode())
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = None


def detach(log_file: str | None) -> Reporter | None:
    """Fork the daemon. In the daemon: returns its Reporter (output redirected to ``log_file``, or discarded).
    In the launching process: waits for the daemon's report, prints the ready line and returns None, or raises
    LaunchFailed with the reason."""
    read_fd, write_fd = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_fd)
        try:
            _wait_for_report(read_fd, log_file)
        finally:
            os.close(read_fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(first, 0)  # the intermediate process, which exited at once
        return None
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    redirect_output(log_file or os.devnull)
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), sys.stdin.fileno())
    return Reporter(write_fd)


def _wait_for_report(read_fd: int, log_file: str | None) -> None:
    chunks = []
    while chunk := os.read(read_fd, 4096):
        chunks.append(chunk)
    kind, _, text = b"".join(chunks).decode(errors="replace").strip().partition(" ")
    where = f" (log: {log_file})" if log_file else " (its log is discarded: add --log-file PATH to keep it)"
    if kind == READY:
        print(text + where)
        return
    if kind == FAILED:
        raise LaunchFailed(text)
    raise LaunchFailed("the supervisor exited before its workers were ready" + where)


def redirect_output(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, sys.stdout.fileno())
    os.dup2(fd, sys.stderr.fileno())
    os.close(fd)
