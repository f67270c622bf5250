"""What the pages show of pool's records: times, calls and uptimes as text. Pure functions; the templates
escape whatever they return (job data is user data)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..client.inspection import JobRow
from ..storage.codecs import JobDef, JobResult
from ..worker.cron import CronJob

ARGS_IN_LIST = 120  # characters of a job's arguments shown in a list; the job's page shows them all


def when(moment: datetime | int | float | None) -> str:
    """A time as UTC text; ints and floats are epoch ms."""
    if moment is None:
        return "—"
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _repr(value: Any) -> str:
    """``repr(value)``, or the type's name when it raises: values are rebuilt from stored data (an exception from
    its class name and arguments), which the class's own ``__repr__`` may not expect."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}: unprintable>"


def error_text(error: Any) -> str:
    """``Type: message`` of a recorded exception (or value), whatever its ``__str__`` does."""
    try:
        message = str(error)
    except Exception:
        message = "(unprintable)"
    return f"{type(error).__name__}: {message}"


def call(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int | None = None) -> str:
    text = "(" + ", ".join([*(_repr(a) for a in args), *(f"{k}={_repr(v)}" for k, v in kwargs.items())]) + ")"
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def job_row(row: JobRow, info: JobDef | None) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "function": info.function if info else "?",
        "arguments": call(info.args, info.kwargs, ARGS_IN_LIST) if info else "?",
        "job_try": (info.job_try or 0) if info else "?",
        "enqueued": when(info.enqueue_time) if info else "?",
        "priority": row.priority,
        "consumer": row.consumer,
        "idle": f"{(row.idle_ms or 0) / 1000:.1f} s",
        "due": when(row.due_ms),
    }


def job_info(info: JobDef) -> dict[str, Any]:
    times = [("due", when(info.score))] if info.score and not isinstance(info, JobResult) else []
    finished = isinstance(info, JobResult)
    if isinstance(info, JobResult):
        times += [("started", when(info.start_time)), ("finished", when(info.finish_time))]
    result = getattr(info, "result", None)
    return {
        "function": info.function,
        "arguments": call(info.args, info.kwargs),
        "job_try": info.job_try if info.job_try is not None else "not run yet",
        "enqueued": when(info.enqueue_time),
        "times": times,
        "has_result": finished,
        "success": getattr(info, "success", False),
        "result": _repr(result) if getattr(info, "success", False) else error_text(result),
    }


def failed_record(record: JobResult) -> dict[str, Any]:
    return {
        "job_id": record.job_id,
        "function": record.function,
        "arguments": call(record.args, record.kwargs, ARGS_IN_LIST),
        "job_try": record.job_try,
        "finished": when(record.finish_time),
        "error": error_text(record.result),
        "traceback": record.traceback or "(no traceback)",
    }


def supervisor(entry: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    children = [
        {
            **child,
            "uptime": duration(now - child["started"]) if child.get("started") else "—",
            "rss_mb": child.get("rss", 0) / 1048576,
            "cpu": child.get("cpu", 0),
        }
        for child in entry.get("children", [])
    ]
    return {**entry, "uptime": duration(now - entry.get("started", now)), "children": children}


def leader(supervisor_ids: list[str], lock_ttl_ms: int) -> str:
    if supervisor_ids:
        return "supervisor " + ", ".join(supervisor_ids)
    if lock_ttl_ms > 0 or lock_ttl_ms == -1:
        return "a worker (pool worker) holds the leadership lock"
    return "nobody (no worker or supervisor leads cron now)"


_FIELDS = ("month", "day", "weekday", "hour", "minute", "second")


def cron_row(job: CronJob, last_tick_ms: int | None) -> dict[str, Any]:
    fields = {name: getattr(job, name) for name in _FIELDS}
    schedule = job.crontab or " ".join(f"{name}={_field(value)}" for name, value in fields.items() if value is not None)
    next_tick = job.next_tick(datetime.now().astimezone())
    function = job.coroutine if isinstance(job.coroutine, str) else getattr(job.coroutine, "__qualname__", "?")
    return {
        "name": job.name,
        "function": function,
        "schedule": schedule or "every second",
        "next": when(next_tick),
        "last": when(last_tick_ms),
    }


def _field(value: Any) -> str:
    return ",".join(str(v) for v in sorted(value)) if isinstance(value, set | frozenset) else str(value)
