"""Registering job functions (``func``) and asking for a retry (``Retry``), with arq's meaning."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..utils import import_string, to_ms, to_seconds

JobFunction = Callable[..., Awaitable[Any]] | Callable[..., Any]

# A function carrying this attribute set to False is called without ``ctx`` (rq's convention: ``f(*args)``); the
# rq decorator (pool.rq.job) sets it, so ``func()`` and the worker register such a function as it is written.
TAKES_CTX_ATTR = "pool_takes_ctx"


class Retry(RuntimeError):
    """Raise inside a job to run it again, after ``defer`` seconds (or a timedelta); counts toward max_tries."""

    def __init__(self, defer: float | timedelta | None = None) -> None:
        self.defer_s = to_seconds(defer) or 0.0
        self.defer_score: int | None = to_ms(defer)  # arq's name: the delay in ms
        super().__init__(self.defer_s)

    def __repr__(self) -> str:
        return f"<Retry defer {self.defer_s:0.2f}s>"

    def __str__(self) -> str:
        return repr(self)


class RetryJob(RuntimeError):
    """arq's: raise inside a job to run it again at once (logged as "cancelled, will be run again"); counts
    toward max_tries like ``Retry``."""


@dataclass
class Function:
    """A job function with its per-function settings; None means "use the worker's"."""

    name: str
    coroutine: JobFunction
    timeout_s: float | None
    keep_result_s: float | None
    keep_result_forever: bool | None
    max_tries: int | None
    max_concurrency: int | None = None  # across all workers of the queue, enforced in Redis
    takes_ctx: bool = True  # False: called as f(*args, **kwargs), without the ctx dict (rq's functions)
    # Sync functions run in a thread so they cannot block the event loop (and the heartbeat). Computed once:
    # inspect.iscoroutinefunction is too slow for the per-job path.
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.coroutine)


def func(
    coroutine: str | Function | JobFunction,
    *,
    name: str | None = None,
    keep_result: float | timedelta | None = None,
    timeout: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
    max_concurrency: int | None = None,
    takes_ctx: bool | None = None,
) -> Function:
    """Wrap a job function (or its dotted import path) with settings that override the worker's.

    ``max_concurrency``: at most this many jobs of the function run at once across every worker of the queue
    (beyond each worker's ``max_jobs``); further jobs wait, parked in Redis, until one finishes.
    ``takes_ctx=False``: call it without ``ctx``, as rq calls its functions (``f(*args, **kwargs)``); by default
    it takes ``ctx`` first, unless it was decorated with ``pool.rq.job``. A typed task (``pool.task``) is
    registered with its own settings."""
    if isinstance(coroutine, Function):
        return coroutine
    registered = getattr(coroutine, "function", None)  # a pool.task: its func(), made when it was defined
    if isinstance(registered, Function):
        return registered
    if isinstance(coroutine, str):
        name = name or coroutine
        coroutine = import_string(coroutine)
    if not callable(coroutine):
        raise TypeError(f"{coroutine!r} is not callable")
    if max_tries is not None and max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    return Function(
        name=name or coroutine.__qualname__,
        coroutine=coroutine,
        timeout_s=to_seconds(timeout),
        keep_result_s=to_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
        max_concurrency=max_concurrency,
        takes_ctx=takes_ctx if takes_ctx is not None else getattr(coroutine, TAKES_CTX_ATTR, True) is not False,
    )
