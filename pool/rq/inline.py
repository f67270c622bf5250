"""``Queue(is_async=False)``: each job runs in the caller, before ``enqueue`` returns, as rq's does (for tests).

No worker takes part: the job never reaches the queue's streams. It is run from its payload as a worker would
decode it (so what the serializer cannot carry fails here too), its result is recorded under the queue's keys
(``fetch_job``, ``latest_result`` and ``pool`` clients read it as any other), and its on_success/on_failure
callbacks run here too. The function is resolved the way a worker registers it (``func()``): its own object, or
an importable dotted path; called with ``ctx`` first unless it is an rq function (``takes_ctx=False``, or
decorated with ``pool.rq.job``). What differs from a worker: no timeout (a sync call cannot be interrupted), a
``ctx`` without ``redis``, one try (no ``Retry``), and an id or a dependency checked before the run rather than
atomically with it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..client.specs import JobSpec
from ..storage.codecs import deserialize_job, deserialize_result, serialize_result
from ..storage.serializers import Deserializer, JobExecutionFailed, Serializer
from ..storage.sync import SyncQueue
from ..utils import import_string, ms_to_datetime, now_ms
from ..worker.functions import Function, func
from .exceptions import DuplicateJobError

logger = logging.getLogger("pool.rq")

KEEP_RESULT_MS = 3_600_000  # a worker's default keep_result
FAILURE_TTL_MS = 7 * 86_400_000  # a worker's default failure_ttl


@dataclass(frozen=True)
class Runnable:
    function: Callable[..., Any]
    takes_ctx: bool


def runnable(function: Any, what: str = "the job") -> Runnable:
    """How a worker would call ``function``: a ``func()``, a function, or its dotted path (imported here)."""
    if isinstance(function, Function):
        return Runnable(function.coroutine, function.takes_ctx)
    if isinstance(function, str):
        if "." not in function:
            raise TypeError(
                f"is_async=False runs {what} in this process: pass the function itself or its dotted path "
                f"('app.tasks.{function}'), not the name {function!r}"
            )
        function = import_string(function)
    registered = func(function)
    return Runnable(registered.coroutine, registered.takes_ctx)


def run_inline(
    queue: SyncQueue,
    spec: JobSpec,
    function: Any,
    callbacks: tuple[Any, Any],
    serializer: Serializer | None,
    deserializer: Deserializer | None,
) -> None:
    """Run the job ``spec`` describes and record its result (and its failure, in the failed registry)."""
    job = runnable(function)
    on_success, on_failure = (None if c is None else runnable(c, "its callback") for c in callbacks)
    if queue.job_exists(spec.job_id):
        raise DuplicateJobError(f"job id {spec.job_id!r} is taken", job_ids=[spec.job_id])
    data = deserialize_job(spec.payload, deserializer)
    args, kwargs, enqueue_ms = tuple(data["a"]), data["k"], int(data["et"])
    ctx = {"job_id": spec.job_id, "job_try": 1, "enqueue_time": ms_to_datetime(enqueue_ms), "score": spec.score_ms}
    start_ms = now_ms()
    failed_dependency = _failed_dependency(queue, spec, deserializer)
    success: bool = False
    result: Any = None
    if failed_dependency and not data.get("da"):
        result = JobExecutionFailed(f"dependency {failed_dependency} failed")
    else:
        try:
            result, success = _call(job, ctx, args, kwargs), True
        except Exception as exc:  # the job's failure, recorded with its traceback (``job.exc_info``)
            logger.warning("job %s:%s failed, %s: %s", spec.job_id, spec.function, type(exc).__name__, exc)
            result = exc
    payload = serialize_result(
        function=spec.function,
        args=args,
        kwargs=kwargs,
        attempts=1,
        enqueue_ms=enqueue_ms,
        success=success,
        result=result,
        start_ms=start_ms,
        finish_ms=now_ms(),
        queue_name=queue.keys.queue_name,
        job_id=spec.job_id,
        serializer=serializer,
        traceback=None if success else _traceback(result),
        description=data.get("ds"),
    )
    keep_ms = data.get("kr", KEEP_RESULT_MS)
    failure_ms = 0 if success else data.get("fk", FAILURE_TTL_MS)
    queue.record_result(spec.job_id, payload, keep_ms, failure_ms)
    callback = on_success if success else on_failure
    if callback is not None:
        argument = result if success else f"{type(result).__name__}: {result}"
        try:
            _call(callback, dict(ctx, job_id=f"{spec.job_id}:callback"), (spec.job_id, argument), {})
        except Exception:
            logger.exception("job %s: its %s callback failed", spec.job_id, "on_success" if success else "on_failure")


def _failed_dependency(queue: SyncQueue, spec: JobSpec, deserializer: Deserializer | None) -> str:
    """The first dependency that failed ('' when all succeeded or are unknown, which ENQUEUE counts as met);
    a dependency still to run cannot be waited for here."""
    for dependency in spec.depends_on:
        (_, state, _), result, failed = queue.job_snapshot(dependency)
        record = result or failed
        if record is not None:
            if not deserialize_result(record, deserializer).success:
                return dependency
        elif state is not None:
            raise ValueError(f"is_async=False runs a job at once: its dependency {dependency!r} has not finished")
    return ""


def _call(job: Runnable, ctx: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = job.function(ctx, *args, **kwargs) if job.takes_ctx else job.function(*args, **kwargs)
    if not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wait(result))
    if inspect.iscoroutine(result):
        result.close()
    raise RuntimeError(
        "is_async=False cannot run an async job from inside a running event loop: await pool's "
        "create_inline_pool(...).enqueue_job(...) there instead"
    )


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def _traceback(error: Any) -> str | None:
    if isinstance(error, BaseException) and error.__traceback__ is not None:
        return "".join(traceback.format_exception(error))
    return None
