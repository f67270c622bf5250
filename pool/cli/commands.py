"""The ``pool`` command.

Exit codes: 0 success, 1 failure (Redis unreachable, settings that fail to import, an unhealthy check),
2 usage error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from redis.exceptions import RedisError

from ..logs import setup_logging
from ..redis.settings import RedisSettings
from ..utils import redact_text, set_process_title, url_secrets
from ..version import VERSION
from ..worker.exporter import METRICS_FLAG, METRICS_HELP
from ..worker.redis_wait import WAIT_FLAG, WAIT_HELP, explain, wait_seconds
from . import dashboard as cli_dashboard
from . import migrate as cli_migrate
from . import queue as cli_queue
from .common import (
    REDIS_URL_ENV,
    Failure,
    UsageError,
    add_log_format,
    load_settings,
    metrics_address,
    redis_settings_override,
    redis_target,
    redis_url,
    serve_metrics,
)

logger = logging.getLogger("pool.cli")


class _Parser(argparse.ArgumentParser):
    """argparse repeats arguments it cannot place ("unrecognized arguments: ..."): URLs among them are redacted.
    Its sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        super().error(redact_text(message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pool", description="A fast, reliable Redis job queue for asyncio.")
    parser.add_argument("-V", "--version", action="version", version=f"pool, version {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def settings_command(
        name: str, help_text: str, actions: list[str] | None = None, looks: bool = False
    ) -> argparse.ArgumentParser:
        """A command that reads a settings class: every one takes SETTINGS, --redis and -v the same way.
        With ``actions``, an ACTION argument comes first (``pool queue info SETTINGS``). ``looks``: a command that
        only looks at a queue also takes ``--queue NAME``, and then needs no SETTINGS."""
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if actions:
            sub.add_argument("action", choices=actions)
        sub.add_argument(
            "settings",
            metavar="SETTINGS",
            nargs="?" if looks else None,
            help="dotted path to the WorkerSettings, e.g. app.WorkerSettings"
            + (" (not needed with --queue)" if looks else ""),
        )
        if looks:
            sub.add_argument(
                "--queue",
                metavar="NAME",
                help="the queue to look at (default: the settings' queue_name); with it, SETTINGS may be left out",
            )
        sub.add_argument("--redis", metavar="URL", help=f"Redis URL (default: ${REDIS_URL_ENV}, then the settings)")
        sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        return sub

    worker = settings_command("worker", "Run one worker process (like `arq app.WorkerSettings`).")
    worker.add_argument("--burst", action="store_true", default=None, help="stop when the queue is empty")
    worker.add_argument("--no-burst", dest="burst", action="store_false", help="run until stopped (the default)")
    worker.add_argument("--watch", metavar="DIR", help="restart the worker when files under DIR change")
    worker.add_argument(WAIT_FLAG, dest="wait_for_redis", type=_wait_seconds, metavar="S", help=WAIT_HELP)
    worker.add_argument("--check", action="store_true", help="run the health check and exit (as `pool check`)")
    worker.add_argument(METRICS_FLAG, metavar="HOST:PORT", help=METRICS_HELP)
    add_log_format(worker)
    worker.add_argument(
        "--custom-log-dict",
        metavar="DOTTED",
        help="import path of a dict for logging.config.dictConfig, used instead of pool's log set-up",
    )
    settings_command(
        "check", "Check that a worker of the queue is alive (arq's --check); exit 0 if so, 1 if not.", looks=True
    )
    health = settings_command(
        "health", "Show every live supervisor of the queue and its workers; exit 0 if healthy, 1 if not.", looks=True
    )
    health.add_argument("--json", action="store_true", help="one JSON object per supervisor, in a list")
    health.add_argument(
        "--max-age",
        type=_positive_seconds,
        metavar="S",
        help="an entry not written for S seconds is stale: its supervisor died or hangs (default: each entry's "
        "health interval + 2)",
    )
    cli_queue.add_commands(settings_command)
    cli_migrate.add_command(settings_command)
    cli_dashboard.add_command(settings_command)
    supervisor_cli = _supervisor_cli()
    if supervisor_cli is not None:
        supervisor_cli.add_commands(commands, settings_command)
    return parser


def _supervisor_cli() -> Any:
    """The supervisor's commands (start, reload, stop, status), when the supervisor package is installed.
    The library itself never imports the supervisor; only the command line offers both."""
    try:
        # by name: the package is installed as pool.supervisor from the top-level supervisor/ folder (see
        # pyproject.toml), a mapping only the installed package knows
        return importlib.import_module("pool.supervisor.cli")
    except ModuleNotFoundError as exc:
        if exc.name == "pool.supervisor":  # installed without it: the library alone
            return None
        raise  # a real error inside the supervisor must show, not turn 'start' into an unknown command


def cmd_worker(args: argparse.Namespace) -> int:
    if args.check:  # arq's `arq app.WorkerSettings --check`
        return cmd_check(args)
    # before the settings import or any connection: until then `ps` shows the command line, --redis URL included
    set_process_title(f"worker{' --watch' if args.watch else ''} [{args.settings}]")
    metrics = metrics_address(args.metrics)
    if args.watch:
        return _watch(args)
    from ..worker.main import create_worker

    settings = load_settings(args.settings)
    overrides: dict[str, Any] = {}
    redis_settings = redis_settings_override(args.redis)
    if redis_settings is not None:
        overrides["redis_settings"] = redis_settings
    if args.burst is not None:
        overrides["burst"] = args.burst
    try:
        worker = create_worker(settings, **overrides)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise Failure(f"invalid settings {args.settings!r}: {exc}") from None
    worker.startup_details_level = logging.INFO  # which Redis, which queue, which worker: on the start-up line
    _wait_for_redis(worker.redis_settings, worker.queue_name, args.wait_for_redis)
    exporter = None
    if metrics is not None:
        from ..worker.exporter import worker_collector

        exporter = serve_metrics(metrics, worker_collector(worker))
    try:
        worker.run()
    except (RedisError, OSError):
        raise
    except Exception as exc:  # the app's hooks (on_startup, on_shutdown) raised: one line, details with -v
        logger.debug("the worker stopped on an error", exc_info=True)
        raise Failure(f"worker stopped: {type(exc).__name__}: {exc} (run with -v for the traceback)") from None
    finally:
        if exporter is not None:
            exporter.close()
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _wait_seconds(text: str) -> float:
    try:
        return wait_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wait_for_redis(settings: RedisSettings, queue_name: str, seconds: float | None) -> None:
    """Wait for Redis as `pool start` does (pool/worker/redis_wait.py); Failure with one line if it is refused or
    does not come up in time."""
    from ..storage.sync import SyncQueue
    from ..worker.redis_wait import RedisUnavailable, default_wait_s, wait_for_redis

    queue = SyncQueue.connect(settings, queue_name)
    try:
        wait_for_redis(queue.ping, settings, default_wait_s(settings) if seconds is None else seconds)
    except RedisUnavailable as exc:
        raise Failure(str(exc)) from None
    finally:
        queue.close()


def _watch(args: argparse.Namespace) -> int:
    """Run the worker as a subprocess and restart it whenever a file under --watch changes."""
    if not os.path.isdir(args.watch):
        raise UsageError(f"--watch: {args.watch!r} is not a directory")
    try:
        import watchfiles
    except ImportError:  # an extra, as in arq: not every install wants it
        raise Failure("--watch needs the watchfiles package: pip install 'pool-queue[watch]'") from None
    command = [sys.executable, "-m", "pool", "worker", args.settings]
    if args.redis:  # through the environment (readable by this user only), not a command line anyone can read
        os.environ[REDIS_URL_ENV] = args.redis
    if args.burst:
        command.append("--burst")
    if args.custom_log_dict:
        command += ["--custom-log-dict", args.custom_log_dict]
    if args.verbose:
        command.append("--verbose")
    if args.wait_for_redis is not None:
        command += [WAIT_FLAG, format(args.wait_for_redis, "g")]
    if args.metrics:
        command += [METRICS_FLAG, args.metrics]
    command += ["--log-format", args.log_format]
    # only Python sources: a log file or a .pyc written under DIR must not restart the worker in a loop
    watchfiles.run_process(
        args.watch,
        target=" ".join(_quote(c) for c in command),
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
    )
    return 0


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)


def cmd_check(args: argparse.Namespace) -> int:
    from ..worker.main import check_health, get_kwargs

    kwargs = get_kwargs(load_settings(args.settings)) if args.settings else {}
    settings, queue_name = redis_target(args)
    kwargs["queue_name"], kwargs["redis_settings"] = queue_name, settings
    return check_health(kwargs)


def cmd_health(args: argparse.Namespace) -> int:
    import json

    from ..client.health_report import format_report, healthy, read_entries
    from ..utils import run_on_best_loop

    entries = run_on_best_loop(read_entries(*redis_target(args), max_age_s=args.max_age))
    print(json.dumps(entries, indent=1) if args.json else format_report(entries))
    return 0 if healthy(entries) else 1


COMMANDS = {
    "worker": cmd_worker,
    "check": cmd_check,
    "health": cmd_health,
    **cli_queue.COMMANDS,
    **cli_migrate.COMMANDS,
    **cli_dashboard.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    extras = _place_late_positionals(args, extras)
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        log_dict = getattr(args, "custom_log_dict", None)
        if log_dict:
            from .arq_cli import load_log_config

            logging.config.dictConfig(load_log_config(log_dict))
        else:
            setup_logging(getattr(args, "verbose", False), getattr(args, "log_format", None) or "text")
    except (Failure, ValueError, TypeError, AttributeError, ImportError) as exc:  # dictConfig refused the dict
        _error(args, str(exc))
        return 1
    if getattr(args, "redis", None):  # every command: `ps` must not show --redis URL while it runs
        set_process_title(f"{args.command} [{getattr(args, 'settings', '')}]")
    supervisor_cli = _supervisor_cli()
    commands = {**COMMANDS, **(supervisor_cli.COMMANDS if supervisor_cli is not None else {})}
    try:
        return int(commands[args.command](args))
    except UsageError as exc:
        _error(args, f"error: {exc}")
        return 2
    except Failure as exc:
        _error(args, str(exc))
        return 1
    except (RedisError, OSError) as exc:
        _error(args, explain(str(exc)))  # Redis's raw HELLO/NOAUTH text for a missing password, explained
        return 1
    except KeyboardInterrupt:
        return 1


def _error(args: argparse.Namespace, message: str) -> None:
    """One line on stderr. Every message is built without the password; this is the net under that rule:
    URLs are redacted and the password of the URL in use masked, wherever a message came to include it."""
    secrets = url_secrets(redis_url(getattr(args, "redis", None)))
    print(f"pool {args.command}: {redact_text(message, secrets)}", file=sys.stderr)


# Positionals a command may leave out (SETTINGS with --queue, a failed job's id), in the order they are given
OPTIONAL_POSITIONALS = ("settings", "job_id")


def _place_late_positionals(args: argparse.Namespace, extras: list[str]) -> list[str]:
    """argparse fills an optional positional with nothing as soon as it meets it, so in ``pool queue info --redis
    URL app.WorkerSettings`` the settings, after an option, come back unplaced: place them (and a job id after
    them) as the command's optional positionals. Returns what is left over."""
    left = []
    for token in extras:
        empty = next((name for name in OPTIONAL_POSITIONALS if getattr(args, name, "") is None), None)
        if empty is not None and not token.startswith("-"):
            setattr(args, empty, token)
        else:
            left.append(token)
    return left


def run() -> None:
    sys.exit(main())
