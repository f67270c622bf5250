"""Logging set-up for the CLI, in arq's style: ``12:42:38: 10.23s → c3dd…:the_task() delayed=10.23s``."""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any


class Formatter(logging.Formatter):
    """The standard formatter, with the time text made once per second rather than for every line (a worker
    logs two lines per job)."""

    _cached: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if self._cached[0] != second:
            self._cached = (second, time.strftime(datefmt or "%H:%M:%S", self.converter(second)))
        return self._cached[1]


def default_log_config(verbose: bool) -> dict[str, Any]:
    level = "DEBUG" if verbose else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"pool.standard": {"level": level, "class": "logging.StreamHandler", "formatter": "pool.standard"}},
        "formatters": {"pool.standard": {"()": Formatter, "format": "%(asctime)s: %(message)s", "datefmt": "%H:%M:%S"}},
        "loggers": {"pool": {"handlers": ["pool.standard"], "level": level, "propagate": False}},
    }


def setup_logging(verbose: bool = False) -> None:
    logging.config.dictConfig(default_log_config(verbose))
