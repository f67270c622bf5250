"""What every command shares: its two kinds of error, and how it finds the settings class and the Redis.

Apart from commands.py so that the command modules (queue.py, the supervisor's) import it without importing
commands.py, which imports them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from ..logs import LOG_FORMATS
from ..redis.settings import RedisSettings
from ..storage.keys import DEFAULT_QUEUE_NAME, validate_queue_name
from ..utils import import_string, redact_url
from ..worker.crontab import InvalidCrontab
from ..worker.exporter import METRICS_FLAG

REDIS_URL_ENV = "POOL_REDIS_URL"


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


class Failure(Exception):
    """Something the user must fix or retry: exit code 1."""


def prepare_settings_import(path: str) -> None:
    """Refuse a path that names no module (a usage error), and make the current directory importable (as arq
    does): what every command does before it imports a settings class, itself or in the supervisor."""
    if "." not in path.replace(":", "."):
        raise UsageError(f"settings must be a dotted path like 'app.WorkerSettings', got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def load_settings(path: str) -> Any:
    """Import the settings class, with the current directory importable."""
    prepare_settings_import(path)
    try:
        return import_string(path)
    except ImportError as exc:
        raise Failure(f"cannot import settings {path!r}: {exc}") from None
    except InvalidCrontab as exc:  # a cron('...') the user wrote: usage, like a bad argument
        raise UsageError(f"settings {path!r}: {exc}") from None
    except Exception as exc:  # the app module itself raised while importing
        raise Failure(f"importing settings {path!r} failed: {type(exc).__name__}: {exc}") from None


def redis_url(url_arg: str | None) -> str | None:
    """The Redis URL given: --redis, else $POOL_REDIS_URL."""
    return url_arg or os.environ.get(REDIS_URL_ENV) or None


def redis_settings_override(url_arg: str | None) -> RedisSettings | None:
    url = redis_url(url_arg)
    if not url:
        return None
    try:
        return RedisSettings.from_dsn(url)
    except ValueError as exc:  # from_dsn's messages never quote the URL; the URL is shown redacted
        raise UsageError(f"invalid Redis URL {redact_url(url)!r}: {exc}") from None


def redis_target(args: argparse.Namespace) -> tuple[RedisSettings, str]:
    """The Redis and the queue a one-shot command acts on: --redis (or $POOL_REDIS_URL) over the settings' Redis,
    --queue over the settings' queue_name (then no settings are needed), connected to with one attempt
    (``one_attempt``)."""
    from ..worker.main import get_kwargs

    given_queue = getattr(args, "queue", None)
    if not args.settings and not given_queue:
        raise UsageError("give SETTINGS (a dotted path like 'app.WorkerSettings') or --queue NAME")
    kwargs = get_kwargs(load_settings(args.settings)) if args.settings else {}
    settings = redis_settings_override(args.redis) or kwargs.get("redis_settings") or RedisSettings()
    queue_name = given_queue or kwargs.get("queue_name") or DEFAULT_QUEUE_NAME
    try:
        validate_queue_name(queue_name)
    except ValueError as exc:
        if given_queue:
            raise UsageError(f"--queue: {exc}") from None
        raise Failure(f"invalid settings {args.settings!r}: {exc}") from None
    return one_attempt(settings), queue_name


def one_attempt(settings: RedisSettings) -> RedisSettings:
    """Settings for a command that looks and exits (check, health, queue, failed): when Redis is down it says so
    at once, in one line, rather than retrying ``conn_retries`` times a second apart."""
    return dataclasses.replace(settings, conn_retries=0)


def add_log_format(parser: argparse.ArgumentParser) -> None:
    """``--log-format text|json``: ``pool worker``'s and ``pool start``'s (pool/logs.py)."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: arq's lines (the default); json: one JSON object per line (time, level, logger, message, and "
        "job_id, function, try, duration on a job's lines)",
    )


def metrics_address(text: str | None) -> tuple[str, int] | None:
    """``--metrics``'s value checked (a usage error, one line, otherwise): what ``pool worker`` and ``pool start``
    bind their metrics server to; None when metrics are off."""
    if text is None:
        return None
    from ..worker.exporter import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise UsageError(f"{METRICS_FLAG}: {exc}") from None


def serve_metrics(address: tuple[str, int], collector: Any) -> Any:
    """Start the metrics server (pool/worker/exporter.py); Failure with one line when it cannot."""
    from ..worker.exporter import MetricsUnavailable, serve

    try:
        return serve(address, collector)
    except MetricsUnavailable as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(f"{METRICS_FLAG}: cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}") from None
