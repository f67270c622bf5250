"""Checking a worker's functions, cron jobs and hooks when the settings are loaded, before anything runs.

A misspelt dotted path in ``functions``, a bare function in ``cron_jobs`` or a hook that is not callable
would otherwise surface later: as a traceback from every worker process ``pool start`` forks, or when
the first job runs. Each check raises ``SettingsError`` naming the bad entry in one line (``functions[1]:
cannot import 'app.nonexistent': ...``). The Worker runs them on construction; the supervisor runs them when
it loads (or reloads) the settings, before it forks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..storage.serializers import Deserializer, with_job_types
from .cron import CronJob
from .functions import Function, func

HOOKS = ("on_startup", "on_shutdown", "on_job_start", "on_job_end", "after_job_end", "on_job_failure")


class SettingsError(ValueError):
    """A worker setting that cannot work; the message names it, in one line."""


def resolve_functions(functions: Any) -> list[Function]:
    """The ``functions`` setting as ``Function`` objects: each entry a function, a ``func(...)`` or the dotted
    path of a function."""
    if isinstance(functions, str | bytes) or not isinstance(functions, Sequence | set | frozenset):
        raise SettingsError(f"functions must be a list of job functions, got {_kind(functions)}")
    resolved = []
    for index, entry in enumerate(functions):
        where = f"functions[{index}]"
        if isinstance(entry, str) and not _is_dotted(entry):
            raise SettingsError(f"{where}: {entry!r} is not a function nor a dotted path like 'app.tasks.download'")
        try:
            resolved.append(func(entry))
        except ImportError as exc:
            raise SettingsError(f"{where}: cannot import {entry!r}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{where}: {exc}") from None
        except Exception as exc:  # the module named by the path raised while importing
            raise SettingsError(f"{where}: importing {entry!r} failed: {type(exc).__name__}: {exc}") from None
    return resolved


def check_cron_jobs(cron_jobs: Any) -> list[CronJob]:
    if cron_jobs is None:
        return []
    if isinstance(cron_jobs, str | bytes) or not isinstance(cron_jobs, Sequence | set | frozenset):
        raise SettingsError(f"cron_jobs must be a list of cron(...) jobs, got {_kind(cron_jobs)}")
    for index, entry in enumerate(cron_jobs):
        if not isinstance(entry, CronJob):
            raise SettingsError(f"cron_jobs[{index}]: expected cron(...), got {_kind(entry)}")
    return list(cron_jobs)


def check_hooks(hooks: dict[str, Any]) -> None:
    """Each hook given must be callable: an async function, or a function returning an awaitable (a lambda)."""
    for name in HOOKS:
        hook = hooks.get(name)
        if hook is not None and not callable(hook):
            raise SettingsError(f"{name}: expected an async function, got {_kind(hook)}")


def job_types_deserializer(job_types: Any, job_deserializer: Deserializer | None) -> Deserializer | None:
    """The deserializer for a worker's ``job_types`` (dataclasses and pydantic models it rebuilds)."""
    try:
        return with_job_types(job_types, job_deserializer)
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from None


def check_worker_kwargs(kwargs: dict[str, Any]) -> None:
    """Every check above, on the keyword arguments a settings class gives the Worker (see ``get_kwargs``)."""
    resolve_functions(kwargs.get("functions") or [])
    check_cron_jobs(kwargs.get("cron_jobs"))
    check_hooks(kwargs)
    job_types_deserializer(kwargs.get("job_types"), kwargs.get("job_deserializer"))


def _is_dotted(path: str) -> bool:
    module, sep, attr = path.replace(":", ".").rpartition(".")
    return bool(sep and module and attr)


def _name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if callable(value):
        return f"{type(value).__name__} {_name(value)}"
    return f"{type(value).__name__} {value!r}"[:120]
