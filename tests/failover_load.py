"""Load through a Sentinel failover: producers enqueue throughout, workers run every job, a fault strikes.

Shared by tests/test_sentinel_failover.py (short runs) and ``python -m tests.chaos --sentinel`` (long ones). Every
run is recorded outside Redis (tests/apps/failover.py), so the count survives whatever the failover erases:

- lost: enqueues the client saw acknowledged (``enqueue_job`` returned a Job, or None for an id already there)
  whose job never ran;
- ran_twice: jobs that ran more than once; same_try_twice: a job run twice with the same ``job_try`` (a failover
  erased its start, so the attempt counter could not see the second run);
- pause_s: the longest time without any job run, from the fault to the end of the load (how long producers and
  workers were cut off; a healthy queue runs a job every few ms here).

A producer whose enqueue fails (the connection dropped, ``NotReplicated``) enqueues again with the same
``_job_id``: safe, since an id already there is not enqueued twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pool import create_pool
from pool.redis.settings import RedisSettings
from tests.apps.failover import RUN_LOG
from tests.helpers import wait_for


@dataclass
class FailoverReport:
    acked: int = 0
    enqueue_errors: int = 0
    lost: int = 0
    ran_twice: int = 0
    same_try_twice: int = 0
    pause_s: float = float("nan")
    error_kinds: collections.Counter[str] = field(default_factory=collections.Counter)

    def line(self, label: str) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.error_kinds.most_common())
        return (
            f"{label}: acked={self.acked} lost={self.lost} ran_twice={self.ran_twice} "
            f"same_try_twice={self.same_try_twice} longest_pause={self.pause_s:.2f}s "
            f"enqueue_errors={self.enqueue_errors}" + (f" ({kinds})" if kinds else "")
        )


def read_runs(directory: Path) -> list[tuple[str, int]]:
    """(job id, job_try) of every run recorded in ``directory``, in the order they were recorded."""
    return [(job_id, job_try) for job_id, job_try, _ in read_timed_runs(directory)]


def read_timed_runs(directory: Path) -> list[tuple[str, int, float]]:
    path = directory / RUN_LOG
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        job_id, job_try, at = ([*line.split(" "), "", ""])[:3]
        if job_try.isdigit():
            runs.append((job_id, int(job_try), float(at or 0)))
    return runs


async def run_through_fault(
    settings: RedisSettings,
    run_dir: Path,
    fault: Callable[[], Awaitable[None]],
    *,
    producers: int = 3,
    before_s: float = 2.0,
    after_s: float = 6.0,
    drain_timeout: float = 90.0,
    prefix: str = "job",
) -> FailoverReport:
    """Enqueue ``record_run`` jobs from ``producers`` tasks for ``before_s``, strike with ``fault()``, go on for
    ``after_s``, then wait (up to ``drain_timeout``) until every acknowledged job ran. The workers are the
    caller's, running in ``run_dir``."""
    report = FailoverReport()
    acked: set[str] = set()
    fault_at: list[float] = []  # time.time() of the fault
    load_ended: list[float] = []
    stop = asyncio.Event()
    pool = await create_pool(settings)

    async def produce(number: int) -> None:
        sequence = 0
        while not stop.is_set():
            job_id = f"{prefix}-{number}-{sequence}"
            try:
                await pool.enqueue_job("record_run", sequence, _job_id=job_id)
            except Exception as exc:  # enqueue again, same id: see the module docstring
                report.enqueue_errors += 1
                report.error_kinds[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            acked.add(job_id)
            sequence += 1
            await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(produce(number)) for number in range(producers)]
    try:
        await asyncio.sleep(before_s)
        fault_at.append(time.time())
        await fault()
        await asyncio.sleep(after_s)
    finally:
        load_ended.append(time.time())
        stop.set()
        await asyncio.gather(*tasks)
        await pool.aclose()

    def all_ran() -> bool:
        return acked <= {job_id for job_id, _ in read_runs(run_dir)}

    with contextlib.suppress(AssertionError):  # what did not run is counted as lost below
        await wait_for(all_ran, timeout=drain_timeout, message="every acknowledged job ran")
    runs = read_runs(run_dir)
    per_job = collections.Counter(job_id for job_id, _ in runs)
    per_try = collections.Counter(runs)
    report.acked = len(acked)
    report.lost = len(acked - set(per_job))
    report.ran_twice = sum(1 for count in per_job.values() if count > 1)
    report.same_try_twice = sum(1 for count in per_try.values() if count > 1)
    report.pause_s = longest_pause(run_dir, fault_at[0], load_ended[0])
    return report


def longest_pause(run_dir: Path, start: float, end: float) -> float:
    """The longest time between two consecutive job runs (or ``start``/``end``) within [start, end]."""
    times = sorted(at for _, _, at in read_timed_runs(run_dir) if start <= at <= end)
    edges = [start, *times, end]
    return max(later - earlier for earlier, later in itertools.pairwise(edges))
