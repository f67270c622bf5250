"""Small helpers shared by the client and the worker: time in ms, durations, settings import, redaction."""

from __future__ import annotations

import importlib
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    """Naive datetimes are taken as local time, as ``datetime.timestamp`` does (and arq does)."""
    return int(value.timestamp() * 1000)


def to_seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def to_ms(value: float | timedelta | None) -> int | None:
    seconds = to_seconds(value)
    return None if seconds is None else round(seconds * 1000)


def import_string(dotted_path: str) -> Any:
    """Import ``package.module.Attr`` (or ``package.module:Attr``); ImportError with a one-line reason if not."""
    module_path, sep, attr = dotted_path.replace(":", ".").rpartition(".")
    if not sep or not module_path or not attr:
        raise ImportError(f"{dotted_path!r} is not a dotted path like 'app.WorkerSettings'")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_path!r} has no attribute {attr!r}") from None


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@", re.I)


def redact_url(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host``: secrets never reach logs or titles."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def truncate(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
