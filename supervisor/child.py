"""What runs in a forked child: a clean process state, then one Worker on a fresh uvloop event loop.

Fork safety: nothing the parent created is used here. The parent runs no event loop and no threads; its sync
Redis client (for handing back dead children's jobs) resets itself in a new pid. The child closes the parent's
pipes, resets every signal the parent handles, ignores SIGINT (a terminal's Ctrl-C is the parent's to handle),
asks the kernel for SIGQUIT (an immediate stop) when the parent dies, and watches the parent's pid as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, NoReturn

from redis.exceptions import RedisError

from pool.logs import flush_logs, json_lines
from pool.utils import redact_text, run_on_best_loop
from pool.worker.main import Worker, create_worker

from . import messages
from .proctitle import set_title

logger = logging.getLogger("pool.supervisor")

PR_SET_PDEATHSIG = 1
PARENT_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)


@dataclass
class ChildSpec:
    index: int  # 1-based slot number, for the process title
    procs: int
    settings_path: str
    worker_id: str  # the consumer name: the parent hands back this consumer's jobs if the child dies
    heartbeat_interval: float
    worker_overrides: dict[str, Any]
    parent_pid: int  # the supervisor's pid, taken before the fork: it may be gone before the child looks
    metrics: bool = False  # count jobs for Prometheus and send the totals with each heartbeat


def run_child(spec: ChildSpec, settings: Any, write_fd: int, close_fds: list[int]) -> NoReturn:
    """Never returns: the child's exit code is the process's."""
    code = 1
    try:
        _prepare_process(spec, close_fds)
        code = _run_worker(spec, settings, write_fd)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except (RedisError, OSError) as exc:  # Redis unreachable or refusing: one line, not a traceback
        if json_lines():  # --log-format json: every line of the output is a JSON object
            logger.error("worker %d: %s", spec.index, redact_text(str(exc)))
        else:
            print(f"pool: worker {spec.index}: {redact_text(str(exc))}", file=sys.stderr)
        code = 1
    except BaseException:
        if json_lines():
            logger.exception("worker %d failed", spec.index)
        else:
            traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            flush_logs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _prepare_process(spec: ChildSpec, close_fds: list[int]) -> None:
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.set_wakeup_fd(-1)
    for sig in PARENT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != spec.parent_pid:  # it died before PDEATHSIG was armed: nothing will signal us
        os._exit(1)
    _exit_soon_after_parent(spec.parent_pid)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    set_title(f"worker {spec.index}/{spec.procs} [{spec.settings_path}]")


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGQUIT when the parent dies: an immediate stop, running jobs are cancelled and
    handed back at once (they run again elsewhere), so no child outlives its supervisor by more than a moment."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


ORPHAN_EXIT_S = 10.0


def _exit_soon_after_parent(parent_pid: int) -> None:
    """A backstop that needs no event loop: once the parent is gone, the process exits within ORPHAN_EXIT_S even
    if its shutdown is stuck (a task ignoring cancellation was seen once in a forked child; cause not found yet).
    Jobs it still holds are reclaimed by other workers after three missed heartbeats."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        time.sleep(ORPHAN_EXIT_S)
        os._exit(1)

    threading.Thread(target=watch, name="pool-orphan-watch", daemon=True).start()


def _run_worker(spec: ChildSpec, settings: Any, write_fd: int) -> int:
    worker = create_worker(settings, handle_signals=False, worker_id=spec.worker_id, **spec.worker_overrides)
    worker.startup_details_level = logging.INFO  # its start-up line names its Redis, queue and worker id
    if spec.metrics:
        worker.enable_metrics()
    run_on_best_loop(_serve(spec, worker, write_fd))
    return 0


async def _serve(spec: ChildSpec, worker: Worker, write_fd: int) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop)
    loop.add_signal_handler(signal.SIGQUIT, worker.request_stop, True)
    parent_pid = spec.parent_pid
    await worker.startup()
    side_tasks = [
        asyncio.create_task(_heartbeat(spec, worker, write_fd)),
        asyncio.create_task(_watch_parent(worker, parent_pid)),
    ]
    messages.send(write_fd, messages.READY, pid=os.getpid())
    try:
        await worker.serve()
    finally:
        for task in side_tasks:
            task.cancel()
        await worker.close()


async def _heartbeat(spec: ChildSpec, worker: Worker, write_fd: int) -> None:
    title = f"worker {spec.index}/{spec.procs} [{spec.settings_path}]"
    while True:
        stats = worker.stats()
        if worker.metrics is not None:  # the totals so far: a heartbeat lost on a full pipe loses nothing
            messages.send(write_fd, messages.HEARTBEAT, **stats, m=worker.metrics.snapshot())
        else:
            messages.send(write_fd, messages.HEARTBEAT, **stats)
        set_title(f"{title} jobs={stats['complete'] + stats['failed']}")
        await asyncio.sleep(spec.heartbeat_interval)


async def _watch_parent(worker: Worker, parent_pid: int) -> None:
    """The fallback where PDEATHSIG is missing: a changed parent pid means the supervisor is gone."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    worker.request_stop(force=True)
