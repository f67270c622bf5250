"""``task``: a job function that is also its own typed enqueuer, listed as it is in ``WorkerSettings.functions``.

::

    @task(timeout=30)
    async def resize(ctx: Ctx, path: str, width: int) -> str: ...

    job = await resize.enqueue(redis, "a.png", 640)          # Job[str], arguments checked by mypy
    job = await resize.using(redis, defer_by=60).enqueue("a.png", width=640)
    path: str = await job.result()

A producer that does not import the worker's code names the function instead: ``task("resize", returns=str)``
(arguments unchecked), or decorates a body-less stub of the same signature with ``@task(name="resize")``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, overload

from ..client.tasks import BoundTask, JobExists, TaskRef
from .functions import Function, func

__all__ = ["BoundTask", "Ctx", "JobExists", "Task", "TaskRef", "task"]

P = ParamSpec("P")
R = TypeVar("R")

# The worker's context dict (job_id, job_try, redis...), the first argument of every job function.
Ctx: TypeAlias = dict[str, Any]


class Task(TaskRef[P, R], Generic[P, R]):
    """A job function with its settings (a ``func()``), typed for ``enqueue``. Calling it calls the function:
    ``await resize(ctx, "a.png", 640)``."""

    def __init__(self, function: Function, call: Callable[Concatenate[Ctx, P], Awaitable[R]], queue_name: str | None):
        super().__init__(function.name, queue_name=queue_name)
        self.function = function  # what the worker registers (see ``func``)
        self._call = call

    def __call__(self, ctx: Ctx, /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self._call(ctx, *args, **kwargs)


@overload
def task(function: Callable[Concatenate[Ctx, P], Awaitable[R]], /) -> Task[P, R]: ...


@overload
def task(name: str, /, *, returns: type[R], queue_name: str | None = None) -> TaskRef[..., R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue_name: str | None = None,
    keep_result: float | timedelta | None = None,
    timeout: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
    max_concurrency: int | None = None,
) -> Callable[[Callable[Concatenate[Ctx, P], Awaitable[R]]], Task[P, R]]: ...


def task(
    function: Callable[..., Awaitable[Any]] | str | None = None,
    /,
    *,
    returns: type[Any] | None = None,
    name: str | None = None,
    queue_name: str | None = None,
    keep_result: float | timedelta | None = None,
    timeout: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
    max_concurrency: int | None = None,
) -> Any:
    """Make a typed task: ``@task``, ``@task(timeout=..., ...)`` (``func``'s settings, plus the ``queue_name``
    its jobs go to by default), or ``task("name", returns=T)`` for a function registered elsewhere.

    ``returns`` only types the reference (``Job[T]``); nothing checks it at run time."""
    if isinstance(function, str):
        if returns is None:
            raise TypeError(f"task({function!r}): give the function's result type, returns=...")
        return TaskRef(function, queue_name=queue_name)
    settings: dict[str, Any] = {
        "name": name,
        "keep_result": keep_result,
        "timeout": timeout,
        "keep_result_forever": keep_result_forever,
        "max_tries": max_tries,
        "max_concurrency": max_concurrency,
    }

    def make(coroutine: Callable[Concatenate[Ctx, P], Awaitable[R]]) -> Task[P, R]:
        return Task(func(coroutine, **settings), coroutine, queue_name)

    return make if function is None else make(function)
