"""rq's ``Queue`` for synchronous code: enqueue from Django, Flask or a script, no event loop needed.

Built on the storage layer's synchronous facade (pool/storage/sync.py) with the async client's job building
(pool/client/specs.py): the same ENQUEUE script, records and keys, so a job enqueued here is run by ``pool worker``
/ ``pool start`` like any other, and pool's asyncio client sees it as its own. One ``Queue`` may be shared by
threads: each call borrows a connection from the redis-py client's pool.

rq's per-job options map onto pool's: ``job_timeout`` (``-1``: none), ``result_ttl`` (``-1`` forever, ``0`` not
kept), ``failure_ttl``, ``ttl`` (how long a job may wait to start), ``description``, ``depends_on`` (jobs, ids or
a ``Dependency``), ``job_id``, ``at_front``, ``on_success``/``on_failure``. What differs from rq: docs/rq.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from ..client.specs import (
    BULK_BATCH,
    BULK_BATCH_BYTES,
    DEFAULT_MAX_PAYLOAD_BYTES,
    EXPIRES_EXTRA_MS,
    EnqueueDefaults,
    JobSpec,
    batches_by_queue,
    prepare_job,
)
from ..storage import ops
from ..storage.keys import DEFAULT_QUEUE_NAME, validate_queue_name
from ..storage.queue import PartitionMismatch
from ..storage.serializers import Deserializer, Serializer
from ..storage.sync import SyncQueue
from ..utils import datetime_to_ms, now_ms
from .connection import client_for, codecs
from .exceptions import DuplicateJobError
from .inline import run_inline
from .job import Job
from .options import (
    Callback,
    EnqueueData,
    FunctionReference,
    Timeout,
    as_dependency,
    callback_function,
    check_unsupported,
    checked_args,
    checked_kwargs,
    parse_timeout,
    split_arguments,
)


class Queue:
    """A queue seen from synchronous code, with rq's API.

    ``connection``: a ``redis.Redis`` (rq's; left open), a pool ``RedisSettings`` or a ``redis://`` URL (a client
    of the queue's own: ``close()`` it, or use the queue as a context manager). ``default_timeout``: the
    ``job_timeout`` of jobs that give none (else the worker's ``job_timeout``). ``is_async=False`` runs each job
    here, before ``enqueue`` returns (pool/rq/inline.py). ``serializer``: rq's (an object with ``dumps`` and
    ``loads``), or pool's ``job_serializer``/``job_deserializer``; msgpack by default. The workers must use the
    same."""

    def __init__(
        self,
        name: str = DEFAULT_QUEUE_NAME,
        connection: Any = None,
        default_timeout: Timeout | None = None,
        is_async: bool = True,
        serializer: Any = None,
        *,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        expires_extra_ms: int = EXPIRES_EXTRA_MS,
        job_class: Any = None,
        death_penalty_class: Any = None,  # rq's way to time jobs out; pool's workers do it themselves
    ) -> None:
        if job_class is not None:
            raise TypeError("job_class= is not supported by pool: its jobs are pool.rq.Job")
        self.name = validate_queue_name(name)
        self._default_timeout = parse_timeout(default_timeout, "default_timeout")
        if self._default_timeout == 0:
            raise ValueError("0 timeout is not allowed. Use -1 for infinite timeout")
        self._serializer, self._deserializer = codecs(serializer, job_serializer, job_deserializer)
        self.connection, self._owns_connection = client_for(connection)
        self._store = SyncQueue(self.connection, self.name)
        self._checked_partitions = False  # see _send: partitioned queues are the async client's for now
        self._is_async = is_async
        self._defaults = EnqueueDefaults(
            queue_name=self.name,
            serializer=self._serializer,
            max_payload_bytes=max_payload_bytes,
            expires_extra_ms=expires_extra_ms,
        )

    @property
    def is_async(self) -> bool:
        return self._is_async

    def close(self) -> None:
        """Close the client the queue made (from settings or a URL); a client it was given is left open."""
        if self._owns_connection:
            self._store.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    # --- enqueueing --------------------------------------------------------------------------------------------

    def enqueue(self, f: FunctionReference, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``f(*args, **kwargs)``; rq's options (``job_timeout``, ``ttl``, ...) are taken out of
        ``kwargs`` (see ``enqueue_call``). ``f``: the function (recorded by the name the worker registers it
        under), its registered name, or rq's dotted path. ``DuplicateJobError`` when ``job_id`` is taken."""
        args, kwargs, options = split_arguments(args, kwargs)
        return self.enqueue_call(f, args, kwargs, **_call_options(options))

    def enqueue_call(
        self,
        func: FunctionReference,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: Timeout | None = None,
        result_ttl: Timeout | None = None,
        ttl: Timeout | None = None,
        failure_ttl: Timeout | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        at_front: bool = False,
        on_success: Callback | FunctionReference | None = None,
        on_failure: Callback | FunctionReference | None = None,
        unique: bool = False,
        **unsupported: Any,
    ) -> Job:
        """``enqueue`` with the function's arguments given apart from rq's options. ``unique`` is accepted for
        rq's sake: pool's job ids are always unique (a taken id raises ``DuplicateJobError``)."""
        check_unsupported(unsupported)
        spec = self._prepare(
            func,
            args,
            kwargs,
            timeout=timeout,
            result_ttl=result_ttl,
            ttl=ttl,
            failure_ttl=failure_ttl,
            description=description,
            depends_on=depends_on,
            job_id=job_id,
            at_front=at_front,
            on_success=on_success,
            on_failure=on_failure,
        )
        return self._enqueue(spec, func, on_success, on_failure)

    def enqueue_in(self, time_delta: timedelta, func: FunctionReference, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``func`` to run after ``time_delta`` (counted on Redis's clock)."""
        args, kwargs, options = split_arguments(args, kwargs)
        return self._enqueue_later(func, args, kwargs, options, defer_by=time_delta)

    def enqueue_at(self, datetime: datetime, f: FunctionReference, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``f`` to run at ``datetime`` (a naive one is local time, as rq takes it)."""
        args, kwargs, options = split_arguments(args, kwargs)
        return self._enqueue_later(f, args, kwargs, options, defer_until=datetime)

    @staticmethod
    def prepare_data(
        func: FunctionReference,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: Timeout | None = None,
        result_ttl: Timeout | None = None,
        ttl: Timeout | None = None,
        failure_ttl: Timeout | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        at_front: bool = False,
        on_success: Callback | FunctionReference | None = None,
        on_failure: Callback | FunctionReference | None = None,
        **unsupported: Any,
    ) -> EnqueueData:
        """One job for ``enqueue_many``. Its arguments are ``args``/``kwargs`` (the second positional argument
        is ``args``: ``prepare_data(f, ('http://nvie.com',))``)."""
        check_unsupported(unsupported)
        return EnqueueData(
            func,
            checked_args(args),
            checked_kwargs(kwargs),
            timeout,
            result_ttl,
            ttl,
            failure_ttl,
            description,
            depends_on,
            job_id,
            at_front,
            on_success,
            on_failure,
        )

    def enqueue_many(self, job_datas: Iterable[EnqueueData], pipeline: Any = None) -> list[Job]:
        """Enqueue ``prepare_data`` jobs in one round trip (an ENQUEUE call per 200 jobs, all sent at once), in
        order. Every job is checked and encoded before anything is sent. When ids are taken, the other jobs are
        enqueued and ``DuplicateJobError`` says which were not (its ``jobs`` has None in their places)."""
        check_unsupported({"pipeline": pipeline})
        datas = list(job_datas)
        specs = [
            self._prepare(
                data.func,
                data.args,
                data.kwargs,
                timeout=data.timeout,
                result_ttl=data.result_ttl,
                ttl=data.ttl,
                failure_ttl=data.failure_ttl,
                description=data.description,
                depends_on=data.depends_on,
                job_id=data.job_id,
                at_front=data.at_front,
                on_success=data.on_success,
                on_failure=data.on_failure,
            )
            for data in datas
        ]
        seen: set[str] = set()
        for spec in specs:
            if spec.job_id in seen:
                raise ValueError(f"job id {spec.job_id!r} appears more than once in enqueue_many()")
            seen.add(spec.job_id)
        if not self._is_async:
            return [
                self._enqueue(spec, data.func, data.on_success, data.on_failure)
                for spec, data in zip(specs, datas, strict=True)
            ]
        enqueued = self._send(specs)
        jobs = [self._job(spec) if ok else None for spec, ok in zip(specs, enqueued, strict=True)]
        refused = [spec.job_id for spec, ok in zip(specs, enqueued, strict=True) if not ok]
        if refused:
            raise DuplicateJobError(
                f"{len(refused)} job ids are taken, those jobs were not enqueued (the others were): "
                f"{', '.join(map(repr, refused[:5]))}{' ...' if len(refused) > 5 else ''}",
                job_ids=refused,
                jobs=jobs,
            )
        return [job for job in jobs if job is not None]

    def _enqueue_later(
        self,
        func: FunctionReference,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        *,
        defer_by: timedelta | None = None,
        defer_until: datetime | None = None,
    ) -> Job:
        call = _call_options(options)
        del call["unique"]  # pool's ids are always unique: see enqueue_call
        spec = self._prepare(func, args, kwargs, defer_by=defer_by, defer_until=defer_until, **call)
        return self._enqueue(spec, func, call["on_success"], call["on_failure"])

    def _prepare(
        self,
        func: FunctionReference,
        args: tuple[Any, ...] | list[Any] | None,
        kwargs: dict[str, Any] | None,
        *,
        timeout: Timeout | None,
        result_ttl: Timeout | None,
        ttl: Timeout | None,
        failure_ttl: Timeout | None,
        description: str | None,
        depends_on: Any,
        job_id: str | None,
        at_front: bool,
        on_success: Callback | FunctionReference | None,
        on_failure: Callback | FunctionReference | None,
        defer_by: timedelta | None = None,
        defer_until: datetime | None = None,
    ) -> JobSpec:
        """rq's options checked as rq checks them, then the job built as the async client builds it."""
        job_timeout = parse_timeout(timeout, "job_timeout")
        if job_timeout is None:
            job_timeout = self._default_timeout
        elif job_timeout == 0:
            raise ValueError("0 timeout is not allowed. Use -1 for infinite timeout")
        ttl_s = parse_timeout(ttl, "ttl")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("Job ttl must be greater than 0")
        keep_s = parse_timeout(result_ttl, "result_ttl")
        failure_s = parse_timeout(failure_ttl, "failure_ttl")
        if failure_s is not None and failure_s < 0:
            raise ValueError(f"failure_ttl must not be negative, got {failure_ttl!r}")
        expires_s = None
        if ttl_s is not None:  # rq's ttl bounds the time queued: it starts when the job is due
            expires_s = ttl_s + _delay_s(defer_by, defer_until)
        dependency = as_dependency(depends_on)
        return prepare_job(
            func,
            checked_args(args),
            checked_kwargs(kwargs),
            self._defaults,
            job_id=job_id,
            defer_by=defer_by,
            defer_until=defer_until,
            expires=expires_s,
            depends_on=dependency.job_ids if dependency is not None else None,
            allow_dependency_failure=dependency is not None and dependency.allow_failure,
            on_success=callback_function(on_success),
            on_failure=callback_function(on_failure),
            at_front=at_front or (dependency is not None and dependency.enqueue_at_front),
            job_timeout=job_timeout,
            keep_result=keep_s,
            failure_ttl=failure_s,
            description=description,
        )

    def _enqueue(self, spec: JobSpec, func: Any, on_success: Any, on_failure: Any) -> Job:
        if not self._is_async:
            callbacks = (callback_function(on_success), callback_function(on_failure))
            run_inline(self._store, spec, func, callbacks, self._serializer, self._deserializer)
        elif not self._send([spec])[0]:
            raise DuplicateJobError(
                f"job id {spec.job_id!r} is taken: pool never replaces a job", job_ids=[spec.job_id]
            )
        return self._job(spec)

    def _send(self, specs: list[JobSpec]) -> list[bool]:
        if not self._checked_partitions:  # once: this Queue writes to an unpartitioned queue's keys only
            recorded = self._store.run(ops.agree_partitions(self._store.keys, 1))
            if recorded != 1:
                raise PartitionMismatch(self.name, recorded, 1)
            self._checked_partitions = True
        batches = [
            [spec.record_for(self._store.keys) for spec in batch]
            for _, batch in batches_by_queue(specs, BULK_BATCH, BULK_BATCH_BYTES)
        ]
        return [bool(enqueued) for enqueued in self._store.enqueue(batches)]

    def _job(self, spec: JobSpec) -> Job:
        return Job(spec.job_id, self._store, self._deserializer, payload=spec.payload)

    # --- what is in the queue ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:  # a queue is a queue, empty or not (``__len__`` would make an empty one falsy)
        return True

    @property
    def count(self) -> int:
        """Jobs ready to run and not taken by a worker yet (as rq counts: neither scheduled nor deferred ones,
        nor running ones)."""
        return self._store.counts()["ready"]

    def is_empty(self) -> bool:
        return self.count == 0

    def get_job_ids(self, offset: int = 0, length: int = -1) -> list[str]:
        """Ids of the ready jobs in the order they will be taken (``at_front`` ones first)."""
        ids = self._store.ready_job_ids()[offset:]
        return ids if length < 0 else ids[:length]

    @property
    def job_ids(self) -> list[str]:
        return self.get_job_ids()

    def get_jobs(self, offset: int = 0, length: int = -1) -> list[Job]:
        jobs = (self.fetch_job(job_id) for job_id in self.get_job_ids(offset, length))
        return [job for job in jobs if job is not None]

    @property
    def jobs(self) -> list[Job]:
        return self.get_jobs()

    def get_job_position(self, job_or_id: Job | str) -> int | None:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        ids = self.get_job_ids()
        return ids.index(job_id) if job_id in ids else None

    def fetch_job(self, job_id: str) -> Job | None:
        """The job ``job_id`` of this queue (queued, scheduled, running, or with its result or failure kept);
        None when the queue knows nothing of it."""
        job = Job(job_id, self._store, self._deserializer)
        return job if job.refresh() else None

    def empty(self) -> int:
        """Remove every job that has not started (ready, scheduled, and waiting for dependencies); returns how
        many. Running jobs finish."""
        return self._store.empty()

    def delete(self, delete_jobs: bool = True) -> None:
        """Delete the queue: every key of it, its jobs, results and failed registry with it. pool keeps a queue's
        jobs in the queue's own keys, so it cannot delete the queue and keep them (``delete_jobs=False``)."""
        if not delete_jobs:
            raise ValueError("pool cannot delete a queue and keep its jobs (they live in its keys): use empty()")
        self._store.delete_all()


def _call_options(options: dict[str, Any]) -> dict[str, Any]:
    """rq's options from ``enqueue``'s keywords, as ``enqueue_call`` names them (``job_timeout`` -> ``timeout``)."""
    return {
        "timeout": options.get("job_timeout"),
        "result_ttl": options.get("result_ttl"),
        "ttl": options.get("ttl"),
        "failure_ttl": options.get("failure_ttl"),
        "description": options.get("description"),
        "depends_on": options.get("depends_on"),
        "job_id": options.get("job_id"),
        "at_front": bool(options.get("at_front", False)),
        "on_success": options.get("on_success"),
        "on_failure": options.get("on_failure"),
        "unique": bool(options.get("unique", False)),
    }


def _delay_s(defer_by: timedelta | None, defer_until: datetime | None) -> float:
    if defer_by is not None:
        return max(defer_by.total_seconds(), 0.0)
    if defer_until is not None:
        return max(datetime_to_ms(defer_until) - now_ms(), 0) / 1000
    return 0.0
