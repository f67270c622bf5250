"""Running one job: decode it, find its function, apply hooks and the timeout, and decide what happens next.

``JobRunner.run`` never raises for anything a job does; it returns an ``Outcome`` that the worker commits:
a result to record (success or failure), or a requeue (``Retry``, or a job cancelled by shutdown that must run
again). Bad input (an undecodable payload, an unknown function) becomes a recorded failure, so one broken job
can never take the worker down (invariant 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .. import tracing
from ..client.jobs import JobAborted
from ..logs import fast_writer
from ..storage.codecs import deserialize_job, encode_result, serialize_job, serialize_result
from ..storage.partitions import partition_key, tagged
from ..storage.queue import Delivery, RedisQueue
from ..storage.serializers import DeserializationError, Deserializer, JobExecutionFailed, SerializationError, Serializer
from ..utils import args_to_string, ms_to_datetime, now_ms, truncate
from .deadlines import Deadlines
from .functions import Function, Retry, RetryJob
from .progress import RunningJob

logger = logging.getLogger("pool.worker")

Hook = Callable[[dict[str, Any]], Awaitable[Any]]
FailureHook = Callable[[dict[str, Any], BaseException], Awaitable[Any]]  # on_job_failure(ctx, exc)


class OutcomeKind(StrEnum):
    """How a run ended, which decides what the worker commits and which counter it counts in."""

    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"  # a failure, but kept out of the failed registry
    RETRIED = "retried"  # the job raised Retry: put back to run again after its delay
    HANDED_BACK = "handed_back"  # cancelled by a shutdown: put back at once; its next pickup enforces max_tries


# the kinds bound once: a member lookup on an Enum class costs ~0.17 µs on Python 3.11, paid per job
_ABORTED = OutcomeKind.ABORTED
_COMPLETE = OutcomeKind.COMPLETE
_FAILED = OutcomeKind.FAILED
_HANDED_BACK = OutcomeKind.HANDED_BACK
_RETRIED = OutcomeKind.RETRIED


@dataclass(slots=True)
class Outcome:
    """What to commit for a job: ``result`` to record, or ``requeue_at_ms`` to put it back."""

    kind: OutcomeKind
    result: bytes = b""
    result_ttl_ms: int = 0
    requeue_at_ms: int = 0
    after_hook_ctx: dict[str, Any] | None = field(default=None)
    callback_id: str = ""
    callback_payload: bytes = b""
    callback_function: str = ""
    failure_ttl_ms: int = 0  # a failure's own failure_ttl (the job's ``_failure_ttl``): > 0 kept, -1 not; 0 unset
    retries_ran_out: bool = False  # failed on a Retry that max_tries refused: counted as a retry too (arq's count)
    error: BaseException | None = None  # a failure's exception, for the on_job_failure hook
    function: str = ""  # the job's function, for the on_job_failure hook

    @property
    def is_requeue(self) -> bool:
        return self.kind in (_RETRIED, _HANDED_BACK)


@dataclass
class RunnerSettings:
    queue_name: str
    functions: dict[str, Function]
    ctx: dict[str, Any]
    job_timeout_s: float
    keep_result_s: float
    keep_result_forever: bool
    max_tries: int
    retry_jobs: bool
    log_results: bool
    serializer: Serializer | None
    deserializer: Deserializer | None
    failure_ttl_s: float = 7 * 86400.0
    max_payload_bytes: int | None = None
    on_job_start: Hook | None = None
    on_job_end: Hook | None = None
    partitioned: bool = False  # the queue has partitions: a callback's id is tagged to fall in its job's
    cron_names: frozenset[str] = frozenset()  # cron jobs' functions: their log lines name the function only
    consumer: str = ""  # this worker's consumer name: with an entry id, a run's mark in the job hash
    queues: list[RedisQueue] = field(default_factory=list)  # per partition, set once connected: progress writes


class JobRunner:
    def __init__(self, settings: RunnerSettings) -> None:
        self.s = settings
        self.aborting: set[str] = set()  # job ids whose cancellation is an abort, not a shutdown
        self.timed_out: set[str] = set()  # job ids cancelled by their timeout
        self.threads = JobThreads()  # sync jobs' threads, and those still running after their job ended
        self._deadlines = Deadlines(self._time_out)
        self._by_path: dict[str, Function] | None = None  # registered functions by module.qualname
        self._info = False
        self._write_line: Callable[[str], None] | None = None
        self.refresh_logging()

    def _time_out(self, watched: tuple[str, asyncio.Task[Any]]) -> None:
        job_id, task = watched
        if not task.done():
            self.timed_out.add(job_id)
            task.cancel()

    def refresh_logging(self) -> None:
        """Decide how to log the two INFO lines of every job (see ``_job_line``): again once the worker starts,
        when the CLI has set logging up."""
        self._info = logger.isEnabledFor(logging.INFO)
        self._write_line = fast_writer(logger)

    def _job_line(
        self, job_id: str, function: str, attempts: int, duration: float | None, msg: str, *args: object
    ) -> None:
        """One of the two INFO lines of every job. Callers check ``self._info`` first. Written straight to the
        CLI's handler when nothing else would see the record (``fast_writer``); otherwise a record without
        logging's caller lookup (a walk up the stack per record): these lines name their job, not a line. The
        record carries the job's fields (``job_fields``) for handlers that use them (``--log-format json``)."""
        if self._write_line is not None:
            self._write_line(msg % args)
        else:
            extra = job_fields(job_id, function, attempts, duration)
            logger.handle(
                logger.makeRecord(logger.name, logging.INFO, "pool.execution", 0, msg, args, None, None, extra)
            )

    async def run(self, delivery: Delivery) -> Outcome:
        tracer = tracing.tracer
        if tracer is None:
            return await self._run(delivery)
        return await self._traced_run(tracer, delivery)

    async def _traced_run(self, tracer: tracing.Tracer, delivery: Delivery) -> Outcome:
        """``_run`` inside the job's span (pool/tracing.py), a child of the context the job was enqueued in. The
        payload is decoded first, for that context, unless the job is past max_tries (see ``_tries_exceeded``:
        such a payload is never decoded); ``_run`` takes the decoded payload."""
        data: dict[str, Any] | None = None
        if not self._past_max_tries(delivery):
            with contextlib.suppress(DeserializationError):  # _run records the failure
                data = deserialize_job(delivery.payload, self.s.deserializer)
        carrier = tracing.carrier_of(data) if data is not None else None
        function = data["f"] if data is not None else delivery.function or "<unknown>"
        with tracer.job_span(carrier, function, delivery.job_id, self.s.queue_name, delivery.attempts) as span:
            outcome = await self._run(delivery, data)
            span.set_outcome(outcome.kind.value, outcome.error)
            return outcome

    async def _run(self, delivery: Delivery, data: dict[str, Any] | None = None) -> Outcome:
        s = self.s
        start_ms = delivery.started_ms = now_ms()
        job_id, attempts = delivery.job_id, delivery.attempts
        exceeded = self._tries_exceeded(delivery, start_ms)
        if exceeded is not None:
            return exceeded
        if data is None:
            try:
                data = deserialize_job(delivery.payload, s.deserializer)
            except DeserializationError as exc:
                logger.error("job %s: %s", job_id, exc)
                return self._failure(delivery, "<unknown>", (), {}, start_ms, start_ms, exc, ttl_s=None)
        name, args, kwargs, enqueue_ms = data["f"], tuple(data["a"]), data["k"], int(data.get("et", start_ms))
        ref = name if name in s.cron_names else f"{job_id}:{name}"
        function = self.function(name)
        if function is None:
            logger.warning("job %s, function %r not found", job_id, name)
            missing = JobExecutionFailed(f"function {name!r} not found")
            return _own_ttls(
                self._failure(delivery, name, args, kwargs, enqueue_ms, start_ms, missing, _job_keep_s(data)), data
            )

        max_tries = function.max_tries or s.max_tries
        ttl_s = _keep_seconds(function, s, data)
        if attempts > max_tries:  # the payload names another function than the hash does (a hand edit)
            logger.warning("%6.2fs ! %s max retries %d exceeded", _since(delivery.score), ref, max_tries)
            too_many = JobExecutionFailed(f"max {max_tries} retries exceeded")
            return _own_ttls(self._failure(delivery, name, args, kwargs, enqueue_ms, start_ms, too_many, ttl_s), data)

        if delivery.failed_dependency and not data.get("da"):
            logger.warning("job %s: dependency %s failed, not running it", job_id, delivery.failed_dependency)
            dependency = JobExecutionFailed(f"dependency {delivery.failed_dependency} failed")
            return _own_ttls(self._failure(delivery, name, args, kwargs, enqueue_ms, start_ms, dependency, ttl_s), data)

        running = RunningJob(
            job_id,
            s.queues[delivery.partition] if s.queues else None,
            f"{s.consumer} {delivery.entry_id}",
            s.serializer,
        )
        ctx = {
            **s.ctx,
            "job_id": job_id,
            "job_try": attempts,
            "enqueue_time": ms_to_datetime(enqueue_ms),
            "score": delivery.score,
            "job": running,
        }
        if self._info:  # arq's line: time since the enqueue, and how late the job starts when over 1.2 s
            extra = f" try={attempts}" if attempts > 1 else ""
            if start_ms - delivery.score > 1200:
                extra += f" delayed={(start_ms - delivery.score) / 1000:0.2f}s"
            self._job_line(
                job_id,
                name,
                attempts,
                None,
                "%6.2fs → %s(%s)%s",
                _since(enqueue_ms),
                ref,
                args_to_string(args, kwargs),
                extra,
            )
        timeout_s = _timeout_seconds(function, s, data)
        success, result, aborted, deadline_slot, retries_ran_out = False, None, False, None, False
        task = asyncio.current_task()
        assert task is not None
        try:
            if s.on_job_start is not None:  # inside the try: an abort or shutdown while it runs is handled below
                await s.on_job_start(ctx)
            # The job's timeout: a shared timer (pool/worker/deadlines.py) rather than asyncio.timeout(), which cost
            # ten times as much per job
            deadline_slot = self._deadlines.add((job_id, task), asyncio.get_running_loop().time() + timeout_s)
            if not function.takes_ctx:  # rq's functions: f(*args, **kwargs)
                call = functools.partial(function.coroutine, *args, **kwargs)
                result = await (call() if function.is_async else self.threads.run(call, ref))
            elif function.is_async:
                result = await function.coroutine(ctx, *args, **kwargs)
            else:
                result = await self.threads.run(functools.partial(function.coroutine, ctx, *args, **kwargs), ref)
            success = True
        except (Retry, RetryJob) as retry:
            defer_s = retry.defer_s if isinstance(retry, Retry) else 0.0
            fields = job_fields(job_id, name, attempts, _since(start_ms))
            if not s.retry_jobs:  # as arq: the Retry is the job's failure
                logger.exception(
                    "%6.2fs ! %s failed, %s: %s", _since(start_ms), ref, type(retry).__name__, retry, extra=fields
                )
                result = retry
            elif attempts < max_tries:
                if isinstance(retry, Retry):
                    logger.info("%6.2fs ↻ %s retrying job in %0.2fs", _since(start_ms), ref, defer_s, extra=fields)
                else:
                    logger.info("%6.2fs ↻ %s cancelled, will be run again", _since(start_ms), ref, extra=fields)
                await self._end_hook(ctx)
                return Outcome(_RETRIED, requeue_at_ms=now_ms() + int(defer_s * 1000))
            else:
                logger.warning("%6.2fs ! %s max retries %d exceeded", _since(start_ms), ref, max_tries, extra=fields)
                result, retries_ran_out = JobExecutionFailed(f"max {max_tries} retries exceeded"), True
        except asyncio.CancelledError as exc:
            fields = job_fields(job_id, name, attempts, _since(start_ms))
            if job_id in self.timed_out:  # an error, as arq logs it: alerting on errors must see timeouts
                logger.error(
                    "%6.2fs ! %s failed, TimeoutError: timed out after %gs",
                    _since(start_ms),
                    ref,
                    timeout_s,
                    extra=fields,
                )
                result = TimeoutError(f"job timed out after {timeout_s:g}s")
            elif job_id in self.aborting:
                logger.info("%6.2fs ⊘ %s aborted", _since(start_ms), ref, extra=fields)
                result, aborted = JobAborted("job aborted while running"), True
            elif not task.cancelling():  # raised by the job itself: the worker did not cancel it
                result = _raised_base_exception(exc, ref, start_ms)
            elif s.retry_jobs:  # pessimistic execution: run it again; the next pickup enforces max_tries
                logger.info("%6.2fs ↻ %s cancelled, will be run again", _since(start_ms), ref, extra=fields)
                return Outcome(_HANDED_BACK, requeue_at_ms=0)
            else:
                result = JobExecutionFailed(f"job cancelled on try {attempts} and retry_jobs is off")
        except SystemExit as exc:  # a job must not stop the worker and the other jobs it runs
            logger.warning("%6.2fs ! %s failed: the job called sys.exit(%r)", _since(start_ms), ref, exc.code)
            result = JobExecutionFailed(f"SystemExit: the job called sys.exit({exc.code!r})")
        except Exception as exc:
            logger.exception(
                "%6.2fs ! %s failed, %s: %s",
                _since(start_ms),
                ref,
                type(exc).__name__,
                _safe_str(exc),
                extra={"extra": _extra(exc), **job_fields(job_id, name, attempts, _since(start_ms))},
            )
            result = exc
        except BaseException as exc:  # GeneratorExit, KeyboardInterrupt, a job's own BaseException subclass
            result = _raised_base_exception(exc, ref, start_ms)
        finally:
            delivery.finishing = True
            self.aborting.discard(job_id)
            if deadline_slot is not None:
                self._deadlines.remove((job_id, task), deadline_slot)
            if job_id in self.timed_out:  # the timeout's cancel is handled: later awaits of this task are normal
                self.timed_out.discard(job_id)
                task.uncancel()
        if success and self._info:
            shown = f" ● {truncate(repr(result))}" if s.log_results and result is not None else " ● "
            elapsed = _since(start_ms)
            self._job_line(job_id, name, attempts, elapsed, "%6.2fs ← %s%s", elapsed, ref, shown)
        await self._end_hook(ctx)
        finish_ms = delivery.finished_ms = now_ms()
        payload, kept = encode_result(
            function=name,
            args=args,
            kwargs=kwargs,
            attempts=attempts,
            enqueue_ms=enqueue_ms,
            success=success,
            result=result,
            start_ms=start_ms,
            finish_ms=finish_ms,
            queue_name=s.queue_name,
            job_id=job_id,
            serializer=s.serializer,
            traceback=None if success else _traceback(result),
            description=data.get("ds"),
            progress=running.result_record(),
        )
        if not kept:  # recorded as a failure to encode it (see encode_result): counted as one too
            success = False
        limit = s.max_payload_bytes
        if limit is not None and len(payload) > limit:
            logger.warning("job %s: result is %d bytes, over the limit of %d", job_id, len(payload), limit)
            success, result = False, SerializationError(f"result is {len(payload)} bytes, over the limit of {limit}")
            payload = serialize_result(
                function=name,
                args=args,
                kwargs=kwargs,
                attempts=attempts,
                enqueue_ms=enqueue_ms,
                success=False,
                result=result,
                start_ms=start_ms,
                finish_ms=finish_ms,
                queue_name=s.queue_name,
                job_id=job_id,
                serializer=s.serializer,
            )
        kind = _COMPLETE if success else _ABORTED if aborted else _FAILED
        outcome = Outcome(kind, payload, _ttl_ms(ttl_s), after_hook_ctx=ctx, retries_ran_out=retries_ran_out)
        if not success:
            outcome.function = name
            outcome.error = (
                result if isinstance(result, BaseException) else SerializationError("unable to serialize result")
            )
        self._add_callback(outcome, data, job_id, success, result)
        return _own_ttls(outcome, data)

    def function(self, name: str) -> Function | None:
        """The registered function a job names: by its registered name, or by its dotted path (rq's
        ``'app.tasks.count_words'``) when a function registered by reference lives there."""
        function = self.s.functions.get(name)
        if function is None and "." in name:
            if self._by_path is None:
                self._by_path = {_dotted_path(f.coroutine): f for f in self.s.functions.values()}
            function = self._by_path.get(name)
        return function

    def _add_callback(self, outcome: Outcome, data: dict[str, Any], job_id: str, success: bool, result: Any) -> None:
        """on_success(ctx, job_id, result) / on_failure(ctx, job_id, "Type: message"), enqueued with the result."""
        name = data.get("os") if success else data.get("of")
        if not name:
            return
        argument = result if success else f"{type(result).__name__}: {result}"
        options = None
        if tracing.tracer is not None:  # called inside the job's span: the callback's run is its child
            carrier = tracing.tracer.carrier()
            options = {tracing.CARRIER_FIELD: carrier} if carrier else None
        try:
            outcome.callback_payload = serialize_job(name, (job_id, argument), {}, now_ms(), self.s.serializer, options)
        except SerializationError as exc:
            logger.warning("job %s: callback %s not enqueued: %s", job_id, name, exc)
            return
        callback_id = f"{job_id}:{'on_success' if success else 'on_failure'}"
        # COMPLETE enqueues the callback in the job's own partition (one script, one slot)
        outcome.callback_id = tagged(callback_id, partition_key(job_id)) if self.s.partitioned else callback_id
        outcome.callback_function = name

    def _past_max_tries(self, delivery: Delivery) -> bool:
        """Started more than max_tries times (``_tries_exceeded`` records that failure)."""
        function = self.function(delivery.function)
        return delivery.attempts > ((function.max_tries if function is not None else None) or self.s.max_tries)

    def _tries_exceeded(self, delivery: Delivery, start_ms: int) -> Outcome | None:
        """The final failure of a job started more than max_tries times, or None. Checked on the attempt count
        and function name START returned, before the payload is decoded: a job whose decoding (or anything else)
        kills its worker must still reach its final failure rather than kill every worker that takes it."""
        function = self.function(delivery.function)
        max_tries = (function.max_tries if function is not None else None) or self.s.max_tries
        if delivery.attempts <= max_tries:
            return None
        name = delivery.function or "<unknown>"
        ref = f"{delivery.job_id}:{name}"
        logger.warning("%6.2fs ! %s max retries %d exceeded", _since(delivery.score), ref, max_tries)
        exceeded = JobExecutionFailed(f"max {max_tries} retries exceeded")
        ttl_s = None if function is None else _keep_seconds(function, self.s)
        enqueue_ms = delivery.score or start_ms  # the payload (with the enqueue time) is not decoded
        return self._failure(delivery, name, (), {}, enqueue_ms, start_ms, exceeded, ttl_s=ttl_s)

    def crashed(self, delivery: Delivery, error: BaseException) -> Outcome:
        """Something around the job (a hook, logging, encoding) raised: record it as the job's failure rather than
        hand the job back, which could redeliver it forever."""
        now = now_ms()
        delivery.started_ms = delivery.started_ms or now  # (0 if it raised before the runner started it)
        failure = JobExecutionFailed(f"{type(error).__name__}: {_safe_str(error)}")
        return self._failure(delivery, "<unknown>", (), {}, now, now, failure, ttl_s=None)

    def expired(self, delivery: Delivery) -> Outcome:
        """A job whose definition expired before it started (``_expires``): recorded as failed, as arq does."""
        logger.warning("job %s expired", delivery.job_id)
        now = now_ms()
        return self._failure(delivery, "<unknown>", (), {}, now, now, JobExecutionFailed("job expired"), ttl_s=None)

    async def _end_hook(self, ctx: dict[str, Any]) -> None:
        if self.s.on_job_end is not None:
            await self.s.on_job_end(ctx)

    def _failure(
        self,
        delivery: Delivery,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        enqueue_ms: int,
        start_ms: int,
        exc: BaseException,
        ttl_s: float | None,
    ) -> Outcome:
        """A job that fails before it runs: record why, keep the result as the worker would."""
        if ttl_s is None:
            ttl_s = -1.0 if self.s.keep_result_forever else self.s.keep_result_s
        payload = serialize_result(
            function=name,
            args=args,
            kwargs=kwargs,
            attempts=delivery.attempts,
            enqueue_ms=enqueue_ms,
            success=False,
            result=exc,
            start_ms=start_ms,
            finish_ms=now_ms(),
            queue_name=self.s.queue_name,
            job_id=delivery.job_id,
            serializer=self.s.serializer,
        )
        return Outcome(_FAILED, payload, _ttl_ms(ttl_s), error=exc, function=name)


class JobThreads:
    """Runs sync job functions, each in a daemon thread of its own, and counts the threads that outlive their job.

    Python cannot kill a thread. A sync job cancelled by its timeout (or an abort, or a shutdown) is recorded at
    once, but its function runs on in its thread. Such a thread keeps holding a slot until it returns: the
    worker counts ``lingering`` threads against ``max_jobs`` when it fetches, so it never has more than
    ``max_jobs`` job threads, and a job that never returns makes its worker take fewer jobs rather than pile up
    threads. (A bounded pool of threads with a queue in front would bound them too, but it would start jobs whose
    timeout then runs out while they wait for a thread.) A warning names each job whose thread outlived it.

    Not an executor: its threads are joined at interpreter exit, so a sync job (which cannot be cancelled) would
    hold a stopping worker for as long as it runs. A daemon thread is simply abandoned at exit; the job was
    handed back and runs again elsewhere (at least once)."""

    def __init__(self) -> None:
        self.lingering = 0  # threads still running after their job ended
        self.on_release: Callable[[], None] = _nothing  # told when a lingering thread returns: a slot is free

    def run(self, call: Callable[[], Any], ref: str) -> asyncio.Future[Any]:
        """Start ``call`` in a new thread; the future settles with its outcome (``ref`` names the job in logs)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        returned = outlived = False
        # the caller's context variables, as asyncio.to_thread passes them: a tracer's current span among them
        context = contextvars.copy_context()

        def job_stopped(_: asyncio.Future[Any]) -> None:
            nonlocal outlived
            if future.cancelled() and not returned:
                outlived = True
                self.lingering += 1
                logger.warning(
                    "job %s ended but its thread is still running (Python cannot kill a thread): it holds a slot "
                    "of this worker until it returns",
                    ref,
                )

        def settle(value: Any, error: BaseException | None) -> None:
            nonlocal returned
            returned = True
            if outlived:
                self.lingering -= 1
                logger.info("job %s: its thread returned at last, its slot is free", ref)
                self.on_release()
            elif not future.done():
                if error is None:
                    future.set_result(value)
                else:
                    future.set_exception(error)

        def target() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = context.run(call)
            except StopIteration as exc:  # a future refuses it (set_exception raises): it would be lost
                error = RuntimeError(f"job raised StopIteration: {_safe_str(exc)}")
                error.__cause__ = exc
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: the worker stopped, the job was handed back
                loop.call_soon_threadsafe(settle, value, error)

        future.add_done_callback(job_stopped)
        threading.Thread(target=target, name="pool-job", daemon=True).start()
        return future


def _nothing() -> None:
    pass


def job_fields(job_id: str, function: str, attempts: int, duration: float | None = None) -> dict[str, Any]:
    """The ``extra`` of a log record about a job: its id, function, try and (once it ran) duration in seconds;
    ``--log-format json`` writes them as fields (pool/logs.py's JsonFormatter)."""
    fields: dict[str, Any] = {"job_id": job_id, "function": function, "try": attempts}
    if duration is not None:
        fields["duration"] = duration
    return fields


def _raised_base_exception(exc: BaseException, ref: str, start_ms: int) -> JobExecutionFailed:
    """A BaseException the job raised that is not an Exception (nor the worker's own cancellation): that job's
    failure, like any exception, so the job reaches a final state and frees its slot. It is recorded as a
    JobExecutionFailed naming it (its traceback kept): rebuilt as itself, ``Job.result()`` would raise a
    KeyboardInterrupt or GeneratorExit into the client's process; escaping the task, a KeyboardInterrupt would
    stop the worker's event loop."""
    logger.error("%6.2fs ! %s failed, %s: %s", _since(start_ms), ref, type(exc).__name__, _safe_str(exc), exc_info=exc)
    failure = JobExecutionFailed(f"{type(exc).__name__}: {_safe_str(exc)}")
    failure.__cause__ = exc
    return failure.with_traceback(exc.__traceback__)


def _traceback(error: Any) -> str | None:
    if isinstance(error, BaseException) and error.__traceback__ is not None:
        try:
            return "".join(traceback.format_exception(error))
        except Exception:  # an exception whose str() fails (e.g. one whose args hold itself)
            return f"<traceback of an unprintable {type(error).__name__}>"
    return None


def _extra(error: BaseException) -> Any:
    """arq's ``extra`` of a job's exception (an attribute, or a method returning it), put on its error record
    (``record.extra``) for handlers that report it, Sentry's among them; None when absent or when it raises."""
    try:
        extra = getattr(error, "extra", None)
        return extra() if callable(extra) else extra
    except Exception:
        return None


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _keep_seconds(function: Function, s: RunnerSettings, data: dict[str, Any] | None = None) -> float:
    """-1 means forever; the job's own setting (``_keep_result``) wins over the function's, which wins over the
    worker's."""
    own = _job_keep_s(data) if data is not None else None
    if own is not None:
        return own
    forever = function.keep_result_forever if function.keep_result_forever is not None else s.keep_result_forever
    if forever:
        return -1.0
    return function.keep_result_s if function.keep_result_s is not None else s.keep_result_s


def _job_keep_s(data: dict[str, Any]) -> float | None:
    """The job's ``_keep_result`` in seconds (-1 forever), None when it has none."""
    kept = data.get("kr")
    if not isinstance(kept, int):
        return None
    return -1.0 if kept < 0 else kept / 1000


def _timeout_seconds(function: Function, s: RunnerSettings, data: dict[str, Any]) -> float:
    """The job's ``_job_timeout`` (negative: none), else the function's, else the worker's."""
    own = data.get("jt")
    if isinstance(own, int) and own != 0:
        return math.inf if own < 0 else own / 1000
    return function.timeout_s if function.timeout_s is not None else s.job_timeout_s


def _own_ttls(outcome: Outcome, data: dict[str, Any]) -> Outcome:
    """A failure kept in the failed registry for the job's own ``_failure_ttl`` (0: not kept), when it has one."""
    own = data.get("fk")
    if outcome.kind == _FAILED and isinstance(own, int) and own >= 0:
        outcome.failure_ttl_ms = own or -1
    return outcome


def _dotted_path(function: Any) -> str:
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"


def _ttl_ms(ttl_s: float) -> int:
    return -1 if ttl_s < 0 else int(ttl_s * 1000)


def _since(ms: int) -> float:
    return (now_ms() - ms) / 1000
