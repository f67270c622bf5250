"""Logging set-up for the CLI, in arq's style: ``12:42:38: 10.23s → c3dd…:the_task() delayed=10.23s``.

A busy worker logs two lines per job, thousands a second. Through the standard machinery each line cost more
than running a no-op job (a LogRecord, formatting, and a write syscall: stderr is line-buffered), so the CLI's
handler is built for that load: lines logged during one event-loop turn go out in one write at the end of the
turn, and ``fast_writer`` lets the worker write its job lines without building a LogRecord when nothing but
this handler would see them (no filters, no other handlers). Output is the same, line for line.

Logging never blocks a process on its reader. A pipe, terminal or socket whose reader stops reading (``pool start
| less`` left open, ``2>&1 | sleep``, a stalled log collector) would block every write once the kernel's buffer
is full: the supervisor's loop would stop reaping and replacing workers, and a worker's event loop would stop
running jobs. So to such a sink the lines are written by a thread of their own (``LogSink``): a writer only
appends to a bounded buffer; past ``LogSink.LIMIT`` bytes waiting, lines are dropped and counted, and a line
says how many once the reader is back. A regular file (``--log-file``) is written directly, as before.

``--log-format json`` (``pool worker``, ``pool start``) writes one JSON object per line instead (``JsonFormatter``):
time, level, logger, message, and the job's id, function, try and duration on the lines about a job (the worker
passes them as the record's ``extra``). A traceback is inside its line (``exc_info``), never on lines of its own,
and a sink writes whole lines, each in one ``write`` when it fits in ``PIPE_BUF``, so the lines of several
processes sharing a pipe (a supervisor's children) never cut into each other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

DEFAULT_FORMAT = "%(asctime)s: %(message)s"
DEFAULT_DATEFMT = "%H:%M:%S"
LOG_FORMATS = ("text", "json")
# the fields a job's log lines carry (the record's ``extra``), as the JSON lines name them
JOB_FIELDS = ("job_id", "function", "try", "duration")


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


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
    ``message``, the job's fields when the record has them (``JOB_FIELDS``), and ``exc_info`` / ``stack_info``
    as text inside the object. Values JSON cannot hold are written as their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_json_lines = False  # set by setup_logging: the lines pool writes itself (LogSink's "dropped") follow the format


def dropped_line(count: int) -> str:
    """The line that says log lines were dropped, in the format in use."""
    message = f"{count} log line{'s' if count != 1 else ''} dropped: the log output was not read fast enough"
    if _json_lines:
        record = logging.LogRecord("pool", logging.WARNING, "", 0, message, None, None)
        return JsonFormatter().format(record) + "\n"
    return f"{time.strftime(DEFAULT_DATEFMT)}: {message}\n"


def whole_lines(data: bytes, limit: int = 4096) -> list[bytes]:
    """``data`` cut into chunks of whole lines of at most ``limit`` bytes (a longer line is a chunk of its own):
    a pipe takes a write of up to PIPE_BUF (4096 on Linux) at once, so lines written by several processes on one
    pipe never cut into each other."""
    if len(data) <= limit:
        return [data]
    chunks: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + limit)
        if end < 0:  # one line longer than the limit: whole, alone
            end = data.find(b"\n", start + limit)
            end = len(data) - 1 if end < 0 else end
        chunks.append(data[start : end + 1])
        start = end + 1
    return chunks


class LogSink:
    """Writes to a file descriptor from a thread of its own, so that writers never wait for the reader.

    ``write`` appends to a buffer and returns; the thread writes the buffer out (blocking as long as the reader
    makes it). Past ``LIMIT`` bytes waiting, new text is dropped and its lines counted; the thread writes
    "N log lines dropped" after what it had. After a fork the child's copy starts empty (the parent writes
    what was waiting) and gets a thread of its own when it first writes."""

    LIMIT = 2 * 1024 * 1024

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._reset()
        _SINKS.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._chunks: list[bytes] = []
        self._size = 0
        self._dropped = 0
        self._busy = False  # the thread is writing (or about to): no need to wake it
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pool-log-writer", daemon=True)
                self._thread.start()
            if self._size + len(data) > self.LIMIT:
                self._dropped += data.count(b"\n") or 1
            else:
                self._chunks.append(data)
                self._size += len(data)
            if not self._busy:
                self._cond.notify()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for everything written so far to reach the descriptor."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and not self._chunks and not self._dropped, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and not self._dropped:
                    self._busy = False
                    self._cond.notify_all()  # flush() waits for this
                    self._cond.wait()
                self._busy = True
                chunks, self._chunks, self._size = self._chunks, [], 0
                dropped, self._dropped = self._dropped, 0
            data = b"".join(chunks)
            if dropped:
                data += dropped_line(dropped).encode()
            for chunk in whole_lines(data):
                self._write_all(chunk)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except InterruptedError:
                continue
            except OSError:  # the reader is gone (EPIPE), or the descriptor was closed: nothing to write to
                return


_SINKS: weakref.WeakSet[LogSink] = weakref.WeakSet()


def _reset_sinks_after_fork() -> None:
    for sink in list(_SINKS):
        sink._reset()


os.register_at_fork(after_in_child=_reset_sinks_after_fork)

FLUSH_WAIT_S = 1.0  # how long flush() (and the exit) waits for a slow reader before giving up on the rest


def _sink_for(stream: Any) -> LogSink | None:
    """A LogSink for a stream on a pipe, terminal or socket; None for a regular file (writes do not wait on a
    reader) or a stream without a descriptor (tests' StringIO)."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else LogSink(fd)


class BatchingStreamHandler(logging.StreamHandler[Any]):
    """A StreamHandler that, inside a running event loop, writes the lines of one loop turn together.

    Lines are kept in order and written before the loop runs anything else that could wait long (the write is
    scheduled with ``call_soon``); outside an event loop (another thread, the supervisor's parent, start-up)
    each line is written at once. ``logging.shutdown`` and ``flush`` write whatever is pending. A stream on a pipe,
    terminal or socket is written through a ``LogSink``, so no write waits for the reader."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop that will write the pending lines
        self._sink: LogSink | bool | None = False  # False: not looked at yet (see _sink_for)

    def setStream(self, stream: Any) -> Any:
        self._sink = False
        return super().setStream(stream)

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

    def flush(self, timeout: float = FLUSH_WAIT_S) -> None:
        """Write what is pending; through a LogSink, wait up to ``timeout`` seconds for it to be written."""
        self.acquire()
        try:
            self._write_pending()
            sink = self._sink
        finally:
            self.release()
        if isinstance(sink, LogSink):
            sink.flush(timeout)

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
        text = self.terminator.join(lines) + self.terminator
        if self._sink is False:
            self._sink = _sink_for(self.stream)
        try:
            if isinstance(self._sink, LogSink):
                self._sink.write(text.encode(getattr(self.stream, "encoding", None) or "utf-8", "backslashreplace"))
            else:
                self.stream.write(text)
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


def default_log_config(verbose: bool, log_format: str = "text") -> dict[str, Any]:
    """pool's logging: arq's text lines, or (``log_format="json"``) one JSON object per line."""
    level = "DEBUG" if verbose else "INFO"
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"()": Formatter, "format": DEFAULT_FORMAT, "datefmt": DEFAULT_DATEFMT}
    )
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
        "formatters": {"pool.standard": formatter},
        # propagating, as arq's: the application's own handlers (and pytest's caplog) see pool's records too
        "loggers": {"pool": {"handlers": ["pool.standard"], "level": level}},
    }


def setup_logging(verbose: bool = False, log_format: str = "text") -> None:
    global _json_lines
    logging.config.dictConfig(default_log_config(verbose, log_format))
    _json_lines = log_format == "json"


def json_lines() -> bool:
    """Whether pool's logs are JSON lines (``--log-format json``): text pool writes itself must be one too."""
    return _json_lines


def flush_logs(timeout: float = FLUSH_WAIT_S) -> None:
    """Write pending log lines now: before a fork (``timeout=0``: a forked child never writes its parent's
    lines, so there is nothing to wait for), and before ``os._exit`` (which skips logging.shutdown)."""
    for handler in logging.getLogger("pool").handlers:
        if isinstance(handler, BatchingStreamHandler):
            handler.flush(timeout)
        else:
            handler.flush()
