"""rq's ``@job`` decorator, and ``@rq_function``, which marks a function as written for rq (no ``ctx``).

``@job``: ``@job('low', connection=redis, timeout=5)`` gives the function ``.delay(*args)``
(and rq 2's ``.enqueue``), which enqueues a call of it with the decorator's options.

The function stays itself (callable as before) and is marked as an rq function: the worker that registers it
(``functions = [add]``) calls it as rq does, ``add(*args, **kwargs)``, without pool's ``ctx``; so does
``Queue(is_async=False)``. It is registered, and recorded in its jobs, under its name, as any function a worker
registers: one registry, whether a job is enqueued by ``add.delay(...)``, ``q.enqueue(add, ...)`` or pool's
``enqueue_job('add', ...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast

from ..worker.functions import TAKES_CTX_ATTR
from .job import Job
from .options import Callback, FunctionReference, Timeout, check_unsupported, parse_timeout
from .queue import Queue

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


F = TypeVar("F", bound=Callable[..., Any])


def rq_function(f: F) -> F:
    """Mark ``f`` as written for rq: called ``f(*args, **kwargs)``, without pool's ``ctx``, by the worker that
    registers it (``functions = [f]``) and by ``Queue(is_async=False)``. ``f`` is returned as it is. (The same
    as registering ``func(f, takes_ctx=False)``, said once where the function is defined.)"""
    setattr(f, TAKES_CTX_ATTR, False)
    return f


class DelayedFunction(Protocol, Generic[P, R_co]):
    """A function decorated with ``@job``: itself, plus ``delay``/``enqueue`` with its own signature."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job: ...

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job: ...


class job:  # rq's name
    """``@job(queue, connection=..., timeout=..., result_ttl=..., ttl=..., failure_ttl=..., depends_on=...,
    at_front=..., description=..., on_success=..., on_failure=...)``: ``queue`` is a ``Queue`` or a queue name
    (then ``connection`` is needed: a ``redis.Redis``, ``RedisSettings`` or URL; the queue is made once, on the
    first ``delay``). ``delay(*args, **kwargs)`` also takes ``job_id``, ``depends_on`` and ``at_front``."""

    def __init__(
        self,
        queue: Queue | str,
        connection: Any = None,
        timeout: Timeout | None = None,
        result_ttl: Timeout | None = None,
        ttl: Timeout | None = None,
        queue_class: type[Queue] | None = None,
        depends_on: Any = None,
        at_front: bool = False,
        meta: dict[Any, Any] | None = None,
        description: str | None = None,
        failure_ttl: Timeout | None = None,
        retry: Any = None,
        on_failure: Callback | FunctionReference | None = None,
        on_success: Callback | FunctionReference | None = None,
        on_stopped: Any = None,
        webhooks: Any = None,
    ) -> None:
        check_unsupported({"meta": meta, "retry": retry, "on_stopped": on_stopped, "webhooks": webhooks})
        if not isinstance(queue, Queue) and connection is None:
            raise TypeError(f"@job({queue!r}) needs a connection: @job({queue!r}, connection=redis.Redis(...))")
        parse_timeout(timeout, "timeout")  # a bad value fails at import, not at the first delay()
        self.queue = queue
        self.connection = connection
        self.queue_class = queue_class or Queue
        self.options: dict[str, Any] = {
            "timeout": timeout,
            "result_ttl": result_ttl,
            "ttl": ttl,
            "failure_ttl": failure_ttl,
            "description": description,
            "on_success": on_success,
            "on_failure": on_failure,
        }
        self.depends_on = depends_on
        self.at_front = at_front
        self._queue: Queue | None = queue if isinstance(queue, Queue) else None
        self._lock = threading.Lock()

    def _target(self) -> Queue:
        """The queue, made once (a queue made from settings or a URL holds its own connections)."""
        if self._queue is None:
            with self._lock:
                if self._queue is None:
                    self._queue = self.queue_class(str(self.queue), connection=self.connection)
        return self._queue

    def __call__(self, f: Callable[P, R]) -> DelayedFunction[P, R]:
        def delay(*args: Any, **kwargs: Any) -> Job:
            depends_on = kwargs.pop("depends_on", None) or self.depends_on
            job_id = kwargs.pop("job_id", None)
            at_front = kwargs.pop("at_front", None)
            return self._target().enqueue_call(
                f,
                args=args,
                kwargs=kwargs,
                depends_on=depends_on,
                job_id=job_id,
                at_front=self.at_front if at_front is None else at_front,
                **self.options,
            )

        rq_function(f)
        f.delay = delay  # type: ignore[attr-defined]
        f.enqueue = delay  # type: ignore[attr-defined]
        return cast(DelayedFunction[P, R], f)
