"""Crontab strings in ``cron()``: the schedule croniter reads, computed with the keyword form's timezone rules,
run once per tick by workers, and a bad string refused when the settings load."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from pool import PoolRedis, cron
from pool.worker.cron import CronJob, InvalidCrontab
from tests.helpers import wait_for
from tests.supervisor_utils import run_pool
from tests.worker_utils import running_worker

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
SPRING_2026, AUTUMN_2026 = date(2026, 3, 29), date(2026, 10, 25)  # Paris's DST changes (02:00 -> 03:00 -> 02:00)


async def noop(ctx: dict[str, Any]) -> None:
    return None


def ticks(job: CronJob, start: datetime, count: int) -> list[datetime]:
    found, previous = [], start
    for _ in range(count):
        job.calculate_next(previous)
        assert job.next_run is not None
        found.append(job.next_run)
        previous = job.next_run
    return found


def croniter_ticks(expression: str, start: datetime, count: int) -> list[datetime]:
    it = croniter(expression, start)
    return [it.get_next(datetime) for _ in range(count)]


EXPRESSIONS = [
    "*/5 * * * *",
    "0 9-17 * * mon-fri",
    "15 2 * * *",
    "0 0 1,15 * *",
    "0 12 * jan,jul sun",
    "0 0 13 * fri",  # day of month OR day of week, as cron has it
    "30 * * * * 10,40",  # seconds, the sixth field
    "@hourly",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_ticks_match_croniter_in_utc(expression: str) -> None:
    start = datetime(2026, 1, 1, 7, 3, 11, tzinfo=UTC)
    job = cron(noop, crontab=expression, microsecond=0)
    assert ticks(job, start, 300) == croniter_ticks(expression, start, 300)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_ticks_match_croniter_in_a_timezone_away_from_dst_changes(expression: str) -> None:
    """A year of ticks on New York's wall clock: the same as croniter's, except on the two days of a DST change
    (checked in the tests below)."""
    start = datetime(2026, 1, 1, tzinfo=NEW_YORK)
    job = cron(noop, crontab=expression, microsecond=0)

    def kept(found: list[datetime]) -> list[datetime]:
        return [t for t in found if t.year == 2026 and t.date() not in (date(2026, 3, 8), date(2026, 11, 1))]

    ours, theirs = ticks(job, start, 2000), croniter_ticks(expression, start, 2000)
    last = min(ours[-1], theirs[-1], key=lambda t: t.timestamp())
    assert [t for t in kept(ours) if t <= last] == [t for t in kept(theirs) if t <= last]
    assert all(a.timestamp() < b.timestamp() for a, b in itertools.pairwise(ours))


def test_spring_forward_moves_a_tick_in_the_gap_past_it() -> None:
    """02:15 does not exist on 29 March in Paris: the tick fires at 03:15 new time, the keyword form's rule
    (croniter would answer 03:00)."""
    job = cron(noop, crontab="15 2 * * *", microsecond=0)
    (tick,) = ticks(job, datetime(2026, 3, 28, 12, tzinfo=PARIS), 1)
    assert tick.timestamp() == datetime(2026, 3, 29, 3, 15, tzinfo=PARIS).timestamp()
    keyword = cron(noop, hour=2, minute=15, microsecond=0)
    assert ticks(keyword, datetime(2026, 3, 28, 12, tzinfo=PARIS), 1) == [tick]


def test_fall_back_runs_each_wall_time_once() -> None:
    """02:00-02:59 happens twice on 25 October in Paris: each wall time fires once, as with the keyword form
    (croniter fires the second pass too)."""
    job = cron(noop, crontab="*/20 2 * * *", microsecond=0)
    found = ticks(job, datetime(2026, 10, 25, 1, 30, tzinfo=PARIS), 4)
    assert [t.strftime("%d %H:%M") for t in found] == ["25 02:00", "25 02:20", "25 02:40", "26 02:00"]
    assert len(croniter_ticks("*/20 2 * * *", datetime(2026, 10, 25, 1, 30, tzinfo=PARIS), 6)) == 6
    stamps = [t.timestamp() for t in found]
    assert stamps == sorted(stamps)


def test_the_two_call_forms_are_the_same_schedule() -> None:
    positional, keyword = cron("*/5 * * * *", noop), cron(noop, crontab="*/5 * * * *")
    start = datetime(2026, 5, 1, 10, 3, tzinfo=PARIS)
    assert positional.name == keyword.name == "cron:noop"
    assert ticks(positional, start, 5) == ticks(keyword, start, 5)
    assert ticks(positional, start, 1)[0] == datetime(2026, 5, 1, 10, 5, 0, 123456, tzinfo=PARIS)  # arq's offset


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cron(noop, crontab="* * *"), "crontab '* * *' is not valid: "),
        (lambda: cron(noop, crontab="61 * * * *"), "crontab '61 * * * *' is not valid: "),
        (lambda: cron(noop, crontab="0 0 31 2 *"), "crontab '0 0 31 2 *' never fires: "),
        (lambda: cron(noop, crontab="0 0 L * *"), "'L' and 'W' are not supported"),
        (lambda: cron(noop, crontab="0 0 * * 5#2"), "'day#n' are not supported"),
        (lambda: cron(noop, crontab="* * * * *", hour=3), "not both (also got hour)"),
        (lambda: cron(noop, "* * * * *"), "the crontab string first, then the function"),
        (lambda: cron(noop, crontab="*/0\n* * * *"), "step '0' in field 0 is not acceptable"),
        (lambda: cron(noop, crontab="@reboot"), "'@reboot' is not supported"),
        (lambda: cron(noop, crontab="R * * * *"), "random values ('R') are not supported"),
        (lambda: cron(noop, crontab="0 r(0-5) * * *"), "random values ('R') are not supported"),
        (lambda: cron(noop, crontab="*/5,R * * * *"), "random values ('R') are not supported"),
    ],
)
def test_a_bad_crontab_is_refused_with_one_line(call: Any, message: str) -> None:
    with pytest.raises(InvalidCrontab) as caught:
        call()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


async def record_tick(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("ticks", ctx["job_id"])


async def test_workers_run_each_crontab_tick_once(redis: PoolRedis, redis_url: str) -> None:
    every_second = cron("* * * * * *", record_tick, name="each-second", microsecond=0)
    kwargs: dict[str, Any] = {"cron_jobs": [every_second], "poll_delay": 0.05}
    async with running_worker(redis_url, **kwargs), running_worker(redis_url, **kwargs):
        await wait_for(lambda: _count(redis, 3), timeout=10, message="3 crontab ticks")
    await asyncio.sleep(0)
    found = [t.decode() for t in await redis.lrange("ticks", 0, -1)]
    assert len(found) == len(set(found)), f"a tick ran twice: {found}"
    stamps = sorted(int(t.rsplit(":", 1)[1]) for t in found)
    assert all(b - a == 1000 for a, b in itertools.pairwise(stamps)), f"ticks are not one per second: {stamps}"


async def _count(redis: PoolRedis, n: int) -> bool:
    return int(await redis.llen("ticks")) >= n


BAD_SETTINGS = """
from pool import cron

async def report(ctx):
    return 1

class WorkerSettings:
    functions = [report]
    cron_jobs = [cron('*/5 * * *', report)]
"""


@pytest.mark.parametrize("command", ["worker", "start"])
def test_pool_exits_2_on_a_bad_crontab(tmp_path: Path, redis_url: str, command: str) -> None:
    app_dir = Path(os.path.realpath(tmp_path))
    (app_dir / "badcron.py").write_text(BAD_SETTINGS)
    proc = run_pool(command, "badcron.WorkerSettings", "--redis", redis_url, cwd=app_dir)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2, lines
    assert len(lines) == 1, lines
    assert "settings 'badcron.WorkerSettings': cron job 'cron:report': crontab '*/5 * * *' is not valid" in lines[0]
    assert "Traceback" not in lines[0]


def test_a_tick_is_an_aware_instant_later_than_the_last() -> None:
    """What the scheduler relies on, whatever the zone: each tick a later instant than the one before."""
    job = cron(noop, crontab="0 * * * *")
    start = datetime(2026, 10, 25, 0, 30, tzinfo=PARIS)
    found = ticks(job, start, 6)
    assert all(b.timestamp() - a.timestamp() >= 3600 - 1e-6 for a, b in itertools.pairwise(found))
    assert found[0] - start < timedelta(hours=1)


def test_a_crontab_without_croniter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "croniter", None)  # as if the extra were not installed
    with pytest.raises(InvalidCrontab, match=r"need croniter: pip install 'pool-queue\[cron\]'$"):
        cron("*/5 * * * *", noop)
    assert cron(noop, minute=5).next_run is None  # the keyword form needs nothing
