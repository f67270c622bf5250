"""A job made ready to send: validated, its options set, its payload encoded (``prepare_job`` -> ``JobSpec``).

Pure (no I/O), so the asyncio client (``PoolRedis.prepare``/``enqueue_job``) and the synchronous one
(``pool.rq.Queue``) build a job the same way and send the same ENQUEUE records.

Per-job options travel in the payload (pool/storage/codecs.py), where the worker reads them when it runs the job:
``os``/``of`` callbacks, ``da`` (run even if a dependency failed), and the ones that override the worker's
settings for this job: ``jt`` (timeout, ms; -1 none), ``kr`` (keep the result, ms; -1 forever), ``fk`` (keep a
failure in the failed registry, ms; 0 not at all) and ``ds`` (a description, shown by ``Job.info()``); and ``tc``,
the enqueuing trace context when a tracer is installed (pool/tracing.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from .. import tracing
from ..storage.codecs import check_job_size, serialize_job
from ..storage.keys import DEFAULT_QUEUE_NAME, PRIORITIES, TOP_PRIORITY, QueueKeys
from ..storage.queue import RedisQueue, job_record, new_job_id
from ..storage.serializers import Serializer
from ..utils import datetime_to_ms, now_ms, to_ms
from .jobs import Job

DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # a job or result larger than this is refused (None: no limit)
EXPIRES_EXTRA_MS = 86_400_000  # a job not started within a day (beyond its deferral) expires, as in arq

# Jobs per ENQUEUE call of enqueue_many: small enough that Redis starts on the first batch while the client
# packs the next, large enough that each call's fixed cost is spread thin.
BULK_BATCH = 200
# ... and at most this many bytes per call: a call carries its jobs in ONE argument, which Redis refuses past
# proto-max-bulk-len (512 MB by default, 1 MB at the least). Half the least limit leaves room for the records'
# other fields; a call this large costs far more to send than its fixed cost, so nothing is lost by cutting here.
# A job larger than this goes alone (a job is at most max_payload_bytes).
BULK_BATCH_BYTES = 512 * 1024

# A record's fixed-size fields packed (5 numbers as text, the nonce, the cron fence key's prefix, ~60 bytes) and
# msgpack's headers (at most 5 bytes a field), rounded up.
RECORD_OVERHEAD = 256

DependsOn = Job | str | Sequence[Job | str] | None
Duration = float | timedelta


@dataclass(slots=True)
class EnqueueDefaults:
    """What a client fills in for a job that does not say otherwise. (Made for every ``prepare``: a plain class,
    since a frozen dataclass's ``__init__`` costs twice as much.)"""

    queue_name: str = DEFAULT_QUEUE_NAME
    serializer: Serializer | None = None
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
    expires_extra_ms: int = EXPIRES_EXTRA_MS


@dataclass(slots=True)
class JobSpec:
    """A job encoded and ready to send (``prepare_job``), for ``enqueue_many``."""

    job_id: str
    queue_name: str
    payload: bytes
    score_ms: int
    now_ms: int
    expires_ms: int
    attempts_before: int
    depends_on: tuple[str, ...] = ()
    function: str = ""
    priority: int = 0
    relative: bool = False  # score_ms is now_ms + a delay (_defer_by), not an instant (_defer_until)
    partition: int = 0  # of the queue, from the job id (pool/storage/partitions.py)

    def packed_size(self) -> int:
        """An upper bound of this job's record in ENQUEUE's argument: its variable parts, plus the fixed-size
        fields (numbers as text, the nonce) and msgpack's headers, bounded by RECORD_OVERHEAD."""
        texts = (self.job_id, self.function, *self.depends_on)
        return len(self.payload) + sum(len(text.encode()) + 5 for text in texts) + RECORD_OVERHEAD

    def record(self, queue: RedisQueue) -> tuple[Any, ...]:
        return self.record_for(queue.keys)

    def record_for(self, keys: QueueKeys) -> tuple[Any, ...]:
        """The ENQUEUE record of this job for a queue's ``QueueKeys`` (the sync client has no ``RedisQueue``)."""
        return job_record(
            keys,
            self.job_id,
            self.payload,
            score_ms=self.score_ms,
            now_ms=self.now_ms,
            expires_ms=self.expires_ms,
            attempts_before=self.attempts_before,
            depends_on=self.depends_on,
            function=self.function,
            priority=self.priority,
            relative=self.relative,
        )


def prepare_job(
    function: str | Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    defaults: EnqueueDefaults,
    *,
    job_id: str | None = None,
    queue_name: str | None = None,
    defer_until: datetime | None = None,
    defer_by: Duration | None = None,
    expires: Duration | None = None,
    job_try: int | None = None,
    depends_on: DependsOn = None,
    allow_dependency_failure: bool = False,
    on_success: str | Any | None = None,
    on_failure: str | Any | None = None,
    priority: int = 0,
    at_front: bool = False,
    job_timeout: Duration | None = None,
    keep_result: Duration | None = None,
    failure_ttl: Duration | None = None,
    description: str | None = None,
) -> JobSpec:
    """Validate and encode a job without sending it (the keywords are ``enqueue_job``'s without their ``_``).
    Errors (bad arguments, values the serializer can't encode, a job over the size limit) are raised here, in the
    caller, before anything is sent."""
    name = function_name(function)
    job_id = job_id or new_job_id()
    if defer_until is not None and defer_by is not None:
        raise ValueError("use either _defer_until or _defer_by, not both")
    if priority not in PRIORITIES or isinstance(priority, bool):
        raise ValueError(f"_priority must be one of {', '.join(map(str, PRIORITIES))}, got {priority!r}")
    enqueue_ms = now_ms()
    if defer_until is not None:
        score = datetime_to_ms(defer_until)
    elif defer_by is not None:  # negative: due in the past, so it runs at once (as in arq)
        score = enqueue_ms + (to_ms(defer_by) or 0)
    else:
        score = enqueue_ms
    expires_ms = to_ms(expires)
    if expires_ms is not None and expires_ms < 0:
        raise ValueError(f"_expires must not be negative, got {expires!r}")
    if expires_ms is None:
        expires_ms = max(score - enqueue_ms, 0) + defaults.expires_extra_ms
    if (
        on_success is None
        and on_failure is None
        and not allow_dependency_failure
        and job_timeout is None
        and keep_result is None
        and failure_ttl is None
        and description is None
    ):
        options: dict[str, Any] = {}  # the common case, without a call of seven keywords
    else:
        options = job_options(
            on_success=on_success,
            on_failure=on_failure,
            allow_dependency_failure=allow_dependency_failure,
            job_timeout=job_timeout,
            keep_result=keep_result,
            failure_ttl=failure_ttl,
            description=description,
        )
    if tracing.tracer is not None:  # the enqueuing trace context, for the worker's span (pool/tracing.py)
        carrier = tracing.tracer.carrier()
        if carrier:
            options[tracing.CARRIER_FIELD] = carrier
    payload = serialize_job(name, tuple(args), kwargs, enqueue_ms, defaults.serializer, options)
    check_job_size(payload, defaults.max_payload_bytes, name)
    return JobSpec(
        job_id=job_id,
        queue_name=queue_name or defaults.queue_name,
        payload=payload,
        score_ms=score,
        now_ms=enqueue_ms,
        relative=defer_by is not None,
        expires_ms=expires_ms,
        attempts_before=max((job_try or 1) - 1, 0),
        depends_on=dependency_ids(depends_on),
        function=name,
        priority=TOP_PRIORITY if at_front else priority,
    )


def job_options(
    *,
    on_success: str | Any | None = None,
    on_failure: str | Any | None = None,
    allow_dependency_failure: bool = False,
    job_timeout: Duration | None = None,
    keep_result: Duration | None = None,
    failure_ttl: Duration | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The payload's options (see the module's docstring); only the ones set, so a plain job pays nothing."""
    options: dict[str, Any] = {}
    if on_success is not None:
        options["os"] = function_name(on_success)
    if on_failure is not None:
        options["of"] = function_name(on_failure)
    if allow_dependency_failure:
        options["da"] = True
    if job_timeout is not None:
        timeout_ms = to_ms(job_timeout) or 0
        if timeout_ms == 0:
            raise ValueError(f"_job_timeout must be positive (or negative for no timeout), got {job_timeout!r}")
        options["jt"] = max(timeout_ms, -1)
    if keep_result is not None:
        options["kr"] = max(to_ms(keep_result) or 0, -1)
    if failure_ttl is not None:
        failure_ms = to_ms(failure_ttl) or 0
        if failure_ms < 0:
            raise ValueError(f"_failure_ttl must not be negative, got {failure_ttl!r}")
        options["fk"] = failure_ms
    if description is not None:
        if not isinstance(description, str):
            raise TypeError(f"_description must be a str, got {type(description).__name__}")
        options["ds"] = description
    return options


def batches_by_queue(specs: list[JobSpec], size: int, max_bytes: int) -> Iterator[tuple[str, list[JobSpec]]]:
    """Consecutive runs of one queue, at most ``size`` jobs and (but for a single larger job) ``max_bytes`` of
    records long: one script call each, keeping order."""
    batch: list[JobSpec] = []
    batch_bytes = 0
    for spec in specs:
        spec_bytes = spec.packed_size()
        if batch and (
            spec.queue_name != batch[0].queue_name or len(batch) == size or batch_bytes + spec_bytes > max_bytes
        ):
            yield batch[0].queue_name, batch
            batch, batch_bytes = [], 0
        batch.append(spec)
        batch_bytes += spec_bytes
    if batch:
        yield batch[0].queue_name, batch


def dependency_ids(depends_on: DependsOn) -> tuple[str, ...]:
    if depends_on is None:
        return ()
    items = [depends_on] if isinstance(depends_on, (Job, str)) else list(depends_on)
    return tuple(item.job_id if isinstance(item, Job) else str(item) for item in items)


def function_name(function: Any) -> str:
    """The name a job records for ``function``: a string as given, a ``func()``'s name, else the function's
    ``__name__`` (the name a worker registers it under)."""
    if isinstance(function, str):
        return function
    name = getattr(function, "name", None)  # a pool Function (from func())
    if isinstance(name, str):
        return name
    qualname = getattr(function, "__qualname__", None)
    if isinstance(qualname, str):
        return cast(str, getattr(function, "__name__", qualname))
    raise TypeError(f"cannot enqueue {function!r}: pass a function name or a function")
