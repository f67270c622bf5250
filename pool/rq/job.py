"""rq's ``Job``: a synchronous handle on one job of a queue, read back from Redis.

A job is read in one round trip (its hash, its result, its failed record) and shown as rq shows it: ``get_status()``
with rq's status names, ``func_name``, ``args``, ``kwargs``, ``description``, ``enqueued_at``, ``started_at``,
``ended_at``, ``result``/``return_value()``, ``exc_info`` and ``latest_result(timeout=...)``, which blocks on the
completion notification the worker sends (no polling). pool's job keys are per queue, so ``Job.fetch`` takes the
queue's name (``'default'`` unless told).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum
from typing import Any

from ..client.jobs import JobAborted
from ..redis import blocking
from ..storage.codecs import JobResult, description_of, deserialize_job, deserialize_result
from ..storage.keys import DEFAULT_QUEUE_NAME
from ..storage.queue import RESULT_WAIT_S, WAITER_MARGIN_MS
from ..storage.serializers import Deserializer
from ..storage.sync import SyncQueue
from ..utils import ms_to_datetime, truncate
from .connection import client_for, codecs
from .exceptions import NoSuchJobError
from .options import Dependency

__all__ = ["Dependency", "Job", "JobStatus", "Result"]


class JobStatus(str, Enum):  # noqa: UP042 - rq's own base classes: its values compare equal to plain strings
    """rq's statuses. pool's job states map onto them: queued (also waiting for a ``max_concurrency`` slot),
    scheduled (due later: ``enqueue_in``/``enqueue_at``, or a ``Retry`` delay), deferred (waiting for its
    dependencies), started, finished, failed, canceled (aborted)."""

    QUEUED = "queued"
    FINISHED = "finished"
    FAILED = "failed"
    STARTED = "started"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STOPPED = "stopped"
    CANCELED = "canceled"


_STATUS_OF_STATE = {
    "q": JobStatus.QUEUED,
    "p": JobStatus.QUEUED,
    "d": JobStatus.SCHEDULED,
    "w": JobStatus.DEFERRED,
    "r": JobStatus.STARTED,
}


@dataclass(frozen=True)
class Result:
    """rq's ``Result`` of one run: ``type``, ``return_value`` (a success's), ``exc_string`` (a failure's
    traceback or, without one, its type and message), ``created_at``; ``exception`` is pool's: the exception
    itself, rebuilt when its class is importable."""

    class Type(IntEnum):
        SUCCESSFUL = 1
        FAILED = 2
        STOPPED = 3

    job_id: str
    type: Type
    return_value: Any = None
    exc_string: str | None = None
    created_at: datetime | None = None
    exception: BaseException | None = None

    @classmethod
    def of(cls, job_id: str, record: JobResult) -> Result:
        if record.success:
            return cls(job_id, cls.Type.SUCCESSFUL, record.result, created_at=record.finish_time)
        kind = cls.Type.STOPPED if isinstance(record.result, JobAborted) else cls.Type.FAILED
        error = record.result if isinstance(record.result, BaseException) else None
        exc_string = record.traceback or (
            f"{type(error).__name__}: {error}" if error is not None else str(record.result)
        )
        return cls(job_id, kind, exc_string=exc_string, created_at=record.finish_time, exception=error)


class Job:
    """A handle on one job id of a queue; attributes read what was last fetched (``refresh()`` reads again)."""

    def __init__(
        self,
        id: str,  # rq's name
        queue: SyncQueue,
        deserializer: Deserializer | None = None,
        *,
        payload: bytes | None = None,
    ) -> None:
        self.id = id
        self._queue = queue
        self._deserializer = deserializer
        self._payload = payload  # the job as enqueued, when this handle made it: read without a round trip
        self._data: dict[str, Any] | None = None
        self._state: str | None = None
        self._record: JobResult | None = None  # its result, or its failed record
        self._cached_result: Result | None = None
        self._fetched = False

    # --- finding a job ---------------------------------------------------------------------------------------

    @classmethod
    def fetch(
        cls,
        id: str,  # rq's name
        connection: Any,
        serializer: Any = None,
        *,
        queue: str = DEFAULT_QUEUE_NAME,
        job_deserializer: Deserializer | None = None,
    ) -> Job:
        """The job ``id`` of queue ``queue``, read now; ``NoSuchJobError`` when the queue knows nothing of it."""
        job = cls(id, _queue_of(connection, queue), codecs(serializer, None, job_deserializer)[1])
        if not job.refresh():
            raise NoSuchJobError(f"no job {id!r} in queue {queue!r}")
        return job

    @classmethod
    def exists(cls, job_id: str, connection: Any, *, queue: str = DEFAULT_QUEUE_NAME) -> bool:
        return _queue_of(connection, queue).job_exists(job_id)

    @property
    def origin(self) -> str:
        """The queue's name."""
        return self._queue.keys.queue_name

    def refresh(self) -> bool:
        """Read the job again (one round trip); False when the queue knows nothing of it."""
        (payload, state, _), result, failed = self._queue.job_snapshot(self.id)
        self._state = state
        if payload is not None:
            self._payload = payload
            self._data = None
        self._record = None
        for record in (result, failed):  # a kept result first; a failure whose result was not kept is in the registry
            if record is not None:
                self._record = deserialize_result(record, self._deserializer)
                break
        self._cached_result = None if self._record is None else Result.of(self.id, self._record)
        self._fetched = True
        return payload is not None or self._record is not None

    # --- status ----------------------------------------------------------------------------------------------

    def get_status(self, refresh: bool = True) -> JobStatus | None:
        """rq's status name; None when the job is unknown (never enqueued, or expired)."""
        if refresh or not self._fetched:
            self.refresh()
        if self._record is not None:
            if self._record.success:
                return JobStatus.FINISHED
            return JobStatus.CANCELED if isinstance(self._record.result, JobAborted) else JobStatus.FAILED
        return _STATUS_OF_STATE.get(self._state or "")

    @property
    def is_finished(self) -> bool:
        return self.get_status() == JobStatus.FINISHED

    @property
    def is_failed(self) -> bool:
        return self.get_status() == JobStatus.FAILED

    @property
    def is_queued(self) -> bool:
        return self.get_status() == JobStatus.QUEUED

    @property
    def is_started(self) -> bool:
        return self.get_status() == JobStatus.STARTED

    @property
    def is_deferred(self) -> bool:
        return self.get_status() == JobStatus.DEFERRED

    @property
    def is_scheduled(self) -> bool:
        return self.get_status() == JobStatus.SCHEDULED

    @property
    def is_canceled(self) -> bool:
        return self.get_status() == JobStatus.CANCELED

    # --- what was enqueued -----------------------------------------------------------------------------------

    def _definition(self) -> dict[str, Any]:
        if self._data is None:
            if self._payload is None and not self._fetched:
                self.refresh()
            if self._payload is not None:
                self._data = deserialize_job(self._payload, self._deserializer)
            elif self._record is not None:  # finished: its record holds the call
                record = self._record
                self._data = {"f": record.function, "a": list(record.args), "k": record.kwargs}
                self._data["et"] = int(record.enqueue_time.timestamp() * 1000)
                if (description := description_of(record)) is not None:
                    self._data["ds"] = description
            else:
                self._data = {}
        return self._data

    @property
    def func_name(self) -> str | None:
        name = self._definition().get("f")
        return name if isinstance(name, str) else None

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self._definition().get("a", ()))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self._definition().get("k", {}))

    @property
    def description(self) -> str | None:
        """The job's description, or (as rq) its call: ``count_words_at_url('http://nvie.com')``."""
        given = self._definition().get("ds")
        if isinstance(given, str):
            return given
        return None if self.func_name is None else call_string(self.func_name, self.args, self.kwargs)

    @property
    def enqueued_at(self) -> datetime | None:
        enqueue_ms = self._definition().get("et")
        return ms_to_datetime(enqueue_ms) if isinstance(enqueue_ms, int) else None

    @property
    def timeout(self) -> float | None:
        """Its own ``job_timeout`` in seconds (-1: none); None: the worker's (or the function's)."""
        return _seconds(self._definition().get("jt"))

    @property
    def result_ttl(self) -> float | None:
        """Its own ``result_ttl`` in seconds (-1: forever); None: the worker's ``keep_result``."""
        return _seconds(self._definition().get("kr"))

    @property
    def failure_ttl(self) -> float | None:
        """Its own ``failure_ttl`` in seconds; None: the worker's."""
        return _seconds(self._definition().get("fk"))

    # --- its outcome ------------------------------------------------------------------------------------------

    @property
    def started_at(self) -> datetime | None:
        """When its last run started (known once it finished)."""
        return None if self._record is None else self._record.start_time

    @property
    def ended_at(self) -> datetime | None:
        return None if self._record is None else self._record.finish_time

    def latest_result(self, timeout: float = 0) -> Result | None:
        """The result of its run; with ``timeout``, wait up to that many seconds for it (on the worker's
        completion notification, in reads shorter than the connection's socket timeout). None: none yet."""
        if self._cached_result is not None:
            return self._cached_result
        deadline = time.monotonic() + timeout
        longest = min(RESULT_WAIT_S, blocking.block_limit_s(self._queue.client))
        while True:
            wait_s = max(min(deadline - time.monotonic(), longest), 0.0)
            ttl_ms = blocking.block_ms(wait_s) + WAITER_MARGIN_MS if wait_s > 0 else 0
            payload, state, since = self._queue.result_or_register_waiter(self.id, ttl_ms)
            if payload is None and state is None:  # no job, no result: a failure whose result was not kept?
                payload = self._queue.failed_record(self.id)
                if payload is None:
                    return None
            if payload is None and wait_s > 0:
                payload = self._queue.notified_result(self.id, since, blocking.block_ms(wait_s))
            if payload is not None:
                self._record = deserialize_result(payload, self._deserializer)
                self._cached_result = Result.of(self.id, self._record)
                return self._cached_result
            if wait_s <= 0:
                return None

    def return_value(self, refresh: bool = False) -> Any:
        """A success's return value; None while it runs, after a failure, or when its result expired."""
        if refresh:
            self._cached_result = None
        result = self.latest_result()
        return result.return_value if result is not None and result.type == Result.Type.SUCCESSFUL else None

    @property
    def result(self) -> Any:
        """rq's ``job.result``: the return value once the job succeeded, None until then."""
        return self.return_value()

    @property
    def exc_info(self) -> str | None:
        """A failure's traceback (or type and message); None otherwise."""
        result = self.latest_result()
        return result.exc_string if result is not None and result.type != Result.Type.SUCCESSFUL else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and other.origin == self.origin

    def __hash__(self) -> int:
        return hash((self.id, self.origin))

    def __repr__(self) -> str:
        return f"Job({self.id!r}, queue={self.origin!r})"


def call_string(function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A call as rq's default description shows it, each argument's repr cut at 75 characters."""
    parts = [truncate(repr(arg), 75) for arg in args]
    parts += sorted(f"{key}={truncate(repr(value), 75)}" for key, value in kwargs.items())
    return f"{function}({', '.join(parts)})"


def _seconds(ms: Any) -> float | None:
    if not isinstance(ms, int):
        return None
    return -1.0 if ms < 0 else ms / 1000


def _queue_of(connection: Any, queue_name: str) -> SyncQueue:
    client, _ = client_for(connection)
    return SyncQueue(client, queue_name)
