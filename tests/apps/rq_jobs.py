"""Job functions written for rq (no ``ctx``) and the settings of the workers that run them, for
tests/test_rq_queue.py: ``pool worker tests.apps.rq_jobs.<Settings>``.

``POOL_TEST_RQ_URL`` (read at import) is the Redis the ``@job``-decorated function enqueues to and the functions
that record their runs write to.
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from typing import Any

import redis

from pool.rq import job, rq_function
from pool.worker import func

REDIS_URL = os.environ.get("POOL_TEST_RQ_URL", "redis://127.0.0.1:1/0")
RUNS = "rq-test:runs"  # the list the functions below append to, in the order they ran

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(REDIS_URL)
    return _client


# --- rq's documentation's functions ---------------------------------------------------------------------------------


@rq_function
def count_words_at_url(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return len(response.read().decode().split())


@rq_function
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@job("low", connection=REDIS_URL, timeout=5)
def add(x: int, y: int) -> int:
    return x + y


@rq_function
def my_func(a: int, b: int) -> int:
    return a * b


@rq_function
def generate_report() -> str:
    return record("generate_report")


@rq_function
def send_report() -> str:
    return record("send_report")


@rq_function
def foo() -> str:
    return record("foo")


@rq_function
def bar() -> str:
    return record("bar")


@rq_function
def baz() -> str:
    return record("baz")


@rq_function
def div_by_zero() -> float:
    return 1 / 0


@rq_function
def say_hello(name: str = "Stranger") -> str:
    record("say_hello")
    return f"Hello {name}!"


@rq_function
def report_success(job_id: str, result: Any) -> None:
    """pool calls a callback with (job_id, result) (rq: job, connection, result)."""
    _redis().rpush("rq-test:callbacks", f"success {job_id} {result}")


@rq_function
def report_failure(job_id: str, error: str) -> None:
    """pool calls a callback with (job_id, "Type: message") (rq: job, connection, type, value, traceback)."""
    _redis().rpush("rq-test:callbacks", f"failure {job_id} {error}")


# --- more, for the options ------------------------------------------------------------------------------------------


@rq_function
def record(tag: str) -> str:
    """Append ``tag`` to the runs list: the order jobs ran in."""
    _redis().rpush(RUNS, tag)
    return tag


@rq_function
async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@rq_function
def fail(message: str) -> None:
    raise ValueError(message)


@rq_function
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def legacy(x: int) -> int:
    """Written for rq but not marked: registered with func(legacy, takes_ctx=False)."""
    return x * 10


async def with_ctx(ctx: dict[str, Any], x: int) -> list[Any]:
    """A pool function (ctx first) enqueued from synchronous code: it still gets its ctx."""
    return [ctx["job_id"], x]


class WorkerSettings:
    """The default queue: rq's functions marked where they are defined (``@rq_function``, ``@job``) registered as
    they are, an unmarked one registered with ``takes_ctx=False``, and a pool function that takes ctx."""

    functions = [
        count_words_at_url,
        fib,
        add,
        my_func,
        generate_report,
        send_report,
        foo,
        bar,
        baz,
        div_by_zero,
        say_hello,
        report_success,
        report_failure,
        record,
        nap,
        fail,
        echo,
        func(legacy, takes_ctx=False),
        with_ctx,
    ]
    job_completion_wait = 0


class LowSettings(WorkerSettings):
    queue_name = "low"


class OneAtATime(WorkerSettings):
    """One job at a time, so the order jobs run in is the order they are taken."""

    max_jobs = 1


class ShortTimeout(WorkerSettings):
    """A worker whose own job_timeout is 1 s, for the jobs that set theirs."""

    job_timeout = 1
