"""``pool start | reload | stop | status``: the supervisor's commands, added to the ``pool`` command."""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from pool.cli.common import (
    Failure,
    UsageError,
    add_log_format,
    metrics_address,
    prepare_settings_import,
    redis_settings_override,
)
from pool.utils import plural

from . import config, launcher
from . import pidfile as pidfiles
from .app import AppLoadError
from .arbiter import Arbiter
from .config import SupervisorConfig
from .proctitle import set_title


def add_commands(commands: Any, settings_command: Any) -> None:
    start = settings_command("start", "Run N worker processes under a supervisor (restarts, reload, stop).")
    config.add_flags(start)
    start.add_argument(
        "--daemon", action="store_true", help="detach into the background (needs --log-file to keep logs)"
    )
    start.add_argument("--log-file", metavar="PATH", help="append logs here (with --daemon)")
    add_log_format(start)
    for name, help_text in (
        ("reload", "Reload the workers' code without a gap (SIGHUP to the supervisor)."),
        ("stop", "Stop the supervisor gracefully (SIGTERM) and wait until it has exited."),
        ("status", "Show the supervisor and its workers."),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        config.setting("pidfile").add_to(sub)
        if name == "stop":
            sub.add_argument(
                "--force",
                action="store_true",
                help="immediate stop (SIGQUIT): running jobs are cancelled and run again later",
            )
            sub.add_argument("--timeout", type=config.positive_float, default=120.0, help="seconds to wait (120)")


def cmd_start(args: argparse.Namespace) -> int:
    prepare_settings_import(args.settings)
    metrics_address(args.metrics)  # a bad address is a usage error now, not a line in a log after detaching
    # before importing the settings: until then `ps` shows the command line, --redis URL included
    set_title(f"supervisor [{args.settings}]")
    supervisor_config = SupervisorConfig.from_args(args, redis_settings_override(args.redis))
    arbiter = Arbiter(supervisor_config)
    try:  # before detaching: a bad settings path is the user's one-line error, not a line in a log file
        arbiter.load_app()
    except AppLoadError as exc:
        raise (UsageError if exc.usage else Failure)(str(exc)) from None
    if args.daemon:
        running = pidfiles.find(supervisor_config.pidfile).pid if supervisor_config.pidfile else None
        if running is not None:  # the daemon checks again, holding the lock; this answers at once
            raise Failure(f"a supervisor is already running with pid {running} (pidfile {supervisor_config.pidfile})")
        try:
            reporter = launcher.detach(args.log_file)
        except launcher.LaunchFailed as exc:
            raise Failure(str(exc)) from None
        if reporter is None:  # the launching process: the daemon is ready
            return 0
        arbiter.reporter = reporter
    elif args.log_file:
        launcher.redirect_output(args.log_file)
    return arbiter.run()


def _running_pid(pidfile: str) -> int:
    """The pid of the live supervisor that owns the pidfile; a stale pidfile is never trusted (pidfile.py)."""
    found = pidfiles.find(pidfile)
    if found.pid is None:
        raise Failure(f"no running supervisor (pidfile {pidfile}: {found.note})")
    return found.pid


def cmd_reload(args: argparse.Namespace) -> int:
    pid = _running_pid(args.pidfile)
    os.kill(pid, signal.SIGHUP)
    print(f"reload requested (supervisor pid {pid})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    pid = _running_pid(args.pidfile)
    os.kill(pid, signal.SIGQUIT if args.force else signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise Failure(f"supervisor {pid} still running after {args.timeout:g}s")
        time.sleep(0.05)
    print(f"supervisor {pid} stopped")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child, in tests) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def cmd_status(args: argparse.Namespace) -> int:
    pid = _running_pid(args.pidfile)
    status = pidfiles.read_status(args.pidfile) or {}
    now = time.time()
    print(
        f"supervisor pid {pid} [{status.get('settings', '?')}] up {_duration(now - status.get('started', now))}, "
        f"{_wanted(status.get('procs'))} wanted"
    )
    print(
        f"{'slot':>4} {'pid':>8} {'state':<9} {'uptime':>8} {'rss MB':>8} {'complete':>9} {'failed':>7} "
        f"{'retried':>8} {'ongoing':>8}"
    )
    for c in status.get("children", []):
        print(
            f"{c['slot']:>4} {c['pid']:>8} {c['state']:<9} {_duration(now - c['started']):>8} "
            f"{c.get('rss', 0) / 1048576:>8.1f} {c.get('complete', 0):>9} {c.get('failed', 0):>7} "
            f"{c.get('retried', 0):>8} {c.get('ongoing', 0):>8}"
        )
    return 0


def _wanted(procs: Any) -> str:
    return plural(procs, "worker") if isinstance(procs, int) else "? workers"


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


COMMANDS = {"start": cmd_start, "reload": cmd_reload, "stop": cmd_stop, "status": cmd_status}
