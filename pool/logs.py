"""Logging set-up for the CLI, in arq's style: ``12:42:38: 10.23s → c3dd…:the_task() delayed=10.23s``.

A busy worker logs two lines per job, thousands a second. Through the standard machinery each line cost more
than running a no-op job (a LogRecord, formatting, and a write syscall: stderr is line-buffered), so the CLI's
handler is built for that load: lines logged during one event-loop turn go out in one write at the end of the
turn, and ``fast_writer`` lets the worker write its job lines without building a LogRecord when nothing but
this handler would see them (no filters, no other handlers). Output is the same, line for line.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import time
from collections.abc import Callable
from typing import Any

DEFAULT_FORMAT = "%(asctime)s: %(message)s"
DEFAULT_DATEFMT = "%H:%M:%S"


class Formatter(logging.Formatter):
    """The standard formatter, with the time text made once per second rather than for every line."""

    _cached: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created, datefmt)

    def time_text(self, created: float, datefmt: str | None = None) -> str:
        second = int(created)
        if self._cached[0] != second:
            self._cached = (second, time.strftime(datefmt or DEFAULT_DATEFMT, self.converter(second)))
        return self._cached[1]


class BatchingStreamHandler(logging.StreamHandler[Any]):
    """A StreamHandler that, inside a running event loop, writes the lines of one loop turn together.

    Lines are kept in order and written before the loop runs anything else that could wait long (the write is
    scheduled with ``call_soon``); outside an event loop (another thread, the supervisor's parent, start-up)
    each line is written at once. ``logging.shutdown`` and ``flush`` write whatever is pending."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop that will write the pending lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Write one formatted line (no terminator), batched with the others of this loop turn."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.acquire()
        try:
            self._pending.append(line)
            if loop is None:
                self._write_pending()
            elif self._scheduled_on is not loop:  # (a loop closed before its turn ended never writes: reschedule)
                self._scheduled_on = loop
                loop.call_soon(self._write_scheduled_lines)
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()

    def _write_scheduled_lines(self) -> None:
        self.acquire()
        try:
            self._scheduled_on = None
            self._write_pending()
        finally:
            self.release()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self.stream.write(self.terminator.join(lines) + self.terminator)
            super().flush()
        except Exception:  # a closed or broken stream: logging must never take the worker down
            pass


def fast_writer(logger: logging.Logger, level: int = logging.INFO) -> Callable[[str], None] | None:
    """A function that writes a message exactly as ``logger.log(level, message)`` would, without the LogRecord,
    when the only thing that would see the record is one ``BatchingStreamHandler`` with the default format and
    no filters; otherwise None (the caller logs the usual way). Decided once: call it again after changing the
    logging configuration."""
    if not logger.isEnabledFor(level):
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if len(handlers) != 1 or not isinstance(handlers[0], BatchingStreamHandler):
        return None
    handler = handlers[0]
    formatter = handler.formatter
    if handler.filters or level < handler.level or not isinstance(formatter, Formatter):
        return None
    if formatter._fmt != DEFAULT_FORMAT:
        return None
    datefmt = formatter.datefmt

    def write(message: str) -> None:
        handler.write_line(f"{formatter.time_text(time.time(), datefmt)}: {message}")

    return write


def default_log_config(verbose: bool) -> dict[str, Any]:
    level = "DEBUG" if verbose else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "pool.standard": {
                "level": level,
                "class": f"{__name__}.BatchingStreamHandler",
                "formatter": "pool.standard",
            }
        },
        "formatters": {"pool.standard": {"()": Formatter, "format": DEFAULT_FORMAT, "datefmt": DEFAULT_DATEFMT}},
        # propagating, as arq's: the application's own handlers (and pytest's caplog) see pool's records too
        "loggers": {"pool": {"handlers": ["pool.standard"], "level": level}},
    }


def setup_logging(verbose: bool = False) -> None:
    logging.config.dictConfig(default_log_config(verbose))


def flush_logs() -> None:
    """Write pending log lines now: before a fork, and before ``os._exit`` (which skips logging.shutdown)."""
    for handler in logging.getLogger("pool").handlers:
        handler.flush()
