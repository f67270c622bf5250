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
from ..storage.keys import DEFAULT_QUEUE_NAME, validate_queue_name
from ..utils import redact_text, set_process_title, url_secrets
from ..version import VERSION
from . import queue as cli_queue
from .common import REDIS_URL_ENV, Failure, UsageError, load_settings, redis_settings_override, redis_target, redis_url

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

    def settings_command(name: str, help_text: str, actions: list[str] | None = None) -> argparse.ArgumentParser:
        """A command that reads a settings class: every one takes SETTINGS, --redis and -v the same way.
        With ``actions``, an ACTION argument comes first (``pool queue info SETTINGS``)."""
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if actions:
            sub.add_argument("action", choices=actions)
        sub.add_argument(
            "settings", metavar="SETTINGS", help="dotted path to the WorkerSettings, e.g. app.WorkerSettings"
        )
        sub.add_argument("--redis", metavar="URL", help=f"Redis URL (default: ${REDIS_URL_ENV}, then the settings)")
        sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        return sub

    worker = settings_command("worker", "Run one worker process (like `arq app.WorkerSettings`).")
    worker.add_argument("--burst", action="store_true", default=None, help="stop when the queue is empty")
    worker.add_argument("--no-burst", dest="burst", action="store_false", help="run until stopped (the default)")
    worker.add_argument("--watch", metavar="DIR", help="restart the worker when files under DIR change")
    worker.add_argument("--check", action="store_true", help="run the health check and exit (as `pool check`)")
    worker.add_argument(
        "--custom-log-dict",
        metavar="DOTTED",
        help="import path of a dict for logging.config.dictConfig, used instead of pool's log set-up",
    )
    settings_command("check", "Check that a worker of the queue is alive (arq's --check); exit 0 if so, 1 if not.")
    health = settings_command(
        "health", "Show every live supervisor of the queue and its workers; exit 0 if healthy, 1 if not."
    )
    health.add_argument("--json", action="store_true", help="one JSON object per supervisor, in a list")
    cli_queue.add_commands(settings_command)
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
    try:
        worker.run()
    except (RedisError, OSError):
        raise
    except Exception as exc:  # the app's hooks (on_startup, on_shutdown) raised: one line, details with -v
        logger.debug("the worker stopped on an error", exc_info=True)
        raise Failure(f"worker stopped: {type(exc).__name__}: {exc} (run with -v for the traceback)") from None
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Run the worker as a subprocess and restart it whenever a file under --watch changes."""
    import watchfiles

    if not os.path.isdir(args.watch):
        raise UsageError(f"--watch: {args.watch!r} is not a directory")
    command = [sys.executable, "-m", "pool", "worker", args.settings]
    if args.redis:  # through the environment (readable by this user only), not a command line anyone can read
        os.environ[REDIS_URL_ENV] = args.redis
    if args.burst:
        command.append("--burst")
    if args.custom_log_dict:
        command += ["--custom-log-dict", args.custom_log_dict]
    if args.verbose:
        command.append("--verbose")
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

    settings = load_settings(args.settings)
    kwargs = get_kwargs(settings)
    try:
        validate_queue_name(kwargs.get("queue_name") or DEFAULT_QUEUE_NAME)
    except ValueError as exc:
        raise Failure(f"invalid settings {args.settings!r}: {exc}") from None
    redis_settings = redis_settings_override(args.redis)
    if redis_settings is not None:
        kwargs["redis_settings"] = redis_settings
    return check_health(kwargs)


def cmd_health(args: argparse.Namespace) -> int:
    import json

    from ..client.health_report import format_report, healthy, read_entries
    from ..utils import run_on_best_loop

    entries = run_on_best_loop(read_entries(*redis_target(args)))
    print(json.dumps(entries, indent=1) if args.json else format_report(entries))
    return 0 if healthy(entries) else 1


COMMANDS = {"worker": cmd_worker, "check": cmd_check, "health": cmd_health, **cli_queue.COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        log_dict = getattr(args, "custom_log_dict", None)
        if log_dict:
            from .arq_cli import load_log_config

            logging.config.dictConfig(load_log_config(log_dict))
        else:
            setup_logging(getattr(args, "verbose", False))
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
        _error(args, str(exc))
        return 1
    except KeyboardInterrupt:
        return 1


def _error(args: argparse.Namespace, message: str) -> None:
    """One line on stderr. Every message is built without the password; this is the net under that rule:
    URLs are redacted and the password of the URL in use masked, wherever a message came to include it."""
    secrets = url_secrets(redis_url(getattr(args, "redis", None)))
    print(f"pool {args.command}: {redact_text(message, secrets)}", file=sys.stderr)


def run() -> None:
    sys.exit(main())
