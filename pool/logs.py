"""Logging set-up for the CLI, in arq's style: ``12:42:38: 10.23s → c3dd…:the_task() delayed=10.23s``."""

from __future__ import annotations

import logging
import logging.config
from typing import Any


def default_log_config(verbose: bool) -> dict[str, Any]:
    level = "DEBUG" if verbose else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"pool.standard": {"level": level, "class": "logging.StreamHandler", "formatter": "pool.standard"}},
        "formatters": {"pool.standard": {"format": "%(asctime)s: %(message)s", "datefmt": "%H:%M:%S"}},
        "loggers": {"pool": {"handlers": ["pool.standard"], "level": level, "propagate": False}},
    }


def setup_logging(verbose: bool = False) -> None:
    logging.config.dictConfig(default_log_config(verbose))
