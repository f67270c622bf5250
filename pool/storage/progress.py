"""A running job's progress and metadata: the record ``ctx['job'].update(...)`` writes, and how it is read.

Record ``{"p": progress or None, "m": metadata dict, "t": updated_ms}``, serialized with the queue's serializer
(msgpack by default) into the job hash's field ``pg`` while the job runs (pool/storage/lua/progress.lua), then
kept in the result payload's field ``pg`` for as long as the result is (``keep_result``).

Bounded: an encoded record over ``MAX_PROGRESS_BYTES`` is refused in the job itself (``ProgressTooLarge``), so a
job reporting in a loop cannot grow its hash without bound; progress is for a few figures, not for output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..utils import ms_to_datetime
from .serializers import Deserializer, SerializationError, Serializer, msgpack_deserializer, msgpack_serializer

__all__ = ["MAX_PROGRESS_BYTES", "JobProgress", "ProgressTooLarge", "decode_progress", "progress_record"]

MAX_PROGRESS_BYTES = 64 * 1024


class ProgressTooLarge(SerializationError, ValueError):
    """A progress record over ``MAX_PROGRESS_BYTES`` encoded: refused, nothing written. A ValueError too, as
    every other bad value given to ``update``."""


@dataclass(frozen=True, slots=True)
class JobProgress:
    """What a job last reported: ``progress`` (a number, by convention 0.0 to 1.0; None if it only gave
    metadata), ``meta`` (a small dict) and when it reported it."""

    progress: float | None
    meta: dict[str, Any]
    updated: datetime


def progress_record(
    progress: float | None, meta: Mapping[str, Any] | None, updated_ms: int, serializer: Serializer | None
) -> tuple[dict[str, Any], bytes]:
    """The record and its encoding, checked: a finite number, a dict with string keys, what the serializer
    takes, at most ``MAX_PROGRESS_BYTES``. Raises ValueError / SerializationError (one line) otherwise."""
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, int | float) or not math.isfinite(progress):
            raise ValueError(f"progress={progress!r} must be a finite number (0.0 to 1.0 by convention) or None")
        progress = float(progress)
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping) or not all(isinstance(key, str) for key in meta):
        raise ValueError(f"meta must be a dict with string keys, got {type(meta).__name__}")
    record = {"p": progress, "m": dict(meta), "t": updated_ms}
    try:
        encoded = (serializer or msgpack_serializer)(record)
    except Exception as exc:
        raise SerializationError(f"unable to serialize job progress: {exc}") from exc
    if len(encoded) > MAX_PROGRESS_BYTES:
        raise ProgressTooLarge(
            f"job progress is {len(encoded)} bytes encoded, over the limit of {MAX_PROGRESS_BYTES} bytes: "
            "keep meta to a few small values"
        )
    return record, encoded


def from_record(record: Any) -> JobProgress | None:
    """A decoded record as a ``JobProgress``; None for anything else (a record pool did not write)."""
    if not isinstance(record, dict) or not isinstance(record.get("m"), dict) or not isinstance(record.get("t"), int):
        return None
    progress = record.get("p")
    return JobProgress(
        progress=float(progress) if isinstance(progress, int | float) else None,
        meta=record["m"],
        updated=ms_to_datetime(record["t"]),
    )


def decode_progress(payload: bytes | None, deserializer: Deserializer | None) -> JobProgress | None:
    """The progress in a job hash's field ``pg``; None when there is none or it cannot be read."""
    if payload is None:
        return None
    try:
        return from_record((deserializer or msgpack_deserializer)(payload))
    except Exception:
        return None
