"""Cron schedules: at which times a periodic job fires, and the ``CronJob`` a worker keeps for it.

Matching is arq's, field by field: each of month, day, weekday, hour, minute and second is ``None`` (any
value), one int, or a set of ints, and a time fires when every field matches; the microsecond is one fixed
value (123456 by default, away from the busy top of the second). So ``cron(f, hour={9, 17}, minute=0)``
fires at 09:00:00.123456 and 17:00:00.123456 every day. Unlike arq, every field is checked when the job is
defined: ``cron(f, hour=25)`` raises when the settings are loaded instead of silently never firing.

Times are computed on the wall clock of the datetime handed in: the worker passes ``now`` in its configured
timezone, so ``hour=9`` means 09:00 where the worker says it is (see ``next_cron`` for what happens at DST
changes). This module is pure: no Redis and no clock. Several workers compute the same ticks; that each tick
runs once is enforced elsewhere, when the worker enqueues it: the job id is derived from the cron job's name
and the tick time, and the per-cron fence key (``QueueKeys.cron_fence``) refuses a tick at or before the
last one enqueued.
"""

from __future__ import annotations

import calendar
import importlib
import math
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from datetime import MAXYEAR, date, datetime, timedelta, tzinfo
from typing import Any, Final, TypeAlias, cast

from .crontab import InvalidCrontab, crontab_fields

__all__ = [
    "WEEKDAY_NAMES",
    "CronCoroutine",
    "CronJob",
    "InvalidCrontab",
    "OptionType",
    "WeekdayOptionType",
    "cron",
    "next_cron",
]

OptionType: TypeAlias = int | set[int] | None
# Weekdays also take names, singly or in a set (mixed with ints if you like).
WeekdayOptionType: TypeAlias = int | str | set[int] | set[str] | set[int | str] | None
# What the worker calls: ``await coroutine(ctx)``.
CronCoroutine: TypeAlias = Callable[..., Awaitable[Any]]

WEEKDAY_NAMES: Final[dict[str, int]] = {
    "mon": 0,
    "tue": 1,
    "tues": 1,
    "wed": 2,
    "thu": 3,
    "thurs": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}

# Inclusive bounds of each schedule field.
_RANGES: Final[dict[str, tuple[int, int]]] = {
    "month": (1, 12),
    "day": (1, 31),
    "weekday": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
_MICROSECOND_MAX: Final = 999_999
# The longest each month can be (February in a leap year), to reject e.g. day=31 month=2 up front.
_MONTH_MAX_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# The Gregorian calendar repeats every 400 years (146097 days, a whole number of weeks): a date that exists
# at all, with any weekday, exists within 400 years of any starting point.
_SEARCH_YEARS: Final = 400


# --------------------------------------------------------------------------------------------------------
# Field validation


def _check_item(field: str, whole: object, item: object) -> int:
    """One value of ``field`` (``whole`` is what the caller passed, for the message) as a validated int."""
    lo, hi = _RANGES[field]
    said = f"{field}={whole!r}" if item is whole else f"{field}={whole!r}: {item!r}"
    if field == "weekday" and isinstance(item, str):
        try:
            return WEEKDAY_NAMES[item.lower()]
        except KeyError:
            names = ", ".join(WEEKDAY_NAMES)
            raise ValueError(f"{said} is not a weekday: use 0-6 (0=Monday) or one of {names}") from None
    if isinstance(item, bool):
        raise ValueError(f"{said} is a bool, not an int in range {lo}-{hi}")
    if not isinstance(item, int):
        if item is whole:
            raise ValueError(f"{said} must be an int in range {lo}-{hi}, a non-empty set of them, or None")
        raise ValueError(f"{said} is not an int in range {lo}-{hi}")
    if not lo <= item <= hi:
        raise ValueError(f"{said} is out of range {lo}-{hi}")
    return int(item)


def _normalize(field: str, value: object) -> int | set[int] | None:
    """Validate a schedule field; weekday names become ints and any collection becomes a ``set[int]``."""
    if value is None:
        return None
    if isinstance(value, set | frozenset | list | tuple | range):
        if not value:
            lo, hi = _RANGES[field]
            raise ValueError(f"{field}={value!r} is empty: give values in range {lo}-{hi}, or None for any")
        return {_check_item(field, value, item) for item in value}
    return _check_item(field, value, value)


def _check_microsecond(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"microsecond={value!r} must be an int in range 0-{_MICROSECOND_MAX}")
    if not 0 <= value <= _MICROSECOND_MAX:
        raise ValueError(f"microsecond={value!r} is out of range 0-{_MICROSECOND_MAX}")
    return int(value)


def _allowed(field: str, value: int | set[int] | None) -> tuple[int, ...]:
    """The sorted values a normalized field allows."""
    if value is None:
        lo, hi = _RANGES[field]
        return tuple(range(lo, hi + 1))
    if isinstance(value, int):
        return (value,)
    return tuple(sorted(value))


def _seconds(field: str, value: object, *, allow_zero: bool) -> float | None:
    """A duration given as seconds (int/float) or a timedelta, as float seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"{field}={value!r} must be seconds (int or float), a timedelta, or None")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{field}={value!r} must be a finite number of seconds {bound}")
    return seconds


# --------------------------------------------------------------------------------------------------------
# Schedule search


def _next_combo(current: Sequence[int], allowed: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    """The smallest tuple of ``product(*allowed)`` greater than ``current`` in lexicographic order, or None.

    Each ``allowed[i]`` is sorted and non-empty. Keeps the leading value when the rest can still grow,
    otherwise bumps it to its next allowed value and resets everything after it to the smallest allowed.
    """
    if not allowed:
        return None  # nothing is greater than an equal empty tuple
    head, options = current[0], allowed[0]
    if head in options:
        tail = _next_combo(current[1:], allowed[1:])
        if tail is not None:
            return (head, *tail)
    i = bisect_right(options, head)
    if i == len(options):
        return None
    return (options[i], *(rest[0] for rest in allowed[1:]))


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Validated fields as sorted tuples of allowed values (``weekdays`` None = any)."""

    months: tuple[int, ...]
    days: tuple[int, ...]
    weekdays: frozenset[int] | None
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]
    microsecond: int

    @classmethod
    def build(
        cls,
        *,
        month: object,
        day: object,
        weekday: object,
        hour: object,
        minute: object,
        second: object,
        microsecond: object,
    ) -> _Schedule:
        """Validate every field (ValueError naming the field and its range) and the month/day combination."""
        months = _allowed("month", _normalize("month", month))
        days = _allowed("day", _normalize("day", day))
        weekday_ = _normalize("weekday", weekday)
        if not any(d <= _MONTH_MAX_DAYS[m] for m in months for d in days):
            raise ValueError(f"day={day!r} never occurs in month={month!r}")
        return cls(
            months=months,
            days=days,
            weekdays=None if weekday_ is None else frozenset(_allowed("weekday", weekday_)),
            hours=_allowed("hour", _normalize("hour", hour)),
            minutes=_allowed("minute", _normalize("minute", minute)),
            seconds=_allowed("second", _normalize("second", second)),
            microsecond=_check_microsecond(microsecond),
        )

    def _date_matches(self, day: date) -> bool:
        return (
            day.month in self.months
            and day.day in self.days
            and (self.weekdays is None or day.weekday() in self.weekdays)
        )

    def _next_date(self, after: date) -> date:
        """The first matching date strictly after ``after``: month by month, skipping months not allowed."""
        year, month, min_day = after.year, after.month, after.day + 1
        last_year = min(after.year + _SEARCH_YEARS, MAXYEAR)
        while year <= last_year:
            if month in self.months:
                first_weekday, length = calendar.monthrange(year, month)
                for day in self.days:
                    if day > length:
                        break
                    if day >= min_day and (self.weekdays is None or (first_weekday + day - 1) % 7 in self.weekdays):
                        return date(year, month, day)
            i = bisect_right(self.months, month)
            if i < len(self.months):
                month = self.months[i]
            else:
                month, year = self.months[0], year + 1
            min_day = 1
        raise ValueError(f"no date after {after.isoformat()} matches {self._describe_date()} before {last_year + 1}")

    def _describe_date(self) -> str:
        weekdays = "any" if self.weekdays is None else sorted(self.weekdays)
        return f"months {list(self.months)}, days {list(self.days)}, weekdays {weekdays}"

    def after_wall(self, wall: datetime) -> datetime:
        """The first matching time strictly after the naive wall-clock time ``wall`` (naive too)."""
        today = wall.date()
        if self._date_matches(today):
            later = _next_combo(
                (wall.hour, wall.minute, wall.second, wall.microsecond),
                (self.hours, self.minutes, self.seconds, (self.microsecond,)),
            )
            if later is not None:
                hour, minute, second, micro = later
                return datetime(today.year, today.month, today.day, hour, minute, second, micro)
        day = self._next_date(today)
        return datetime(day.year, day.month, day.day, self.hours[0], self.minutes[0], self.seconds[0], self.microsecond)

    def after(self, previous: datetime) -> datetime:
        """The first match strictly after ``previous`` on its wall clock and, when aware, in real time too."""
        tz = previous.tzinfo
        result = self.after_wall(previous.replace(tzinfo=None, fold=0))
        if tz is None:
            return result
        previous_utc = _as_utc(previous)
        if previous_utc is None:
            return result
        for _ in range(_MAX_DST_STEPS):
            candidate = result.replace(tzinfo=tz)
            offset = candidate.utcoffset()
            if offset is None or result - offset > previous_utc:
                return candidate
            # A wall time later than previous's but not a later instant: previous_dt is past a DST change.
            if _is_repeated(result, tz):
                # Fall-back, previous_dt in the second pass: the first-pass ticks of the repeated wall
                # times are already past and each wall time fires once, so go on after the repetition.
                result = self.after_wall(_end_of_repeat(result, tz) - _MICROSECOND)
            else:
                # After a spring-forward gap whose wall times mapped to instants on the new offset: go on
                # after the wall time that shows previous_dt's instant on this offset.
                result = self.after_wall(max(previous_utc + offset, result))
        raise ValueError(f"no time after {previous.isoformat()} found on {tz!r}'s wall clock")  # pragma: no cover


_MICROSECOND: Final = timedelta(microseconds=1)
_MAX_DST_STEPS: Final = 16  # each step passes one offset change; a handful is plenty


def _as_utc(value: datetime) -> datetime | None:
    """The naive UTC time of an aware datetime (None when its tzinfo gives no offset)."""
    offset = value.utcoffset()
    return None if offset is None else value.replace(tzinfo=None) - offset


def _is_repeated(wall: datetime, tz: tzinfo) -> bool:
    """Whether a fall-back shows the naive wall time ``wall`` twice in ``tz``."""
    return wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset()


def _end_of_repeat(wall: datetime, tz: tzinfo) -> datetime:
    """The first whole-second wall time after ``wall`` (a repeated one) that ``tz`` shows only once."""
    first, second = wall.replace(tzinfo=tz, fold=0).utcoffset(), wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None
    low = wall.replace(microsecond=0)  # repeated (transitions fall on whole seconds)
    span = max(int(abs(first - second).total_seconds()), 1)  # low + span is past the repetition
    lo, hi = 0, span
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _is_repeated(low + timedelta(seconds=mid), tz):
            lo = mid
        else:
            hi = mid
    return low + timedelta(seconds=hi)


def next_cron(
    previous_dt: datetime,
    *,
    month: OptionType = None,
    day: OptionType = None,
    weekday: WeekdayOptionType = None,
    hour: OptionType = None,
    minute: OptionType = None,
    second: OptionType = 0,
    microsecond: int = 123_456,
) -> datetime:
    """The first datetime strictly after ``previous_dt`` whose fields all match.

    Each field is None (any), an int or a set of ints; ``weekday`` is 0=Monday … 6=Sunday or a name
    (``'mon'``, ``'tue'``/``'tues'``, ``'wed'``, ``'thu'``/``'thurs'``, ``'fri'``, ``'sat'``, ``'sun'``, any
    case). ``microsecond`` is one value. The search jumps field by field (next allowed month, next matching
    day, then the next allowed hour/minute/second), never second by second: a few microseconds for an
    every-second job, well under a millisecond for "Monday 29 February".

    Sub-second detail: "strictly after" is exact, so from 10:00:00.000000 with ``second=None`` the answer is
    10:00:00.123456 (arq first adds one second and would answer 10:00:01.123456); from 10:00:00.123456 it is
    10:00:01.123456.

    Time zones: the search runs on the wall clock of ``previous_dt``: its tzinfo is detached (its ``fold``
    ignored), calendar arithmetic finds the next matching wall time, and the same tzinfo is attached to the
    result with ``fold=0``; ``hour=9`` means 09:00 local time, and nothing loops at DST changes. Naive input is
    plain wall clock (no DST handling) and gives naive output. For aware input the result is moreover later
    in real time than ``previous_dt``, so successive ticks' ``.timestamp()`` values strictly increase:

    - spring forward (02:00→03:00): a matching wall time inside the gap is returned as it is; with
      ``zoneinfo`` it denotes the instant one gap later (02:30 is 03:30 new time), so a daily 02:30 job still
      fires that day, and post-gap wall times whose instant is not later are skipped, so an every-minute job
      ticks 02:00 … 02:59 (at 03:00 … 03:59 real time) and then 04:00: one tick per real minute.
    - fall back (02:00→01:00): a repeated wall time is returned once, as its first occurrence (fold=0); the
      second pass of the repeated hour fires nothing (a ``previous_dt`` in it, fold=1, gives the first match
      after the repetition), so an every-minute job pauses for that hour.

    Python compares two datetimes sharing a tzinfo by wall time, not instant: compare ticks by timestamp.

    Raises ValueError for an invalid field (naming it and its range) and for a combination that never
    occurs (``day=31, month=2``) or not within 400 years / before year 10000.
    """
    if not isinstance(previous_dt, datetime):
        raise TypeError(f"previous_dt must be a datetime, not {type(previous_dt).__name__}")
    schedule = _Schedule.build(
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        microsecond=microsecond,
    )
    return schedule.after(previous_dt)


# --------------------------------------------------------------------------------------------------------
# Cron jobs


@dataclass(repr=False)
class CronJob:
    """A periodic job as the worker keeps it; build one with ``cron()``.

    Fields are validated on construction (ValueError "cron job 'NAME': ..."), weekday names become ints and
    collections become sets. ``next_run`` is the next tick, maintained by the worker via ``calculate_next``.
    """

    name: str
    coroutine: CronCoroutine
    month: OptionType
    day: OptionType
    weekday: WeekdayOptionType
    hour: OptionType
    minute: OptionType
    second: OptionType
    microsecond: int
    run_at_startup: bool
    unique: bool
    job_id: str | None
    timeout_s: float | None
    keep_result_s: float | None
    keep_result_forever: bool | None
    max_tries: int | None
    next_run: datetime | None = None
    crontab: str | None = None  # '*/5 * * * *': the schedule, instead of the fields month ... second
    # the crontab's schedules: one, or two when its day of month and day of week are both restricted (cron's OR)
    _crontab_schedules: tuple[_Schedule, ...] = dataclass_field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"cron job: name={self.name!r} must be a non-empty string")
        try:
            self._validate()
            if self.crontab is not None:
                self._crontab_schedules = self._parse_crontab(self.crontab)
        except InvalidCrontab as exc:
            raise InvalidCrontab(f"cron job {self.name!r}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"cron job {self.name!r}: {exc}") from None

    def _parse_crontab(self, crontab: str) -> tuple[_Schedule, ...]:
        given = [name for name in ("month", "day", "weekday", "hour", "minute") if getattr(self, name) is not None]
        if self.second not in (None, 0):
            given.append("second")
        if given:
            raise InvalidCrontab(f"give the schedule as crontab= or as fields, not both (also got {', '.join(given)})")
        schedules = []
        for fields_ in crontab_fields(crontab):
            try:
                schedules.append(_Schedule.build(**fields_, microsecond=self.microsecond))
            except ValueError as exc:  # e.g. '0 0 31 2 *': February has no 31st
                raise InvalidCrontab(f"crontab {crontab!r} never fires: {exc}") from None
        return tuple(schedules)

    def _validate(self) -> None:
        if not callable(self.coroutine):
            raise ValueError(f"coroutine={self.coroutine!r} is not callable")
        _Schedule.build(  # every field, and that the month/day combination can occur
            month=self.month,
            day=self.day,
            weekday=self.weekday,
            hour=self.hour,
            minute=self.minute,
            second=self.second,
            microsecond=self.microsecond,
        )
        self.month = _normalize("month", self.month)
        self.day = _normalize("day", self.day)
        self.weekday = _normalize("weekday", self.weekday)
        self.hour = _normalize("hour", self.hour)
        self.minute = _normalize("minute", self.minute)
        self.second = _normalize("second", self.second)
        for flag in ("run_at_startup", "unique"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}={getattr(self, flag)!r} must be True or False")
        if self.keep_result_forever is not None and not isinstance(self.keep_result_forever, bool):
            raise ValueError(f"keep_result_forever={self.keep_result_forever!r} must be True, False or None")
        if self.job_id is not None and (not isinstance(self.job_id, str) or not self.job_id):
            raise ValueError(f"job_id={self.job_id!r} must be a non-empty string or None")
        self.timeout_s = _seconds("timeout_s", self.timeout_s, allow_zero=False)
        self.keep_result_s = _seconds("keep_result_s", self.keep_result_s, allow_zero=True)
        if self.max_tries is not None and (
            isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int) or self.max_tries < 1
        ):
            raise ValueError(f"max_tries={self.max_tries!r} must be an int >= 1, or None")

    def calculate_next(self, prev_run: datetime) -> None:
        """Set ``next_run`` to the first tick strictly after ``prev_run`` (see ``next_cron``)."""
        self.next_run = self.next_tick(prev_run)

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``, by the crontab string or the fields (changes nothing)."""
        if self._crontab_schedules:
            return _earliest([schedule.after(after) for schedule in self._crontab_schedules])
        try:
            return next_cron(
                after,
                month=self.month,
                day=self.day,
                weekday=self.weekday,
                hour=self.hour,
                minute=self.minute,
                second=self.second,
                microsecond=self.microsecond,
            )
        except ValueError as exc:
            raise ValueError(f"cron job {self.name!r}: {exc}") from None

    def __repr__(self) -> str:
        shown = (f for f in fields(self) if not f.name.startswith("_") and (f.name != "crontab" or self.crontab))
        return "<CronJob {}>".format(" ".join(f"{f.name}={getattr(self, f.name)}" for f in shown))


def _earliest(ticks: list[datetime]) -> datetime:
    """The earliest instant (datetimes sharing a tzinfo compare by wall time, so aware ones by timestamp)."""
    if ticks[0].tzinfo is None:
        return min(ticks)
    return min(ticks, key=lambda tick: tick.timestamp())


def _import_coroutine(dotted_path: str) -> object:
    """``package.module.func`` or ``package.module:func`` (attributes may be nested after the colon)."""
    if ":" in dotted_path:
        module_path, _, attr_path = dotted_path.partition(":")
    else:
        module_path, _, attr_path = dotted_path.rpartition(".")
    if not module_path or not attr_path:
        raise ValueError(f"{dotted_path!r} is not a dotted path like 'package.module.function'")
    try:
        target: object = importlib.import_module(module_path)
        for attr in attr_path.split("."):
            target = getattr(target, attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {dotted_path!r}: {exc}") from exc
    return target


def cron(
    coroutine: str | CronCoroutine,
    function: str | CronCoroutine | None = None,
    /,
    *,
    crontab: str | None = None,
    name: str | None = None,
    month: OptionType = None,
    day: OptionType = None,
    weekday: WeekdayOptionType = None,
    hour: OptionType = None,
    minute: OptionType = None,
    second: OptionType = 0,
    microsecond: int = 123_456,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: float | timedelta | None = None,
    keep_result: float | timedelta | None = 0,
    keep_result_forever: bool | None = False,
    max_tries: int | None = 1,
) -> CronJob:
    """Define a cron job for ``WorkerSettings.cron_jobs``: ``coroutine`` runs at every matching time.

    :param coroutine: the function (called as ``await coroutine(ctx)``), or its import path
        ``'package.module.function'`` / ``'package.module:function'``; or a crontab string, the function then
        following it: ``cron('*/5 * * * *', report)`` is ``cron(report, crontab='*/5 * * * *')``
    :param crontab: the schedule as a crontab string (5 fields, or 6 with seconds last), instead of the
        fields below; needs the ``cron`` extra (croniter). See pool/worker/crontab.py.
    :param name: defaults to ``'cron:' + coroutine.__qualname__``; for an import path, as in arq,
        ``'cron:' + path``. Ticks' job ids are derived from it, so keep it stable across deploys.
    :param month: 1-12; ``day``: 1-31; ``weekday``: 0-6 (0=Monday) or names ``'mon'`` … ``'sun'``;
        ``hour``: 0-23; ``minute``: 0-59; ``second``: 0-59. Each None (any), an int or a non-empty set.
    :param microsecond: 0-999999, one value; 123456 keeps clear of the busy top of the second
    :param run_at_startup: also run once as soon as the worker starts
    :param unique: run each tick once even with several workers
    :param job_id: fixed job id for every tick, instead of one derived from name and tick
    :param timeout: seconds (or timedelta) before the job is cancelled; None for the worker's default
    :param keep_result: seconds (or timedelta) to keep the result; 0 keeps none
    :param keep_result_forever: keep the result with no expiry
    :param max_tries: how many times a tick may be tried

    Every argument is validated here; a bad one raises ValueError naming the job, the field and what is
    allowed, e.g. ``cron job 'cron:f': hour=25 is out of range 0-23`` (a bad crontab: ``InvalidCrontab``).
    """
    if function is not None:  # cron('*/5 * * * *', report)
        if crontab is not None or not isinstance(coroutine, str):
            raise InvalidCrontab(f"cron({coroutine!r}, {function!r}): give the crontab string first, then the function")
        crontab, coroutine = coroutine, function
    default_name: str | None
    if isinstance(coroutine, str):
        try:
            coroutine_: object = _import_coroutine(coroutine)
        except ValueError as exc:
            raise ValueError(f"cron job {name or 'cron:' + coroutine!r}: {exc}") from exc
        default_name = "cron:" + coroutine
    else:
        coroutine_ = coroutine
        qualname = getattr(coroutine, "__qualname__", None)
        default_name = "cron:" + qualname if isinstance(qualname, str) else None
    if not callable(coroutine_):
        label = name or default_name
        raise ValueError(f"cron job{f' {label!r}' if label else ''}: coroutine={coroutine!r} is not callable")
    if name is None:
        if default_name is None:
            raise ValueError(f"cron job: cannot derive a name from {coroutine!r}, pass name=")
        name = default_name
    try:
        timeout_s = _seconds("timeout", timeout, allow_zero=False)
        keep_result_s = _seconds("keep_result", keep_result, allow_zero=True)
    except ValueError as exc:
        raise ValueError(f"cron job {name!r}: {exc}") from None
    return CronJob(
        name=name,
        coroutine=cast(CronCoroutine, coroutine_),
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        microsecond=microsecond,
        run_at_startup=run_at_startup,
        unique=unique,
        job_id=job_id,
        timeout_s=timeout_s,
        keep_result_s=keep_result_s,
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
        crontab=crontab,
    )


def resume_after(cron_job: CronJob, last_tick_ms: int | None, now: datetime, catch_up_s: float) -> None:
    """Where a new cron leader starts: just after the last tick any leader enqueued (read from the fence), but
    not further back than ``catch_up_s``; ticks missed during a failover inside that window still run once.
    With no tick ever enqueued, it starts from now."""
    start = now
    if last_tick_ms is not None:
        last = datetime.fromtimestamp(last_tick_ms / 1000, tz=now.tzinfo)
        start = max(last, now - timedelta(seconds=catch_up_s))
    cron_job.calculate_next(start)


def ticks_skipped(
    cron_job: CronJob, last_tick_ms: int | None, now: datetime, catch_up_s: float, limit: int = 10_000
) -> int:
    """How many ticks ``resume_after`` passes over: those after the last one enqueued and older than the catch-up
    window (a leader gone for longer than it). Counted for the metrics, up to ``limit``; sets ``next_run``
    (call ``resume_after`` afterwards)."""
    if last_tick_ms is None:
        return 0
    # the fence holds the tick in whole ms; the tick itself may be later within that ms (arq's microsecond)
    tick = datetime.fromtimestamp((last_tick_ms + 1) / 1000, tz=now.tzinfo)
    cutoff = now - timedelta(seconds=catch_up_s)
    skipped = 0
    while skipped < limit:
        cron_job.calculate_next(tick)
        if cron_job.next_run is None or cron_job.next_run > cutoff:
            break
        tick = cron_job.next_run
        skipped += 1
    return skipped
