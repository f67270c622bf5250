"""The payload codecs: a job's definition and its result as stored in Redis, encoded and decoded.

Payload shapes (serialized with the queue's serializer, msgpack by default), kept close to arq's:
job    ``{"f": function, "a": args, "k": kwargs, "et": enqueue_ms}``, and when set: "os"/"of" (on_success /
       on_failure callback names), "da" (run even if a dependency failed), and the per-job settings the worker
       honours over its own: "jt" (timeout ms, -1 none), "kr" (keep the result ms, -1 forever), "fk" (keep a
       failure in the failed registry ms, 0 not at all), "ds" (description), "tc" (the enqueuing trace
       context, W3C traceparent/tracestate, when tracing is on: pool/tracing.py)
result ``{"f", "a", "k", "et", "t": attempts, "s": success, "r": result or exception, "st": start_ms,
         "ft": finish_ms, "q": queue_name, "id": job_id, "tb": traceback of a failure, "ds": description,
         "pg": the progress the job last reported (pool/storage/progress.py)}``
"""

from __future__ import annotations

import logging
from dataclasses import InitVar, dataclass
from datetime import datetime
from typing import Any

from ..utils import ms_to_datetime
from .keys import DEFAULT_QUEUE_NAME
from .progress import JobProgress, from_record
from .serializers import (
    DeserializationError,
    Deserializer,
    SerializationError,
    Serializer,
    msgpack_deserializer,
    msgpack_serializer,
)

logger = logging.getLogger("pool.jobs")


@dataclass
class JobDef:
    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_try: int | None  # None: a job that has not run yet (arq's)
    enqueue_time: datetime
    score: int | None
    job_id: str | None = None
    # the job's ``_description`` (rq's), if it was given one: set as an attribute, not a field, so
    # ``dataclasses.asdict`` gives arq's fields only (code ported from arq compares them)
    description: InitVar[str | None] = None

    def __post_init__(self, description: str | None) -> None:
        object.__setattr__(self, "description", description)  # read it with ``description_of``
        object.__setattr__(self, "progress", None)  # set by the readers that have it: ``progress_of``


def progress_of(job: JobDef) -> JobProgress | None:
    """The progress and metadata a job last reported (``ctx['job'].update``), of a running job's ``JobDef`` or a
    finished one's ``JobResult``: an attribute outside the dataclass fields, as ``description``. None if none."""
    progress: JobProgress | None = getattr(job, "progress", None)
    return progress


def with_progress(job: JobDef, progress: JobProgress | None) -> JobDef:
    object.__setattr__(job, "progress", progress)
    return job


def description_of(job: JobDef) -> str | None:
    """A ``JobDef``'s (or ``JobResult``'s) description: an attribute outside the dataclass fields."""
    text: str | None = getattr(job, "description", None)
    return text


@dataclass
class JobResult(JobDef):
    success: bool = False
    result: Any = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    queue_name: str = DEFAULT_QUEUE_NAME
    traceback: str | None = None  # of a failure, for the failed-job registry


def job_try_before_end(attempts: int, state: str | None) -> int | None:
    """``JobDef.job_try`` of a job not finished: None when it has not run (arq's), the try it is on while it
    runs, else the try its next run will be (``_job_try=3`` shows 3; after one run and a Retry, 2)."""
    if state == "r":
        return attempts or None
    return attempts + 1 if attempts else None


def serialize_job(
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    enqueue_ms: int,
    serializer: Serializer | None,
    options: dict[str, Any] | None = None,
) -> bytes:
    data = {"f": function, "a": list(args), "k": kwargs, "et": enqueue_ms}
    if options:
        data.update(options)
    try:
        return (serializer or msgpack_serializer)(data)
    except Exception as exc:
        raise SerializationError(f'unable to serialize job "{function}": {exc}') from exc


def deserialize_job(payload: bytes, deserializer: Deserializer | None) -> dict[str, Any]:
    """Decode and check the shape of a job payload; DeserializationError says what is wrong."""
    try:
        data = (deserializer or msgpack_deserializer)(payload)
    except Exception as exc:
        raise DeserializationError(f"unable to deserialize job: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("f"), str):
        raise DeserializationError("unable to deserialize job: payload is not a job definition")
    args, kwargs = data.get("a", []), data.get("k", {})
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise DeserializationError("unable to deserialize job: args must be a list and kwargs a map")
    if kwargs and not all(isinstance(key, str) for key in kwargs):
        raise DeserializationError("unable to deserialize job: kwargs keys must be strings")
    enqueue_ms = data.get("et")
    if not isinstance(enqueue_ms, int) or not 0 <= enqueue_ms < _MAX_MS:
        raise DeserializationError(f"unable to deserialize job: bad enqueue time {enqueue_ms!r}")
    return data


_MAX_MS = 253_402_300_799_000  # 9999-12-31: the last time a datetime can hold


class PayloadTooLarge(SerializationError):
    """A job or result over ``max_payload_bytes``: refused before anything is sent."""


def check_job_size(payload: bytes, limit: int | None, function: str) -> bytes:
    if limit is not None and len(payload) > limit:
        raise PayloadTooLarge(
            f"job {function!r} is {len(payload)} bytes serialized, over the limit of {limit} bytes "
            "(create_pool(max_payload_bytes=...) / Worker(max_payload_bytes=...))"
        )
    return payload


def serialize_result(
    *,
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    attempts: int,
    enqueue_ms: int,
    success: bool,
    result: Any,
    start_ms: int,
    finish_ms: int,
    queue_name: str,
    job_id: str,
    serializer: Serializer | None,
    traceback: str | None = None,
    description: str | None = None,
) -> bytes:
    """Encode a result (see ``encode_result``); never raises."""
    return encode_result(
        function=function,
        args=args,
        kwargs=kwargs,
        attempts=attempts,
        enqueue_ms=enqueue_ms,
        success=success,
        result=result,
        start_ms=start_ms,
        finish_ms=finish_ms,
        queue_name=queue_name,
        job_id=job_id,
        serializer=serializer,
        traceback=traceback,
        description=description,
    )[0]


def encode_result(
    *,
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    attempts: int,
    enqueue_ms: int,
    success: bool,
    result: Any,
    start_ms: int,
    finish_ms: int,
    queue_name: str,
    job_id: str,
    serializer: Serializer | None,
    traceback: str | None = None,
    description: str | None = None,
    progress: dict[str, Any] | None = None,
) -> tuple[bytes, bool]:
    """Encode a result, and say whether it was kept as given (False: recorded as a failure to encode it).
    Never raises: a job must reach a final state whatever it returned or raised.

    When the job's return value (or exception) cannot be encoded, the job is recorded as failed with, in turn, the
    first of these that the serializer takes: a ``SerializationError`` saying why (the default msgpack keeps
    exceptions); arq's string ``'unable to serialize result'`` (a plain ``msgpack.packb`` keeps no exception;
    ``Job.result()`` raises it as a SerializationError); the same without the job's arguments (a serializer that
    cannot encode them either). If the serializer encodes none of them, the record is written with pool's msgpack,
    which always can: a reader with another deserializer sees it as unreadable, but the job is finished."""
    data = {
        "f": function,
        "a": list(args),
        "k": kwargs,
        "t": attempts,
        "et": enqueue_ms,
        "s": success,
        "r": result,
        "st": start_ms,
        "ft": finish_ms,
        "q": queue_name,
        "id": job_id,
    }
    if traceback:
        data["tb"] = traceback
    if description is not None:
        data["ds"] = description
    if progress is not None:
        data["pg"] = progress
    encode = serializer or msgpack_serializer
    try:
        return encode(data), True
    except Exception as exc:
        reason = exc
    ref = f"{job_id}:{function}"
    logger.warning("error serializing result of %s: %s: %s", ref, type(reason).__name__, reason)
    what = "result" if success else "exception"
    fallbacks = (
        {"s": False, "r": SerializationError(f"unable to serialize {what}: {reason}")},
        {"s": False, "r": UNSERIALIZABLE_RESULT},
        {"s": False, "r": UNSERIALIZABLE_RESULT, "a": [], "k": {}},
    )
    for replacement in fallbacks:
        data.update(replacement)
        try:
            return encode(data), False
        except Exception:
            continue
    logger.critical("error serializing result of %s even after replacing result: written with msgpack", ref)
    data.pop("tb", None)
    return msgpack_serializer(data), False


def serialize_result_arq(
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    job_try: int,
    enqueue_time_ms: int,
    success: bool,
    result: Any,
    start_ms: int,
    finished_ms: int,
    ref: str,
    queue_name: str,
    job_id: str,
    *,
    serializer: Serializer | None = None,
) -> bytes | None:
    """``serialize_result`` with arq's positional signature and contract (``pool.jobs.serialize_result``): a
    result that cannot be encoded is recorded as such (see ``encode_result``), and None, as arq's, when the job's
    arguments cannot be encoded either. pool's worker does not use it: its results always reach Redis."""
    encode = serializer or msgpack_serializer
    try:
        encode({"a": list(args), "k": kwargs})
    except Exception as exc:
        logger.critical(
            "error serializing result of %s even after replacing result: %s: %s", ref, type(exc).__name__, exc
        )
        return None
    return encode_result(
        function=function,
        args=args,
        kwargs=kwargs,
        attempts=job_try,
        enqueue_ms=enqueue_time_ms,
        success=success,
        result=result,
        start_ms=start_ms,
        finish_ms=finished_ms,
        queue_name=queue_name,
        job_id=job_id,
        serializer=serializer,
    )[0]


def deserialize_job_raw(
    payload: bytes, *, deserializer: Deserializer | None = None
) -> tuple[str, tuple[Any, ...], dict[str, Any], int | None, int]:
    """arq's: (function, args, kwargs, job_try given at enqueue or None, enqueue time ms) of a job payload."""
    data = deserialize_job(payload, deserializer)
    return data["f"], tuple(data["a"]), data["k"], data.get("t"), data["et"]


UNSERIALIZABLE_RESULT = "unable to serialize result"  # arq's record of a result its serializer could not encode


def deserialize_result(payload: bytes, deserializer: Deserializer | None) -> JobResult:
    try:
        data = (deserializer or msgpack_deserializer)(payload)
    except Exception as exc:
        raise DeserializationError(f"unable to deserialize job result: {exc}") from exc
    # a payload that decodes to something else than a result (pool did not write it): a DeserializationError,
    # which listings show as an unreadable record, rather than a KeyError or TypeError taking them down
    if not isinstance(data, dict) or not isinstance(data.get("a"), list | tuple) or not isinstance(data.get("k"), dict):
        raise DeserializationError("unable to deserialize job result: payload is not a job result")
    try:
        result = JobResult(
            function=data["f"],
            args=tuple(data["a"]),
            kwargs=data["k"],
            job_try=data["t"],
            enqueue_time=ms_to_datetime(data["et"]),
            score=None,
            success=data["s"],
            result=data["r"],
            start_time=ms_to_datetime(data["st"]),
            finish_time=ms_to_datetime(data["ft"]),
            queue_name=data["q"],
            job_id=data.get("id"),
            traceback=data.get("tb"),
            description=data.get("ds"),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DeserializationError(f"unable to deserialize job result: {type(exc).__name__}: {exc}") from None
    with_progress(result, from_record(data.get("pg")))
    return result


UNREADABLE = "?"  # the function name of a result that could not be decoded (``unreadable_result``)


def unreadable_result(job_id: str, error: DeserializationError) -> JobResult:
    """Stands in for a stored result that cannot be decoded (written by something else than pool, or nested too
    deep), so that listing many records shows this one with the reason rather than fail on it."""
    return JobResult(
        function=UNREADABLE,
        args=(),
        kwargs={},
        job_try=0,
        enqueue_time=ms_to_datetime(0),
        score=None,
        success=False,
        result=error,
        job_id=job_id,
    )
