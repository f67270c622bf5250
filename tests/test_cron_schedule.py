"""pool.cron without Redis: next_cron's schedule arithmetic and cron()'s validation."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from pool.cron import CronJob, cron, next_cron


async def tick(ctx: dict[str, Any]) -> None:
    pass


async def f(ctx: dict[str, Any]) -> None:
    pass


class Reports:
    async def nightly(self, ctx: dict[str, Any]) -> None:
        pass


US = 123_456  # the default microsecond

# (previous, kwargs, expected)
CASES: list[tuple[datetime, dict[str, Any], datetime]] = [
    # every second: strictly after, to the microsecond
    (datetime(2016, 6, 1, 12, 10, 10), {"second": None}, datetime(2016, 6, 1, 12, 10, 10, US)),
    (datetime(2016, 6, 1, 12, 10, 10, US), {"second": None}, datetime(2016, 6, 1, 12, 10, 11, US)),
    (datetime(2016, 6, 1, 12, 10, 10, 500_000), {"second": None}, datetime(2016, 6, 1, 12, 10, 11, US)),
    (datetime(2016, 6, 1, 12, 59, 59, 999_999), {"second": None}, datetime(2016, 6, 1, 13, 0, 0, US)),
    # every minute at second 0 (the defaults)
    (datetime(2016, 6, 1, 12, 10, 10), {}, datetime(2016, 6, 1, 12, 11, 0, US)),
    (datetime(2016, 6, 1, 12, 10, 0), {}, datetime(2016, 6, 1, 12, 10, 0, US)),
    (datetime(2016, 6, 1, 12, 10, 0, US), {}, datetime(2016, 6, 1, 12, 11, 0, US)),
    (datetime(2016, 6, 1, 23, 59, 30), {}, datetime(2016, 6, 2, 0, 0, 0, US)),
    # one second, one minute
    (datetime(2016, 6, 1, 12, 10, 10), {"second": 20}, datetime(2016, 6, 1, 12, 10, 20, US)),
    (datetime(2016, 6, 1, 12, 10, 30), {"second": 20}, datetime(2016, 6, 1, 12, 11, 20, US)),
    (datetime(2016, 6, 1, 12, 10, 10), {"minute": 11}, datetime(2016, 6, 1, 12, 11, 0, US)),
    (datetime(2016, 6, 1, 12, 11, 10), {"minute": 11}, datetime(2016, 6, 1, 13, 11, 0, US)),
    # hour sets
    (datetime(2032, 1, 1, 0, 5), {"hour": 4}, datetime(2032, 1, 1, 4, 0, 0, US)),
    (datetime(2032, 1, 1, 0, 0), {"hour": 4, "minute": {2, 4, 6}}, datetime(2032, 1, 1, 4, 2, 0, US)),
    (datetime(2032, 1, 1, 4, 2, 30), {"hour": 4, "minute": {2, 4, 6}}, datetime(2032, 1, 1, 4, 4, 0, US)),
    (datetime(2032, 1, 1, 4, 7), {"hour": 4, "minute": {2, 4, 6}}, datetime(2032, 1, 2, 4, 2, 0, US)),
    (datetime(2032, 1, 1, 5, 0), {"hour": {4, 8}, "minute": 0}, datetime(2032, 1, 1, 8, 0, 0, US)),
    (datetime(2032, 1, 1, 9, 0), {"hour": {4, 8}, "minute": 0}, datetime(2032, 1, 2, 4, 0, 0, US)),
    (datetime(2032, 1, 1, 8, 0, 0, US), {"hour": {4, 8}, "minute": 0}, datetime(2032, 1, 2, 4, 0, 0, US)),
    # weekdays (2001-01-01 is a Monday), by number and by name in any case
    (datetime(2001, 1, 1), {"weekday": 6}, datetime(2001, 1, 7, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "Sun"}, datetime(2001, 1, 7, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "TUES", "hour": 9}, datetime(2001, 1, 2, 9, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "tue", "hour": 9}, datetime(2001, 1, 2, 9, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "thurs"}, datetime(2001, 1, 4, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "thu"}, datetime(2001, 1, 4, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": {"sat", "sun"}}, datetime(2001, 1, 6, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": {"fri", 2}}, datetime(2001, 1, 3, 0, 0, 0, US)),
    (datetime(2001, 1, 1), {"weekday": "mon"}, datetime(2001, 1, 1, 0, 0, 0, US)),
    (datetime(2001, 1, 1, 10), {"weekday": "mon", "hour": 9}, datetime(2001, 1, 8, 9, 0, 0, US)),
    (datetime(2001, 1, 1), {"month": 11, "weekday": 2}, datetime(2001, 11, 7, 0, 0, 0, US)),
    # month rollover
    (datetime(2016, 6, 15), {"day": 1, "hour": 0, "minute": 0}, datetime(2016, 7, 1, 0, 0, 0, US)),
    (datetime(2032, 1, 31), {"day": 28}, datetime(2032, 2, 28, 0, 0, 0, US)),
    (datetime(2032, 2, 5), {"day": 31}, datetime(2032, 3, 31, 0, 0, 0, US)),
    (datetime(2032, 4, 1), {"day": 31}, datetime(2032, 5, 31, 0, 0, 0, US)),
    (datetime(2016, 1, 31, 23, 59, 59, 999_999), {"second": None}, datetime(2016, 2, 1, 0, 0, 0, US)),
    (
        datetime(2016, 6, 1, 12, 10, 10, 1),
        {"day": 1, "hour": 12, "minute": 10, "second": 10, "microsecond": 0},
        datetime(2016, 7, 1, 12, 10, 10),
    ),
    # year rollover
    (datetime(2016, 12, 31, 23, 59, 59, 500_000), {"second": None}, datetime(2017, 1, 1, 0, 0, 0, US)),
    (datetime(2016, 12, 31, 12), {"day": 1, "hour": 0, "minute": 0}, datetime(2017, 1, 1, 0, 0, 0, US)),
    (datetime(2016, 3, 1), {"month": 1, "day": 1, "hour": 0}, datetime(2017, 1, 1, 0, 0, 0, US)),
    (
        datetime(2016, 6, 1, 12, 10, 11),
        {"month": 6, "day": 1, "hour": 12, "minute": 10, "second": 10},
        datetime(2017, 6, 1, 12, 10, 10, US),
    ),
    (datetime(2016, 12, 2), {"month": {3, 6}, "day": 15}, datetime(2017, 3, 15, 0, 0, 0, US)),
    # February 29th: only in leap years, and 2100 is not one
    (
        datetime(2021, 3, 1),
        {"month": 2, "day": 29, "hour": 0, "minute": 0},
        datetime(2024, 2, 29, 0, 0, 0, US),
    ),
    (datetime(2023, 2, 28, 23), {"month": 2, "day": 29}, datetime(2024, 2, 29, 0, 0, 0, US)),
    (datetime(2096, 3, 1), {"month": 2, "day": 29, "hour": 0}, datetime(2104, 2, 29, 0, 0, 0, US)),
    (datetime(2021, 1, 1), {"month": 2, "day": 29, "weekday": "mon"}, datetime(2044, 2, 29, 0, 0, 0, US)),
    (datetime(2023, 1, 1), {"day": 29}, datetime(2023, 1, 29, 0, 0, 0, US)),
    (datetime(2023, 1, 30), {"day": 29}, datetime(2023, 3, 29, 0, 0, 0, US)),
    # microseconds
    (datetime(2016, 6, 1, 12, 10, 10), {"second": 20, "microsecond": 0}, datetime(2016, 6, 1, 12, 10, 20)),
    (datetime(2016, 6, 1, 12, 10, 20), {"second": 20, "microsecond": 0}, datetime(2016, 6, 1, 12, 11, 20)),
    (datetime(2016, 6, 1, 12, 10, 20), {"second": 20, "microsecond": 1}, datetime(2016, 6, 1, 12, 10, 20, 1)),
    (
        datetime(2016, 6, 1, 12, 10, 20, 999_999),
        {"second": None, "microsecond": 999_999},
        datetime(2016, 6, 1, 12, 10, 21, 999_999),
    ),
    (datetime(2016, 6, 1, 12, 10, 0, 200_000), {}, datetime(2016, 6, 1, 12, 11, 0, US)),
    (datetime(2016, 6, 1, 12, 10, 0, 100_000), {}, datetime(2016, 6, 1, 12, 10, 0, US)),
    # every field given
    (
        datetime(2024, 1, 1),
        {"month": 12, "day": 25, "weekday": "wed", "hour": 7, "minute": 30, "second": 15, "microsecond": 5},
        datetime(2024, 12, 25, 7, 30, 15, 5),
    ),
    # other collections than sets
    (datetime(2032, 1, 1), {"hour": [9, 3], "minute": (0,)}, datetime(2032, 1, 1, 3, 0, 0, US)),
    (datetime(2032, 1, 1, 0, 0, 1), {"second": range(0, 60, 15)}, datetime(2032, 1, 1, 0, 0, 15, US)),
]


@pytest.mark.parametrize(("previous", "kwargs", "expected"), CASES)
def test_next_cron(previous: datetime, kwargs: dict[str, Any], expected: datetime) -> None:
    assert next_cron(previous, **kwargs) == expected


def _reference(previous: datetime, kwargs: dict[str, Any]) -> datetime:
    """Slow but obvious: walk the days, then every allowed (hour, minute, second) of a matching day."""

    def allowed(field: str, default: Any, lo: int, hi: int) -> list[int]:
        value = kwargs.get(field, default)
        if value is None:
            return list(range(lo, hi + 1))
        return sorted(value) if isinstance(value, set) else [value]

    months, days = allowed("month", None, 1, 12), allowed("day", None, 1, 31)
    weekdays = allowed("weekday", None, 0, 6)
    hours, minutes, seconds = (
        allowed("hour", None, 0, 23),
        allowed("minute", None, 0, 59),
        allowed("second", 0, 0, 59),
    )
    micro = kwargs.get("microsecond", US)
    day = previous.date()
    while True:
        if day.month in months and day.day in days and day.weekday() in weekdays:
            for h, m, s in itertools.product(hours, minutes, seconds):
                candidate = datetime(day.year, day.month, day.day, h, m, s, micro)
                if candidate > previous:
                    return candidate
        day += timedelta(days=1)


def _random_option(rng: random.Random, lo: int, hi: int, none_weight: int) -> int | set[int] | None:
    kind = rng.randrange(none_weight + 2)
    if kind == 0:
        return rng.randint(lo, hi)
    if kind == 1:
        return set(rng.sample(range(lo, hi + 1), rng.randint(1, 3)))
    return None


def test_next_cron_matches_a_brute_force_reference() -> None:
    rng = random.Random(20240229)
    checked = 0
    while checked < 300:
        kwargs: dict[str, Any] = {
            "month": _random_option(rng, 1, 12, 2),
            "day": _random_option(rng, 1, 31, 2),
            "weekday": _random_option(rng, 0, 6, 3),
            "hour": _random_option(rng, 0, 23, 2),
            "minute": _random_option(rng, 0, 59, 1),
            "second": rng.choice([0, 30, {0, 20, 40}, rng.randint(0, 59)]),
            "microsecond": rng.choice([0, US, 999_999]),
        }
        previous = datetime(2020, 1, 1) + timedelta(seconds=rng.randrange(8 * 366 * 86400))
        previous = previous.replace(microsecond=rng.choice([0, US, 500_000]))
        try:
            got = next_cron(previous, **kwargs)
        except ValueError:
            continue  # e.g. day=31 with month=2: covered by test_impossible_dates
        assert got == _reference(previous, kwargs), (previous, kwargs)
        checked += 1


def test_chained_ticks_every_second_across_midnight() -> None:
    dt = datetime(2016, 12, 31, 23, 59, 58)
    seen = []
    for _ in range(4):
        dt = next_cron(dt, second=None)
        seen.append(dt)
    assert seen == [
        datetime(2016, 12, 31, 23, 59, 58, US),
        datetime(2016, 12, 31, 23, 59, 59, US),
        datetime(2017, 1, 1, 0, 0, 0, US),
        datetime(2017, 1, 1, 0, 0, 1, US),
    ]


# --------------------------------------------------------------------------------------------------------
# Time zones


@pytest.mark.parametrize("tz", [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
def test_aware_input_keeps_its_tzinfo(tz: timezone) -> None:
    got = next_cron(datetime(2016, 12, 31, 23, 59, 30, tzinfo=tz), day=1, hour=0, minute=0)
    assert got == datetime(2017, 1, 1, 0, 0, 0, US, tzinfo=tz)
    assert got.tzinfo is tz
    assert next_cron(datetime(2016, 1, 1), day=1).tzinfo is None


def _new_york() -> ZoneInfo:
    try:
        return ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database on this machine
        pytest.skip("no time zone database")


def _chain(start: datetime, count: int, **kwargs: Any) -> list[datetime]:
    ticks, dt = [], start
    for _ in range(count):
        dt = next_cron(dt, **kwargs)
        ticks.append(dt)
    return ticks


def _walls(ticks: list[datetime]) -> list[datetime]:
    return [t.replace(tzinfo=None) for t in ticks]


def _gaps_s(ticks: list[datetime]) -> list[float]:
    return [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(ticks)]


def test_dst_spring_forward_daily_job_in_the_gap_still_fires() -> None:
    ny = _new_york()  # 2024-03-10: 02:00 EST -> 03:00 EDT
    got = next_cron(datetime(2024, 3, 10, 0, 0, tzinfo=ny), hour=2, minute=30)
    assert got.tzinfo is ny
    assert (got.replace(tzinfo=None), got.fold) == (datetime(2024, 3, 10, 2, 30, 0, US), 0)
    # The non-existent 02:30 (fold=0) is the instant 03:30 EDT = 07:30 UTC.
    assert got.timestamp() == datetime(2024, 3, 10, 7, 30, 0, US, tzinfo=UTC).timestamp()
    assert next_cron(got, hour=2, minute=30) == datetime(2024, 3, 11, 2, 30, 0, US, tzinfo=ny)


def test_dst_spring_forward_one_tick_per_real_minute() -> None:
    ny = _new_york()
    ticks = _chain(datetime(2024, 3, 10, 1, 58, 30, tzinfo=ny), 63, minute=None)
    walls = _walls(ticks)
    assert walls[:2] == [datetime(2024, 3, 10, 1, 59, 0, US), datetime(2024, 3, 10, 2, 0, 0, US)]
    assert walls[-3:] == [datetime(2024, 3, 10, h, m, 0, US) for h, m in [(2, 59), (4, 0), (4, 1)]]
    assert _gaps_s(ticks) == [60.0] * 62
    assert all(t.tzinfo is ny for t in ticks)


def test_dst_spring_forward_hourly() -> None:
    ny = _new_york()
    ticks = _chain(datetime(2024, 3, 10, 0, 45, tzinfo=ny), 4, minute=30)
    assert _walls(ticks) == [datetime(2024, 3, 10, h, 30, 0, US) for h in (1, 2, 4, 5)]
    assert _gaps_s(ticks) == [3600.0] * 3


def test_dst_fall_back_repeated_time_fires_once() -> None:
    ny = _new_york()  # 2024-11-03: 02:00 EDT -> 01:00 EST, so 01:00-01:59 happens twice
    first = next_cron(datetime(2024, 11, 3, 0, 0, tzinfo=ny), hour=1, minute=30)
    assert (first.replace(tzinfo=None), first.fold) == (datetime(2024, 11, 3, 1, 30, 0, US), 0)
    assert first.utcoffset() == timedelta(hours=-4)  # the first (EDT) occurrence
    tomorrow = datetime(2024, 11, 4, 1, 30, 0, US, tzinfo=ny)
    assert next_cron(first, hour=1, minute=30) == tomorrow
    # From the second pass of the hour (fold=1, e.g. a worker started then), 01:30 has passed today.
    assert next_cron(datetime(2024, 11, 3, 1, 15, fold=1, tzinfo=ny), hour=1, minute=30) == tomorrow


def test_dst_fall_back_every_minute_pauses_for_the_repeated_hour() -> None:
    ny = _new_york()
    ticks = _chain(datetime(2024, 11, 3, 0, 58, 30, tzinfo=ny), 63, minute=None)
    walls = _walls(ticks)
    assert walls == [datetime(2024, 11, 3, 0, 59, 0, US) + timedelta(minutes=i) for i in range(63)]
    assert [t.fold for t in ticks] == [0] * 63
    gaps = _gaps_s(ticks)
    assert gaps[60] == 3660.0  # 01:59 EDT -> 02:00 EST
    assert gaps[:60] + gaps[61:] == [60.0] * 61
    # From inside the second pass: the first match after the repeated hour, not 01:16 (already past) nor
    # anything later than 02:00.
    after = next_cron(datetime(2024, 11, 3, 1, 15, fold=1, tzinfo=ny), minute=None)
    assert after.replace(tzinfo=None) == datetime(2024, 11, 3, 2, 0, 0, US)
    assert after.utcoffset() == timedelta(hours=-5)
    after = next_cron(datetime(2024, 11, 3, 1, 15, 10, fold=1, tzinfo=ny), second=None)
    assert after.replace(tzinfo=None) == datetime(2024, 11, 3, 2, 0, 0, US)


def test_dst_ticks_strictly_increase_in_real_time() -> None:
    ny = _new_york()
    cases: list[tuple[datetime, dict[str, Any]]] = [
        (datetime(2024, 3, 9, 22, tzinfo=ny), {"minute": 0}),
        (datetime(2024, 11, 2, 22, tzinfo=ny), {"minute": 0}),
        (datetime(2024, 3, 10, 1, 59, 50, tzinfo=ny), {"second": None}),
        (datetime(2024, 11, 3, 1, 59, 50, tzinfo=ny), {"second": None}),
        (datetime(2024, 11, 3, 1, 59, 50, fold=1, tzinfo=ny), {"second": {0, 30}}),
        (datetime(2024, 3, 10, 0, 0, tzinfo=ny), {"hour": {1, 2, 3}, "minute": {0, 30}}),
        (datetime(2024, 11, 3, 0, 0, tzinfo=ny), {"hour": {0, 1, 2}, "minute": {0, 30}}),
    ]
    for start, kwargs in cases:
        ticks = _chain(start, 100, **kwargs)
        assert all(gap > 0 for gap in _gaps_s([start, *ticks])), (start, kwargs)
        walls = _walls([start, *ticks])
        assert walls == sorted(set(walls)), (start, kwargs)


# --------------------------------------------------------------------------------------------------------
# Impossible schedules


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": 2, "day": 31}, "day=31 never occurs in month=2"),
        ({"month": 2, "day": 30}, "day=30 never occurs in month=2"),
        ({"month": {2}, "day": {30, 31}}, "never occurs in month={2}"),
        ({"month": {4, 6, 9, 11}, "day": 31}, "day=31 never occurs in month="),
    ],
)
def test_impossible_dates(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        next_cron(datetime(2020, 1, 1), **kwargs)
    with pytest.raises(ValueError, match=r"^cron job 'cron:tick': .*never occurs"):
        cron(tick, **kwargs)


def test_possible_in_some_month_is_accepted() -> None:
    assert next_cron(datetime(2020, 1, 1), month={2, 3}, day=31) == datetime(2020, 3, 31, 0, 0, 0, US)


def test_search_stops_at_year_9999() -> None:
    with pytest.raises(ValueError, match="no date after 9999-12-31"):
        next_cron(datetime(9999, 12, 31, 23, 59, 59, 500_000), second=None)
    with pytest.raises(ValueError, match="no date after 9998-03-01"):
        next_cron(datetime(9998, 3, 1), month=2, day=29)


def test_next_cron_validates_its_fields() -> None:
    with pytest.raises(ValueError, match=r"^hour=25 is out of range 0-23$"):
        next_cron(datetime(2020, 1, 1), hour=25)
    with pytest.raises(TypeError, match="previous_dt must be a datetime"):
        next_cron(date(2020, 1, 1), hour=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# cron() and CronJob


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": 0}, "month=0 is out of range 1-12"),
        ({"month": 13}, "month=13 is out of range 1-12"),
        ({"day": 0}, "day=0 is out of range 1-31"),
        ({"day": 32}, "day=32 is out of range 1-31"),
        ({"weekday": 7}, "weekday=7 is out of range 0-6"),
        ({"weekday": -1}, "weekday=-1 is out of range 0-6"),
        ({"hour": 24}, "hour=24 is out of range 0-23"),
        ({"hour": 25}, "hour=25 is out of range 0-23"),
        ({"minute": 60}, "minute=60 is out of range 0-59"),
        ({"second": 60}, "second=60 is out of range 0-59"),
        ({"second": -1}, "second=-1 is out of range 0-59"),
        ({"microsecond": 1_000_000}, "microsecond=1000000 is out of range 0-999999"),
        ({"microsecond": -1}, "microsecond=-1 is out of range 0-999999"),
        ({"microsecond": None}, "microsecond=None must be an int in range 0-999999"),
        ({"microsecond": {0}}, "microsecond={0} must be an int in range 0-999999"),
        ({"minute": {1, 60}}, "minute={1, 60}: 60 is out of range 0-59"),
        ({"hour": set()}, "hour=set() is empty: give values in range 0-23, or None for any"),
        ({"weekday": frozenset()}, "weekday=frozenset() is empty"),
        ({"hour": True}, "hour=True is a bool, not an int in range 0-23"),
        ({"second": {True}}, "second={True}: True is a bool"),
        ({"microsecond": False}, "microsecond=False must be an int"),
        ({"hour": "5"}, "hour='5' must be an int in range 0-23, a non-empty set of them, or None"),
        ({"minute": 1.5}, "minute=1.5 must be an int in range 0-59"),
        ({"minute": {1.5}}, "minute={1.5}: 1.5 is not an int in range 0-59"),
        ({"weekday": "funday"}, "weekday='funday' is not a weekday: use 0-6 (0=Monday) or one of mon, tue"),
        ({"weekday": {"mon", "x"}}, "'x' is not a weekday"),
        ({"weekday": "monday"}, "weekday='monday' is not a weekday"),
        ({"run_at_startup": 1}, "run_at_startup=1 must be True or False"),
        ({"unique": None}, "unique=None must be True or False"),
        ({"keep_result_forever": "yes"}, "keep_result_forever='yes' must be True, False or None"),
        ({"job_id": ""}, "job_id='' must be a non-empty string or None"),
        ({"job_id": 5}, "job_id=5 must be a non-empty string or None"),
        ({"timeout": 0}, "timeout=0 must be a finite number of seconds > 0"),
        ({"timeout": -1}, "timeout=-1 must be a finite number of seconds > 0"),
        ({"timeout": timedelta(seconds=-1)}, "must be a finite number of seconds > 0"),
        ({"timeout": float("inf")}, "timeout=inf must be a finite number"),
        ({"timeout": True}, "timeout=True must be seconds (int or float), a timedelta, or None"),
        ({"timeout": "10"}, "timeout='10' must be seconds"),
        ({"keep_result": -0.5}, "keep_result=-0.5 must be a finite number of seconds >= 0"),
        ({"keep_result": float("nan")}, "keep_result=nan must be a finite number"),
        ({"max_tries": 0}, "max_tries=0 must be an int >= 1, or None"),
        ({"max_tries": 1.0}, "max_tries=1.0 must be an int >= 1, or None"),
        ({"max_tries": True}, "max_tries=True must be an int >= 1, or None"),
    ],
)
def test_cron_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        cron(tick, **kwargs)
    text = str(info.value)
    assert text.startswith("cron job 'cron:tick': "), text
    assert message in text
    assert "\n" not in text


def test_cron_validation_message_is_exact() -> None:
    with pytest.raises(ValueError) as info:
        cron(f, hour=25)
    assert str(info.value) == "cron job 'cron:f': hour=25 is out of range 0-23"
    with pytest.raises(ValueError) as info:
        cron(f, name="mine", hour=25)
    assert str(info.value) == "cron job 'mine': hour=25 is out of range 0-23"


def test_cron_rejects_non_callables_and_bad_names() -> None:
    with pytest.raises(ValueError, match="coroutine=42 is not callable"):
        cron(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^cron job 'cron:math.pi': coroutine='math.pi' is not callable$"):
        cron("math.pi")  # imports, but is a float
    with pytest.raises(ValueError, match=r"^cron job 'cron:no_such_module_xyz.f': cannot import"):
        cron("no_such_module_xyz.f")
    with pytest.raises(ValueError, match=r"^cron job 'cron:asyncio.no_such_fn': cannot import 'asyncio.no_such_fn'"):
        cron("asyncio.no_such_fn")
    with pytest.raises(ValueError, match="is not a dotted path"):
        cron("sleep")
    with pytest.raises(ValueError, match=r"^cron job: name='' must be a non-empty string$"):
        cron(tick, name="")
    with pytest.raises(ValueError, match=r"^cron job: coroutine=<.*Reports object at .*> is not callable$"):
        cron(Reports())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not callable"):
        CronJob("x", 3, None, None, None, None, None, 0, 0, False, True, None, None, 0, False, 1)  # type: ignore[arg-type]


def test_callable_without_qualname_needs_a_name() -> None:
    class Job:
        async def __call__(self, ctx: dict[str, Any]) -> None:
            pass

    with pytest.raises(ValueError, match=r"^cron job: cannot derive a name from .*, pass name=$"):
        cron(Job())
    assert cron(Job(), name="job").name == "job"


def test_name_defaults() -> None:
    assert cron(tick).name == "cron:tick"
    assert cron(Reports().nightly).name == "cron:Reports.nightly"
    assert cron(tick, name="custom").name == "custom"


def test_import_string_coroutine() -> None:
    job = cron("asyncio.sleep", hour=3)
    assert job.coroutine is asyncio.sleep
    assert job.name == "cron:asyncio.sleep"  # as arq: the path, not the function's qualname
    assert cron("asyncio:sleep").coroutine is asyncio.sleep
    assert cron("asyncio.sleep", name="nap").name == "nap"


def test_cron_defaults() -> None:
    job = cron(tick)
    assert (job.month, job.day, job.weekday, job.hour, job.minute, job.second) == (
        None,
        None,
        None,
        None,
        None,
        0,
    )
    assert job.microsecond == 123_456
    assert (job.run_at_startup, job.unique, job.job_id) == (False, True, None)
    assert (job.timeout_s, job.keep_result_s, job.keep_result_forever, job.max_tries) == (None, 0.0, False, 1)
    assert job.next_run is None
    assert job.coroutine is tick


def test_durations_become_float_seconds() -> None:
    job = cron(tick, timeout=timedelta(minutes=2), keep_result=timedelta(hours=1, milliseconds=500))
    assert job.timeout_s == 120.0 and isinstance(job.timeout_s, float)
    assert job.keep_result_s == 3600.5
    job = cron(tick, timeout=30, keep_result=5)
    assert (job.timeout_s, job.keep_result_s) == (30.0, 5.0)
    assert isinstance(job.timeout_s, float) and isinstance(job.keep_result_s, float)
    assert cron(tick, timeout=0.25, keep_result=None).keep_result_s is None


def test_fields_are_normalized() -> None:
    weekdays: set[int | str] = {"Mon", "fri", 2}
    # Other collections than sets are accepted at run time (as arq does), though not in the types.
    others: dict[str, Any] = {"hour": frozenset({1, 2}), "minute": [5, 5]}
    job = cron(tick, weekday=weekdays, job_id="fixed", max_tries=None, **others)
    assert job.weekday == {0, 2, 4}
    assert job.hour == {1, 2} and type(job.hour) is set
    assert job.minute == {5}
    assert cron(tick, weekday="SUN").weekday == 6
    assert (job.job_id, job.max_tries) == ("fixed", None)


def test_calculate_next() -> None:
    job = cron(tick, weekday="mon", hour=9, minute=30)
    job.calculate_next(datetime(2001, 1, 1, 10))
    assert job.next_run == datetime(2001, 1, 8, 9, 30, 0, US)
    assert job.next_run is not None
    job.calculate_next(job.next_run)
    assert job.next_run == datetime(2001, 1, 15, 9, 30, 0, US)
    job.hour = 30  # a field broken after construction is reported with the job's name
    with pytest.raises(ValueError, match=r"^cron job 'cron:tick': hour=30 is out of range 0-23$"):
        job.calculate_next(datetime(2001, 1, 1))


def test_repr() -> None:
    job = cron(tick, hour={3}, name="nightly")
    text = repr(job)
    assert text.startswith("<CronJob name=nightly coroutine=<function tick at ")
    assert " month=None day=None weekday=None hour={3} minute=None second=0 microsecond=123456 " in text
    assert text.endswith(" max_tries=1 next_run=None>")
