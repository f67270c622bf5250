"""arq's ``arq.typing`` names: the types of job functions, hooks, settings and cron options."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from .worker.cron import OptionType, WeekdayOptionType

if TYPE_CHECKING:
    from .worker.cron import CronJob
    from .worker.functions import Function
    from .worker.tasks import Task

__all__ = (
    "WEEKDAYS",
    "OptionType",
    "SecondsTimedelta",
    "StartupShutdown",
    "WeekdayOptionType",
    "WorkerCoroutine",
    "WorkerSettingsType",
)

WEEKDAYS = "mon", "tues", "wed", "thurs", "fri", "sat", "sun"
SecondsTimedelta: TypeAlias = int | float | timedelta


class WorkerCoroutine(Protocol):
    __qualname__: str

    async def __call__(self, ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any: ...


class StartupShutdown(Protocol):
    __qualname__: str

    async def __call__(self, ctx: dict[Any, Any]) -> Any: ...


class WorkerSettingsBase(Protocol):
    functions: Sequence[WorkerCoroutine | Function | Task[Any, Any]]
    cron_jobs: Sequence[CronJob] | None = None
    on_startup: StartupShutdown | None = None
    on_shutdown: StartupShutdown | None = None


WorkerSettingsType: TypeAlias = dict[str, Any] | type[WorkerSettingsBase]
