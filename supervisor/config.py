"""The supervisor's options, each defined once: its name, default, validation and help together.

Both ``pool start``'s flags and ``SupervisorConfig``'s defaults are derived from ``SETTINGS``, so a default or a
check cannot differ between the command line and code that builds a config itself (gunicorn's config.Setting).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pool.redis.settings import RedisSettings
from pool.worker.exporter import METRICS_FLAG, METRICS_HELP
from pool.worker.redis_wait import WAIT_FLAG, WAIT_HELP

from .pidfile import DEFAULT_PIDFILE


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


@dataclass(frozen=True)
class Setting:
    """One option. ``flag`` None: set in code only. ``parse`` turns the flag's text into the value, or refuses it."""

    name: str
    default: Any
    flag: str | None = None
    parse: Callable[[str], Any] = str
    metavar: str | None = None
    help: str = ""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        assert self.flag is not None, f"{self.name} has no flag"
        parser.add_argument(
            self.flag, dest=self.name, type=self.parse, default=self.default, metavar=self.metavar, help=self.help
        )


# shared with `pool worker` (pool/worker/redis_wait.py): one behaviour when Redis is down at start
WAIT_FOR_REDIS = Setting("wait_for_redis", None, WAIT_FLAG, non_negative_float, "S", WAIT_HELP)

SETTINGS: tuple[Setting, ...] = (
    Setting("procs", None, "--procs", positive_int, help="worker processes (default: settings.procs, else CPUs)"),
    Setting("pidfile", DEFAULT_PIDFILE, "--pidfile", help="default: %(default)s"),
    Setting(
        "child_timeout",
        30.0,
        "--child-timeout",
        positive_float,
        "S",
        "kill and replace a worker whose event loop sent no heartbeat for S seconds (%(default)g)",
    ),
    Setting(
        "graceful_timeout",
        30.0,
        "--graceful-timeout",
        non_negative_float,
        "S",
        "on stop/reload, let running jobs finish for S seconds (%(default)g), then cancel them: they run again "
        "later. 0 cancels at once",
    ),
    Setting("max_jobs_per_child", None, "--max-jobs-per-child", positive_int, "K", "recycle after ~K jobs"),
    Setting(
        "max_memory_per_child_mb",
        None,
        "--max-memory-per-child",
        positive_float,
        "MB",
        "recycle a worker whose memory (USS) stays over MB",
    ),
    Setting(
        "health_interval",
        2.0,
        "--health-interval",
        positive_float,
        "S",
        "write this supervisor's health entry every S seconds (%(default)g) and whenever a worker's state changes; "
        "readers call it stale after S+2 seconds, and it expires after 2S+1",
    ),
    WAIT_FOR_REDIS,
    # checked by `pool start` (pool/cli/common.py's metrics_address: a usage error, one line); None: off
    Setting("metrics", None, METRICS_FLAG, str, "HOST:PORT", METRICS_HELP),
    Setting("heartbeat_interval", 1.0),
    Setting("boot_failure_limit", 5),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


def setting(name: str) -> Setting:
    return _BY_NAME[name]


def default(name: str) -> Any:
    return _BY_NAME[name].default


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Every option that has a flag, in the table's order."""
    for each in SETTINGS:
        if each.flag is not None:
            each.add_to(parser)


@dataclass
class SupervisorConfig:
    settings_path: str
    redis_settings: RedisSettings | None = None
    procs: int | None = default("procs")
    pidfile: str | None = default("pidfile")
    child_timeout: float = default("child_timeout")
    graceful_timeout: float = default("graceful_timeout")
    max_jobs_per_child: int | None = default("max_jobs_per_child")
    max_memory_per_child_mb: float | None = default("max_memory_per_child_mb")
    health_interval: float = default("health_interval")
    wait_for_redis: float | None = default("wait_for_redis")
    metrics: str | None = default("metrics")
    heartbeat_interval: float = default("heartbeat_interval")
    boot_failure_limit: int = default("boot_failure_limit")

    @classmethod
    def from_args(cls, args: argparse.Namespace, redis_settings: RedisSettings | None) -> SupervisorConfig:
        """The parsed flags of ``pool start``, the pidfile path made absolute."""
        values = {each.name: getattr(args, each.name) for each in SETTINGS if each.flag is not None}
        values["pidfile"] = os.path.abspath(values["pidfile"])
        return cls(settings_path=args.settings, redis_settings=redis_settings, **values)
