"""Helpers for users' tests: run enqueued jobs in the test's own process (like rq's ``is_async=False``).

``await create_inline_pool(RedisSettings(...), functions=[...])`` returns a client whose ``enqueue_job`` runs
the job before it returns, through a real ``Worker`` in burst mode in this process, so tests exercise the same
code path as production (serialization, retries, hooks, results) without a worker process. Jobs that a job
enqueues run in the same drain. A deferred job makes the drain wait until it is due. It needs a Redis.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

from ..client.connections import PoolRedis, create_pool
from ..client.jobs import Job
from ..redis.settings import RedisSettings
from .functions import Function
from .main import Worker

_draining: contextvars.ContextVar[bool] = contextvars.ContextVar("pool_inline_draining", default=False)


class InlineRedis(PoolRedis):
    """A ``PoolRedis`` whose ``enqueue_job`` also runs the queue until it is empty."""

    inline_functions: Sequence[Function | Callable[..., Any]] = ()
    inline_worker_kwargs: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance

    async def enqueue_job(self, function: str | Any, *args: Any, **kwargs: Any) -> Job | None:
        job = await super().enqueue_job(function, *args, **kwargs)
        if job is not None and not _draining.get():
            await self.drain(kwargs.get("_queue_name"))
        return job

    async def drain(self, queue_name: str | None = None) -> Worker:
        """Run every job of the queue (and the jobs they enqueue) now, in this process."""
        worker = Worker(
            self.inline_functions,
            redis_pool=self,
            burst=True,
            handle_signals=False,
            queue_name=queue_name or self.default_queue_name,
            **self.inline_worker_kwargs,
        )
        token = _draining.set(True)
        try:
            await worker.main()
        finally:
            _draining.reset(token)
        return worker


async def create_inline_pool(
    settings: RedisSettings | None = None,
    *,
    functions: Sequence[Function | Callable[..., Any]],
    **worker_kwargs: Any,
) -> InlineRedis:
    pool = await create_pool(settings)  # connects (with retries, clear errors) and checks the server
    pool.auto_close_connection_pool = False  # its connections now belong to the inline client
    inline = InlineRedis(connection_pool=pool.connection_pool)
    inline.auto_close_connection_pool = True
    inline.inline_functions = functions
    inline.inline_worker_kwargs = worker_kwargs
    return inline
