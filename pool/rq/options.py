"""rq's per-job options as ``Queue.enqueue`` takes them, read into pool's (``pool.client.specs.prepare_job``).

rq's rule for arguments: ``enqueue(f, *args, **kwargs)`` takes its own options (``job_timeout``, ``ttl``...) out
of ``kwargs`` and passes the rest to ``f``; a function whose parameters clash with those names is called with
``enqueue(f, args=(...), kwargs={...}, ttl=...)``. rq options pool has no equivalent for are refused with the
reason rather than passed on to the function as if they were its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from .exceptions import TimeoutFormatError

Timeout = int | float | str | timedelta
FunctionReference = str | Callable[..., Any]

# rq's options of one job: taken out of enqueue()'s keyword arguments, never passed to the function
OPTIONS = (
    "job_timeout",
    "description",
    "result_ttl",
    "ttl",
    "failure_ttl",
    "depends_on",
    "job_id",
    "at_front",
    "on_success",
    "on_failure",
    "unique",
)

# rq's options pool does not take, and what to do instead
UNSUPPORTED = {
    "meta": "pool stores no metadata with a job",
    "retry": "give the function max_tries (func(f, max_tries=...)) and raise pool's Retry to run it again later",
    "repeat": "schedule repeated work with cron jobs (pool.cron)",
    "on_stopped": "pool has no stop callback",
    "rate_limit": "limit a function's concurrency with func(f, max_concurrency=N)",
    "webhooks": "pool sends no webhooks",
    "pipeline": "enqueue and enqueue_many send their jobs in one round trip themselves",
    "group_id": "pool has no job groups",
}

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_timeout(value: Timeout | None, what: str = "timeout") -> float | None:
    """Seconds from rq's forms: a number, a string of digits, or digits with a unit (``'1h'``, ``'3m'``, ``'5s'``,
    ``'2d'``); also a ``timedelta``. None stays None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(int(text))
        except ValueError:
            pass
        digits, unit = text[:-1], text[-1:].lower()
        if digits.lstrip("-").isdigit() and unit in _UNITS:
            return float(int(digits) * _UNITS[unit])
    raise TimeoutFormatError(
        f"{what} must be a number of seconds or digits with a unit (d, h, m, s) such as '1h' or '23m', got {value!r}"
    )


def check_unsupported(options: dict[str, Any]) -> None:
    """Refuse the rq options pool has no equivalent for (when set), with what to do instead, and any other
    keyword as Python would."""
    for name, value in options.items():
        if name not in UNSUPPORTED:
            raise TypeError(f"unexpected keyword argument {name!r}")
        if value is not None and value is not False:
            raise TypeError(f"{name}= is not supported by pool: {UNSUPPORTED[name]}")


def job_id_of(job: Any) -> str:
    """The id of a job given as an id, a ``pool.rq.Job`` (``.id``) or a ``pool.Job`` (``.job_id``)."""
    if isinstance(job, str):
        return job
    for attribute in ("id", "job_id"):
        value = getattr(job, attribute, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"a dependency must be a job or a job id, got {job!r}")


@dataclass(frozen=True, init=False)
class Dependency:
    """rq's ``Dependency``: the jobs a job waits for, whether it runs when one of them failed (``allow_failure``)
    and whether it goes to the front of its queue once released (``enqueue_at_front``)."""

    job_ids: tuple[str, ...]
    allow_failure: bool
    enqueue_at_front: bool

    def __init__(self, jobs: Any, allow_failure: bool = False, enqueue_at_front: bool = False) -> None:
        items = list(jobs) if isinstance(jobs, list | tuple | set | frozenset) else [jobs]
        if not items:
            raise ValueError("jobs cannot be empty")
        object.__setattr__(self, "job_ids", tuple(job_id_of(job) for job in items))
        object.__setattr__(self, "allow_failure", allow_failure)
        object.__setattr__(self, "enqueue_at_front", enqueue_at_front)

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.job_ids


def as_dependency(depends_on: Any) -> Dependency | None:
    """``depends_on`` as rq takes it (a job, an id, a ``Dependency``, or a list of them) as one ``Dependency``."""
    if depends_on is None or (isinstance(depends_on, list | tuple) and not depends_on):
        return None
    if isinstance(depends_on, Dependency):
        return depends_on
    items = list(depends_on) if isinstance(depends_on, list | tuple) else [depends_on]
    job_ids: list[str] = []
    allow_failure = enqueue_at_front = False
    for item in items:
        if isinstance(item, Dependency):
            job_ids += item.job_ids
            allow_failure = allow_failure or item.allow_failure
            enqueue_at_front = enqueue_at_front or item.enqueue_at_front
        else:
            job_ids.append(job_id_of(item))
    return Dependency(job_ids, allow_failure=allow_failure, enqueue_at_front=enqueue_at_front)


class Callback:
    """rq's ``Callback``: a function to run when a job succeeds or fails. pool enqueues it as a job of its own,
    called with ``(job_id, result)`` on success and ``(job_id, "Type: message")`` on failure (after ``ctx``
    unless it is registered as an rq function); ``timeout`` is that job's timeout."""

    def __init__(self, func: FunctionReference, timeout: Timeout | None = None) -> None:
        if not isinstance(func, str) and not callable(func):
            raise ValueError("Callback `func` must be a string or function")
        self.func = func
        self.timeout = parse_timeout(timeout, "Callback timeout")


def callback_function(callback: Callback | FunctionReference | None) -> FunctionReference | None:
    return callback.func if isinstance(callback, Callback) else callback


class EnqueueData(NamedTuple):
    """One job for ``Queue.enqueue_many``, as ``Queue.prepare_data`` makes it (rq's)."""

    func: FunctionReference
    args: tuple[Any, ...] | list[Any] | None
    kwargs: dict[str, Any] | None
    timeout: Timeout | None
    result_ttl: Timeout | None
    ttl: Timeout | None
    failure_ttl: Timeout | None
    description: str | None
    depends_on: Any
    job_id: str | None
    at_front: bool
    on_success: Callback | FunctionReference | None
    on_failure: Callback | FunctionReference | None


def split_arguments(
    args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    """rq's ``parse_args``: (the function's args, its kwargs, rq's options) from ``enqueue(f, *args, **kwargs)``.
    With ``args=``/``kwargs=``, those are the function's arguments; then no other positional or keyword
    argument may be left for the function (rq would drop them silently)."""
    kwargs = dict(kwargs)
    options = {name: kwargs.pop(name) for name in OPTIONS if name in kwargs}
    check_unsupported({name: kwargs.pop(name) for name in UNSUPPORTED if name in kwargs})
    if "args" in kwargs or "kwargs" in kwargs:
        explicit_args, explicit_kwargs = kwargs.pop("args", None), kwargs.pop("kwargs", None)
        if args:
            raise TypeError("extra positional arguments cannot be used with explicit args= and kwargs=")
        if kwargs:
            raise TypeError(
                f"with explicit args= and kwargs=, pass every argument of the function in them (got also "
                f"{', '.join(sorted(kwargs))})"
            )
        return checked_args(explicit_args), checked_kwargs(explicit_kwargs), options
    return tuple(args), kwargs, options


def checked_args(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    if not isinstance(args, list | tuple):
        raise TypeError(f"args must be a tuple or a list, got {args!r} (for one argument: args=({args!r},))")
    return tuple(args)


def checked_kwargs(kwargs: Any) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict, got {kwargs!r}")
    return dict(kwargs)
