"""A worker's slots shared by the fetch loops of a partitioned queue (one loop per partition): every free slot
is filled while jobs wait in any partition, the loops together never start more than ``max_jobs``, and busy
partitions take turns at the slots."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from pool import PoolRedis, create_pool
from pool.redis.settings import RedisSettings
from pool.storage.partitions import partition_of
from pool.worker import FETCH_BLOCK_MS
from tests.helpers import wait_for
from tests.worker_utils import running_worker

PARTITIONS = 4
MAX_JOBS = 8
# Every job expected to start must start well before a blocked read of an idle partition ends by itself
# (FETCH_BLOCK_MS): a start that waits for a read to time out, or for a running job to end, fails the test.
START_DEADLINE_S = FETCH_BLOCK_MS / 1000 / 2


class Gates:
    """What the test sees of its jobs: which started (in order), how many ran at once at most; each job
    waits until the test lets one more job (or all) finish."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.running = 0
        self.peak = 0
        self.exits = asyncio.Semaphore(0)
        self.open = False

    def release(self, count: int) -> None:
        for _ in range(count):
            self.exits.release()

    def open_all(self) -> None:
        self.open = True
        self.release(MAX_JOBS * 4)


gates = Gates()


async def gated(ctx: dict[str, Any]) -> None:
    gates.started.append(ctx["job_id"])
    gates.running += 1
    gates.peak = max(gates.peak, gates.running)
    try:
        if not gates.open:
            await gates.exits.acquire()
    finally:
        gates.running -= 1
        gates.finished.append(ctx["job_id"])


async def short(ctx: dict[str, Any]) -> None:
    gates.started.append(ctx["job_id"])
    gates.running += 1
    gates.peak = max(gates.peak, gates.running)
    try:
        await asyncio.sleep(0.005)  # the job's own work: it holds its slot for a moment
    finally:
        gates.running -= 1
        gates.finished.append(ctx["job_id"])


@pytest.fixture(autouse=True)
def fresh_gates() -> Iterator[None]:
    global gates
    gates = Gates()
    yield
    gates.open_all()


def ids_in(partition: int, count: int, prefix: str) -> list[str]:
    """``count`` job ids that fall in ``partition`` of a queue of PARTITIONS partitions."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        job_id = f"{prefix}-{n}"
        if partition_of(job_id, PARTITIONS) == partition:
            found.append(job_id)
        n += 1
    return found


async def enqueue(pool: PoolRedis, function: str, per_partition: list[int], prefix: str) -> list[str]:
    ids = [job_id for p, count in enumerate(per_partition) for job_id in ids_in(p, count, f"{prefix}{p}")]
    jobs = await pool.enqueue_many(pool.prepare(function, _job_id=job_id) for job_id in ids)
    assert all(job is not None for job in jobs)
    return ids


@pytest.fixture
async def partitioned(redis_url: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=PARTITIONS)
    yield pool
    await pool.aclose()


@pytest.mark.parametrize("burst", [False, True], ids=["serving", "burst"])
async def test_every_slot_is_filled_when_jobs_fall_unevenly_over_the_partitions(
    partitioned: PoolRedis, redis_url: str, burst: bool
) -> None:
    """8 jobs, 8 slots, 4 partitions holding 5, 1, 1 and 1 of them: all 8 run at once, although the partition
    with 5 can only be fetched in quarters (2 + 2 + 1) and the jobs do not end until the test lets them."""
    ids = await enqueue(partitioned, "gated", [5, 1, 1, 1], "uneven")
    async with running_worker(
        redis_url, functions=[gated], max_jobs=MAX_JOBS, queue_partitions=PARTITIONS, burst=burst
    ) as worker:
        await wait_for(lambda: len(gates.started) == len(ids), timeout=START_DEADLINE_S, message="all 8 jobs started")
        assert sorted(gates.started) == sorted(ids) and gates.peak == MAX_JOBS
        gates.open_all()
        await wait_for(lambda: worker.jobs_complete == len(ids), message="all 8 jobs complete")


async def test_jobs_arriving_in_bursts_while_others_run_fill_free_slots_and_never_more(
    partitioned: PoolRedis, redis_url: str
) -> None:
    """Bursts of jobs land in partitions whose loops are blocked reading an empty partition, or waiting for a
    slot, while other jobs run: whatever is free is filled within the deadline, never more than max_jobs run at
    once, and a job ending makes room for exactly one more."""
    enqueued: list[str] = []

    async def settled(round_name: str) -> None:
        expected = min(len(enqueued), len(gates.finished) + MAX_JOBS)
        await wait_for(
            lambda: len(gates.started) >= expected,
            timeout=START_DEADLINE_S,
            message=f"{round_name}: {expected} jobs started",
        )
        assert gates.peak <= MAX_JOBS, f"{round_name}: {gates.peak} jobs ran at once"
        assert len(gates.started) == expected, round_name

    async with running_worker(redis_url, functions=[gated], max_jobs=MAX_JOBS, queue_partitions=PARTITIONS) as worker:
        enqueued += await enqueue(partitioned, "gated", [6, 0, 0, 0], "first")
        await settled("6 jobs in one partition of an idle worker")
        enqueued += await enqueue(partitioned, "gated", [0, 1, 1, 1], "second")  # 3 jobs, 2 free slots
        await settled("one job in each other partition")
        for round_number, spread in enumerate([[1, 0, 0, 0], [0, 2, 0, 1], [3, 3, 3, 3], [0, 0, 5, 0]]):
            ended = len(gates.finished) + 3
            gates.release(3)
            await wait_for(lambda: len(gates.finished) >= ended, message="3 jobs finished")  # noqa: B023
            await settled(f"round {round_number}: 3 jobs ended")
            enqueued += await enqueue(partitioned, "gated", spread, f"round{round_number}-")
            await settled(f"round {round_number}: {spread} enqueued")
        gates.open_all()
        await wait_for(lambda: worker.jobs_complete == len(enqueued), message="every job complete")
    assert sorted(gates.started) == sorted(enqueued) and gates.peak <= MAX_JOBS


async def test_busy_partitions_take_turns_at_the_slots(partitioned: PoolRedis, redis_url: str) -> None:
    """Every partition full of jobs: over the run, each partition gets a fair share of the starts (counted over
    the first half of the jobs, while all partitions still have jobs waiting)."""
    per_partition = 40
    await enqueue(partitioned, "short", [per_partition] * PARTITIONS, "busy")
    async with running_worker(redis_url, functions=[short], max_jobs=MAX_JOBS, queue_partitions=PARTITIONS) as worker:
        total = per_partition * PARTITIONS
        await wait_for(lambda: worker.jobs_complete == total, timeout=30, message="every job complete")
    first_half = Counter(partition_of(job_id, PARTITIONS) for job_id in gates.started[: total // 2])
    share = total // 2 // PARTITIONS
    assert all(share // 2 <= first_half[p] <= share * 3 // 2 for p in range(PARTITIONS)), first_half
    assert gates.peak <= MAX_JOBS, f"{gates.peak} jobs ran at once"


@pytest.mark.parametrize(("max_jobs", "max_burst_jobs"), [(12, 5), (4, 7)])
async def test_a_burst_over_partitions_starts_no_more_than_max_burst_jobs(
    partitioned: PoolRedis, redis_url: str, max_jobs: int, max_burst_jobs: int
) -> None:
    """The partitions' loops of a burst run fetch at the same time, or wait for slots while others start jobs;
    together they start max_burst_jobs jobs, not that many each, nor a quarter of the slots each."""
    ids = await enqueue(partitioned, "short", [10] * PARTITIONS, "capped")
    async with running_worker(
        redis_url,
        functions=[short],
        max_jobs=max_jobs,
        queue_partitions=PARTITIONS,
        burst=True,
        max_burst_jobs=max_burst_jobs,
    ) as worker:
        await wait_for(lambda: worker.jobs_complete >= max_burst_jobs, message=f"{max_burst_jobs} jobs complete")
    assert len(gates.started) == max_burst_jobs and worker.jobs_started == max_burst_jobs
    assert (await partitioned.queue_info())["ready"] == len(ids) - max_burst_jobs
