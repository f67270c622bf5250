"""Jobs as the client sees them: ``Job`` (a handle on one job id), its status, definition and result.

What a job and its result are as stored, and their codecs, are the storage layer's: pool/storage/codecs.py."""

from __future__ import annotations

import asyncio
import time
import warnings
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic

from ..storage.codecs import (
    JobDef,
    JobResult,
    deserialize_job,
    deserialize_result,
    job_try_before_end,
    progress_of,
    serialize_result,
    with_progress,
)
from ..storage.keys import DEFAULT_QUEUE_NAME
from ..storage.progress import JobProgress, decode_progress
from ..storage.queue import job_queue
from ..storage.serializers import (
    DeserializationError,
    Deserializer,
    SerializationError,
    Serializer,
)
from ..utils import ms_to_datetime, now_ms

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from typing_extensions import TypeVar

    # What a job's function returns. Its default (PEP 696, read by type checkers only) keeps a bare ``Job`` as
    # ``Job[Any]``, so code written for arq that annotates ``-> Job`` passes mypy --strict unchanged.
    R = TypeVar("R", default=Any)
else:
    from typing import TypeVar

    R = TypeVar("R")

__all__ = [
    "DeserializationError",
    "Job",
    "JobAborted",
    "JobDef",
    "JobProgress",
    "JobResult",
    "JobStatus",
    "ResultNotFound",
    "SerializationError",
]


class JobStatus(StrEnum):
    deferred = "deferred"
    queued = "queued"
    in_progress = "in_progress"
    complete = "complete"
    not_found = "not_found"


_STATUS_OF_STATE = {"d": JobStatus.deferred, "w": JobStatus.deferred, "r": JobStatus.in_progress}


def status_of_state(state: str) -> JobStatus:
    """The status of an unfinished job from its hash's state. Waiting for dependencies ('w') reports
    deferred: arq's statuses, unchanged."""
    return _STATUS_OF_STATE.get(state, JobStatus.queued)


class ResultNotFound(RuntimeError):
    pass


class JobAborted(RuntimeError):
    """The result of a job that was aborted (``Job.abort``); ``Job.result()`` raises it."""


class Job(Generic[R]):
    """A handle on a job id: ask its status, definition and result, or abort it. ``Job[R]``: a job whose
    function returns ``R`` (what a typed task's ``enqueue`` returns, see pool/client/tasks.py)."""

    def __init__(
        self,
        job_id: str,
        redis: Redis,
        _queue_name: str = DEFAULT_QUEUE_NAME,
        _deserializer: Deserializer | None = None,
    ) -> None:
        self.job_id = job_id
        self._redis = redis
        self._queue_name = _queue_name
        self._deserializer = _deserializer
        self._queue = job_queue(redis, _queue_name, job_id)  # its partition, in a partitioned queue

    async def result(
        self, timeout: float | None = None, *, poll_delay: float = 0.5, pole_delay: float | None = None
    ) -> R:
        """Wait for the job's result and return it, or raise the job's exception.

        Waits on a completion notification written by the worker (no polling); ``poll_delay`` is accepted for
        arq compatibility and unused. Raises ``asyncio.TimeoutError`` after ``timeout`` seconds. Blocks in
        reads of a few seconds at most, each shorter than the connection's socket timeout, which would
        otherwise cut them short (see pool/redis/blocking.py).
        """
        if pole_delay is not None:
            warnings.warn(
                '"pole_delay" is deprecated, use the correct spelling "poll_delay" instead',
                DeprecationWarning,
                stacklevel=2,
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait_s = self._queue.result_wait_s(None if deadline is None else deadline - time.monotonic())
            payload, state, since = await self._queue.result_or_register_waiter(self.job_id, wait_s)
            if payload is None and state is None:
                raise ResultNotFound("Not waiting for job result because the job is not in queue")
            if payload is None:
                if wait_s <= 0:
                    raise TimeoutError()
                payload = await self._queue.wait_for_result(self.job_id, since, wait_s)
            if payload is not None:
                result: R = _result_or_raise(deserialize_result(payload, self._deserializer))
                return result

    async def info(self) -> JobDef | None:
        """The job's result if it has one, else its definition; None when the job is unknown."""
        info: JobDef | None = await self.result_info()
        if info is None:
            payload, attempts, state, score = await self._queue.job_fields(self.job_id)
            if payload is None:
                return None
            data = deserialize_job(payload, self._deserializer)
            info = JobDef(
                function=data["f"],
                args=tuple(data["a"]),
                kwargs=data["k"],
                job_try=job_try_before_end(attempts, state),
                enqueue_time=ms_to_datetime(data["et"]),
                score=score,
                job_id=self.job_id,
                description=data.get("ds"),
            )
            with_progress(info, decode_progress(await self._queue.job_progress(self.job_id), self._deserializer))
        return info

    async def progress(self) -> JobProgress | None:
        """The progress and metadata the job last reported (``ctx['job'].update``): while it runs from its hash,
        once finished from its result (kept as long as the result is). None when it reported none, or is unknown.
        """
        record = await self._queue.job_progress(self.job_id)
        if record is not None:
            return decode_progress(record, self._deserializer)
        finished = await self.result_info()  # (a job finished since the first read has its result by now)
        return None if finished is None else progress_of(finished)

    async def result_info(self) -> JobResult | None:
        payload = await self._queue.result_payload(self.job_id)
        return None if payload is None else deserialize_result(payload, self._deserializer)

    async def status(self) -> JobStatus:
        if await self._queue.has_result(self.job_id):
            return JobStatus.complete
        _, _, state, _ = await self._queue.job_fields(self.job_id)
        if state is None:
            # finished between the two reads?
            return JobStatus.complete if await self._queue.has_result(self.job_id) else JobStatus.not_found
        return status_of_state(state)

    async def abort(self, *, timeout: float | None = None, poll_delay: float = 0.5) -> bool:
        """Abort the job: a job not yet started is aborted at once; a running one is cancelled by its worker
        (which needs ``allow_abort_jobs=True``). True when the job ended aborted within ``timeout``."""
        payload, attempts, _, _ = await self._queue.job_fields(self.job_id)
        function, args, kwargs, enqueue_ms = "?", (), {}, now_ms()
        if payload is not None:
            try:
                data = deserialize_job(payload, self._deserializer)
                function, args, kwargs, enqueue_ms = data["f"], tuple(data["a"]), data["k"], data["et"]
            except DeserializationError:
                pass
        aborted = serialize_result(
            function=function,
            args=args,
            kwargs=kwargs,
            attempts=attempts,
            enqueue_ms=enqueue_ms,
            success=False,
            result=JobAborted("job aborted before it started"),
            start_ms=now_ms(),
            finish_ms=now_ms(),
            queue_name=self._queue_name,
            job_id=self.job_id,
            serializer=_serializer_for(self._redis),
        )
        state = await self._queue.abort(
            self.job_id, now_ms=now_ms(), aborted_result=aborted, result_ttl_ms=24 * 3600 * 1000
        )
        if state == 0:
            return False
        if state == 2:  # not started: aborted by the script itself (its record written, whatever it reads back as)
            return True
        try:
            await self.result(timeout=timeout)
        except JobAborted:
            return True
        except (ResultNotFound, asyncio.CancelledError):
            return True
        except TimeoutError:
            return False
        except Exception:
            return False
        return False

    def __repr__(self) -> str:
        return f"<pool job {self.job_id}>"


def _serializer_for(redis: Redis) -> Serializer | None:
    serializer: Serializer | None = getattr(redis, "job_serializer", None)
    return serializer


def _result_or_raise(info: JobResult) -> Any:
    """A job's return value, or its exception raised (an unencodable one arrives as its message)."""
    if info.success:
        return info.result
    if isinstance(info.result, BaseException):
        raise info.result
    raise SerializationError(info.result)
