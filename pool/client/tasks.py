"""Typed enqueueing: a task reference whose ``enqueue`` takes the job function's own arguments, checked by mypy.

``TaskRef[P, R]`` names a registered job function and types its call: ``P`` its parameters after ``ctx``, ``R``
what it returns. ``await ref.enqueue(redis, *args, **kwargs)`` returns a ``Job[R]``, so ``await job.result()``
is an ``R``. Job options (defer, job id, priority...) are given to ``ref.using(redis, defer_by=...)``, not to
``enqueue``: a ``ParamSpec``'s ``*args``/``**kwargs`` cannot be followed by other keyword parameters (PEP 612),
and an option mixed into the function's own keywords would not be checked at all.

The worker-side half (a task made from the function itself, listed in ``WorkerSettings.functions``) is
pool/worker/tasks.py; a producer that cannot import the worker's code builds a reference from the name alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from .jobs import Job

if TYPE_CHECKING:
    from .connections import QueueClient
    from .specs import DependsOn

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["BoundTask", "JobExists", "TaskRef"]


class JobExists(RuntimeError):
    """``enqueue`` with a ``job_id`` that is taken: a job with that id is queued, running or its result kept
    (``enqueue_job`` answers None in this case; a typed ``enqueue`` always returns a ``Job``)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id!r} already exists")
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class _Options:
    """The per-job options of ``enqueue_job`` (its underscored keywords), without the underscore."""

    job_id: str | None = None
    queue_name: str | None = None
    defer_until: datetime | None = None
    defer_by: float | timedelta | None = None
    expires: float | timedelta | None = None
    job_try: int | None = None
    depends_on: DependsOn = None
    allow_dependency_failure: bool = False
    on_success: str | Any | None = None
    on_failure: str | Any | None = None
    priority: int = 0
    at_front: bool = False
    job_timeout: float | timedelta | None = None
    keep_result: float | timedelta | None = None
    failure_ttl: float | timedelta | None = None
    description: str | None = None

    def as_keywords(self) -> dict[str, Any]:
        return {"_" + name: getattr(self, name) for name in self.__slots__}


# enqueue_job's own keywords: an argument of the function by one of these names would be taken for an option
_OPTION_KEYWORDS = frozenset({"_" + name for name in _Options.__slots__} | {"_ttl"})


class TaskRef(Generic[P, R]):
    """A job function known by its registered name, typed by its parameters (after ``ctx``) and result.

    ``task('send_email', returns=bool)`` (pool/worker/tasks.py) builds one with unchecked arguments; a task made
    from the function (``@task``) is one too, with its arguments checked."""

    def __init__(self, name: str, *, queue_name: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a task needs a non-empty function name, got {name!r}")
        self.name = name
        self.queue_name = queue_name

    async def enqueue(self, redis: QueueClient, /, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue a call of the function with these arguments, with no job options; ``redis`` is a pool
        (``create_pool``) or a worker's ``ctx['redis']``."""
        return await self.using(redis).enqueue(*args, **kwargs)

    def using(
        self,
        redis: QueueClient,
        /,
        *,
        job_id: str | None = None,
        queue_name: str | None = None,
        defer_until: datetime | None = None,
        defer_by: float | timedelta | None = None,
        expires: float | timedelta | None = None,
        job_try: int | None = None,
        depends_on: DependsOn = None,
        allow_dependency_failure: bool = False,
        on_success: str | Any | None = None,
        on_failure: str | Any | None = None,
        priority: int = 0,
        at_front: bool = False,
        job_timeout: float | timedelta | None = None,
        keep_result: float | timedelta | None = None,
        failure_ttl: float | timedelta | None = None,
        description: str | None = None,
    ) -> BoundTask[P, R]:
        """This task on ``redis`` with job options (``enqueue_job``'s, without their underscore), ready to
        ``enqueue``: ``await send.using(redis, defer_by=60, job_id='welcome:42').enqueue(42)``."""
        options = _Options(
            job_id=job_id,
            queue_name=queue_name if queue_name is not None else self.queue_name,
            defer_until=defer_until,
            defer_by=defer_by,
            expires=expires,
            job_try=job_try,
            depends_on=depends_on,
            allow_dependency_failure=allow_dependency_failure,
            on_success=on_success,
            on_failure=on_failure,
            priority=priority,
            at_front=at_front,
            job_timeout=job_timeout,
            keep_result=keep_result,
            failure_ttl=failure_ttl,
            description=description,
        )
        return BoundTask(self, redis, options)

    def __repr__(self) -> str:
        return f"<pool task {self.name}>"


class BoundTask(Generic[P, R]):
    """A task with a Redis client and job options: ``enqueue`` takes the function's arguments only."""

    __slots__ = ("_options", "_redis", "_task")

    def __init__(self, task: TaskRef[P, R], redis: QueueClient, options: _Options) -> None:
        self._task = task
        self._redis = redis
        self._options = options

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Enqueue a call with these arguments: its ``Job``, whose ``result()`` is the function's return type.
        Raises ``JobExists`` when the ``job_id`` given to ``using`` is taken."""
        clashes = sorted(key for key in kwargs if key in _OPTION_KEYWORDS)
        if clashes:  # enqueue_job would take them as its own options: give them to using() instead
            raise TypeError(f"{self._task.name}: job options go to using(), not enqueue(): {', '.join(clashes)}")
        enqueue_job: Callable[..., Awaitable[Job | None]] = self._redis.enqueue_job  # options and arguments as one
        job = await enqueue_job(self._task.name, *args, **self._options.as_keywords(), **kwargs)
        if job is None:
            assert self._options.job_id is not None  # only a given id can be taken
            raise JobExists(self._options.job_id)
        return cast("Job[R]", job)
