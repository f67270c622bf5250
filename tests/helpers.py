"""Waiting on conditions in tests: poll a predicate until it holds or a deadline passes.

Use these instead of fixed sleeps::

    await wait_for(lambda: job_ran.is_set())
    status = await wait_for(lambda: job.status(), timeout=2)      # async predicates are awaited
    wait_for_sync(lambda: not server.running, message="redis still up")

Each returns the predicate's first truthy value and raises AssertionError when the timeout runs out.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

__all__ = ["wait_for", "wait_for_sync"]

T = TypeVar("T")


def _describe(predicate: Callable[..., object], message: str | None) -> str:
    if message:
        return message
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    return f"condition {name}"


@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


@overload
async def wait_for(
    predicate: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Await until ``predicate()`` (sync or async) returns a truthy value; return that value.

    The predicate is called at least once, even with ``timeout=0``. Exceptions it raises propagate.
    On timeout, raise AssertionError naming the condition (or ``message``) and its last value.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{_describe(predicate, message)} not met within {timeout}s (last value: {result!r})")
        await asyncio.sleep(interval)


def wait_for_sync(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Block until ``predicate()`` returns a truthy value; return that value (sync twin of :func:`wait_for`).

    The predicate must be synchronous: a coroutine result is an error, not a truthy value.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError("wait_for_sync() got an async predicate; use `await wait_for(...)`")
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{_describe(predicate, message)} not met within {timeout}s (last value: {result!r})")
        time.sleep(interval)


# Another client's Lua script that keeps Redis busy for ARGV[1] ms (TIME is allowed: Redis 7 replicates a script's
# effects, not the script). Past busy-reply-threshold (lua-time-limit), Redis answers BUSY to every other command.
BUSY_SCRIPT = """
local t = redis.call('TIME')
local until_us = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us
return 1
"""
