"""Looking into a queue and its failed-job registry, and acting on them (``pool queue …``, ``pool failed …``).

Every function takes the ``PoolRedis`` client (typed Any: redis-py's reply types are unions over
decode_responses). The Redis commands are pool/storage/ops.py's (through ``RedisQueue``); this module decodes
and shapes what they return. Not on the hot path: these read with SCAN/XRANGE and act in several steps, so they
are not atomic with respect to running workers. Emptying a queue removes every job not started; running jobs finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..storage.codecs import UNREADABLE, JobDef, JobResult, deserialize_result, unreadable_result
from ..storage.keys import PRIORITIES
from ..storage.partitions import cron_partition, partition_of
from ..storage.queue import RedisQueue, partition_count, partitions_of
from .jobs import DeserializationError, Job, JobStatus, status_of_state


async def queue_info(redis: Any, queue_name: str | None = None) -> dict[str, int]:
    """How many jobs are ready, running, deferred (incl. waiting for dependencies), parked (waiting for a
    max_concurrency slot) and failed for good: summed over the queue's partitions."""
    total: dict[str, int] = {}
    for queue in await _queues(redis, queue_name):
        for name, count in (await queue.info()).items():
            total[name] = total.get(name, 0) + count
    return total


async def job_statuses(redis: Any, queue_name: str | None = None) -> list[tuple[str, JobStatus]]:
    """Every job of the queue that is not finished, with its status, plus the ids with a kept result."""
    found: list[tuple[str, JobStatus]] = []
    for queue in await _queues(redis, queue_name):
        found += [(job_id, status_of_state(state or "")) for job_id, state in await queue.job_states()]
        found += [(job_id, JobStatus.complete) for job_id in await queue.result_job_ids()]
    return sorted(found)


async def empty_queue(redis: Any, queue_name: str | None = None) -> int:
    """Remove every job that has not started (ready, parked, deferred, and waiting for dependencies); returns
    how many. Running jobs finish, but jobs waiting on them are removed too: emptying leaves no backlog, and
    no job waits for one that is gone (it would report ``deferred`` forever). The ``dependents`` set of each
    removed job goes with it, so no key is left behind without a TTL."""
    return sum([await queue.empty() for queue in await _queues(redis, queue_name)])


async def delete_queue(redis: Any, queue_name: str | None = None) -> int:
    """Delete every key of the queue (jobs, results, registry, health; every partition's); returns how many."""
    return sum([await queue.delete_all() for queue in await _queues(redis, queue_name)])


async def failed_ids(redis: Any, queue_name: str | None = None) -> list[str]:
    """Ids in the failed registry, latest expiry (so newest failure, for one failure_ttl) first (partition by
    partition); members whose record expired are dropped. Three round trips a partition at most."""
    return [job_id for queue in await _queues(redis, queue_name) for job_id in await queue.failed_ids()]


async def failed_jobs(redis: Any, queue_name: str | None = None) -> list[JobResult]:
    """The failed registry's records (see ``failed_ids``), read with one MGET per 1,000."""
    records: list[JobResult] = []
    for queue in await _queues(redis, queue_name):
        ids = await queue.failed_ids()
        payloads = await queue.failed_records(ids)
        records += [_read_record(redis, i, p) for i, p in zip(ids, payloads, strict=True) if p is not None]
    return records


async def failed_job(redis: Any, job_id: str, queue_name: str | None = None) -> JobResult | None:
    """A failed job's record: function, arguments, the exception and its traceback."""
    queue = await _job_queue(redis, job_id, queue_name)
    (payload,) = await queue.failed_records([job_id])
    return None if payload is None else _read_record(redis, job_id, payload)


def _read_record(redis: Any, job_id: str, payload: bytes) -> JobResult:
    try:
        return deserialize_result(payload, redis.job_deserializer)
    except DeserializationError as exc:  # a record pool did not write: listed with the reason, not a crash
        return unreadable_result(job_id, exc)


async def requeue_failed(redis: Any, job_id: str, queue_name: str | None = None) -> bool:
    """Enqueue a failed job again under its id, with its arguments; True if it was."""
    queue = await _job_queue(redis, job_id, queue_name)
    record = await failed_job(redis, job_id, queue_name)
    if record is None:
        return False
    if record.function == UNREADABLE and isinstance(record.result, DeserializationError):
        raise record.result  # its function and arguments cannot be read: keep the record, say why
    await queue.forget_failed(job_id)
    job = await redis.enqueue_job(
        record.function, *record.args, _job_id=job_id, _queue_name=queue.name, **record.kwargs
    )
    return job is not None


async def purge_failed(redis: Any, queue_name: str | None = None) -> int:
    return sum([await queue.purge_failed() for queue in await _queues(redis, queue_name)])


async def _partitions(redis: Any, name: str) -> int:
    """The queue's partition count: the client's, else the one recorded in Redis, so ``pool queue`` and
    ``pool failed`` see every partition with no setting of their own."""
    configured = partitions_of(redis, name)
    return configured if configured > 1 else await partition_count(redis, name, 1)


async def _queues(redis: Any, queue_name: str | None) -> list[RedisQueue]:
    """Every partition of the queue (one, unless it is partitioned)."""
    name = queue_name or redis.default_queue_name
    return [RedisQueue(redis, name, partition) for partition in range(await _partitions(redis, name))]


async def _job_queue(redis: Any, job_id: str, queue_name: str | None) -> RedisQueue:
    name = queue_name or redis.default_queue_name
    return RedisQueue(redis, name, partition_of(job_id, await _partitions(redis, name)))


async def recorded_partitions(redis: Any, queue_names: Sequence[str]) -> dict[str, int]:
    """Each queue's partition count as recorded in Redis (1 when none is): a client made with these counts
    (``create_pool(..., queue_partitions=...)``) finds every job's partition and may requeue into the queue."""
    return {name: await _partitions(redis, name) for name in queue_names}


# --- pages of a queue (the dashboard): each a few ranges with a COUNT, whatever the queue's length -----------------

PAGE_STATES = ("ready", "running", "deferred")


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job of a page: its id, where it is, and what the listing knows of it without reading the job."""

    job_id: str
    partition: int
    priority: int | None = None  # ready and running jobs: their lane
    consumer: str | None = None  # running jobs: the worker holding it
    idle_ms: int | None = None  # running jobs: since it was delivered or last heartbeat
    due_ms: int | None = None  # deferred jobs: when it is due (epoch ms)


@dataclass(frozen=True, slots=True)
class JobPage:
    rows: list[JobRow]
    total: int  # jobs in that state, over every partition
    next_cursor: str | None  # for the next page; None on the last


async def jobs_page(redis: Any, state: str, cursor: str | None, count: int, queue_name: str | None = None) -> JobPage:
    """A page of the ready, running or deferred jobs: partitions in order; ready and running jobs by lane, highest
    priority first, each lane in queue order; deferred ones soonest due first. ``cursor`` is the previous page's
    ``next_cursor`` (None: the first page). A page costs a pipeline per partition for the counts, then one range
    read with a COUNT per lane or partition it draws from: never the whole queue."""
    if state not in PAGE_STATES:
        raise ValueError(f"unknown state {state!r}: one of {', '.join(PAGE_STATES)}")
    queues = await _queues(redis, queue_name)
    if state == "deferred":
        return await _deferred_page(queues, cursor, count)
    sizes = [await queue.lane_sizes() for queue in queues]
    in_state = [[length - pending if state == "ready" else pending for length, pending in s] for s in sizes]
    total = sum(map(sum, in_state))
    start_partition, start_priority, after = _stream_cursor(cursor)
    rows: list[JobRow] = []
    for queue in queues[start_partition:]:
        for priority in reversed(PRIORITIES):
            if (queue.partition, -priority) < (start_partition, -start_priority):
                continue  # before the cursor's lane
            position = after if (queue.partition, priority) == (start_partition, start_priority) else "0-0"
            if not in_state[queue.partition][priority]:
                continue
            want = count - len(rows)
            if state == "ready":
                ready = await queue.ready_page(priority, position, want)
                found = [JobRow(job_id, queue.partition, priority=priority) for _, job_id in ready]
                last = ready[-1][0] if ready else position
            else:
                running = await queue.running_page(priority, position, want)
                found = [JobRow(j, queue.partition, priority, consumer, idle) for _, j, consumer, idle in running]
                last = running[-1][0] if running else position
            rows += found
            if len(rows) >= count:
                return JobPage(rows, total, f"{queue.partition}:{priority}:{last}")
    return JobPage(rows, total, None)


def _stream_cursor(cursor: str | None) -> tuple[int, int, str]:
    if not cursor:
        return 0, PRIORITIES[-1], "0-0"
    try:
        partition, priority, after = cursor.split(":", 2)
        return int(partition), int(priority), after
    except ValueError:
        raise ValueError(f"invalid page cursor {cursor!r}") from None


def _offset_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        partition, offset = cursor.split(":", 1)
        return int(partition), max(int(offset), 0)
    except ValueError:
        raise ValueError(f"invalid page cursor {cursor!r}") from None


async def _deferred_page(queues: list[RedisQueue], cursor: str | None, count: int) -> JobPage:
    start_partition, offset = _offset_cursor(cursor)
    rows: list[JobRow] = []
    total = 0
    next_cursor = None
    for queue in queues:
        if queue.partition < start_partition or len(rows) >= count:
            total += (await queue.deferred_page(0, 1))[0]  # ZCARD, and one member at most
            continue
        position = offset if queue.partition == start_partition else 0
        size, items = await queue.deferred_page(position, count - len(rows))
        total += size
        rows += [JobRow(job_id, queue.partition, due_ms=due) for job_id, due in items]
        if len(rows) >= count and position + len(items) < size:
            next_cursor = f"{queue.partition}:{position + len(items)}"
        elif len(rows) >= count and next_cursor is None:
            next_cursor = f"{queue.partition + 1}:0" if queue.partition + 1 < len(queues) else None
    return JobPage(rows, total, next_cursor)


@dataclass(frozen=True, slots=True)
class FailedPage:
    records: list[JobResult]
    total: int
    next_cursor: str | None


async def failed_page(redis: Any, cursor: str | None, count: int, queue_name: str | None = None) -> FailedPage:
    """A page of the failed registry, partition by partition, newest record first in each: a ZCOUNT, a
    ZREVRANGEBYSCORE ... LIMIT and an MGET per partition drawn from (a ZCOUNT for the others)."""
    start_partition, offset = _offset_cursor(cursor)
    records: list[JobResult] = []
    total = 0
    next_cursor = None
    queues = await _queues(redis, queue_name)
    for queue in queues:
        if queue.partition < start_partition or len(records) >= count:
            total += (await queue.failed_page(0, 0))[0] if count else 0
            continue
        position = offset if queue.partition == start_partition else 0
        size, items = await queue.failed_page(position, count - len(records))
        total += size
        records += [_read_record(redis, job_id, payload) for job_id, payload in items if payload is not None]
        if len(records) >= count:
            end = position + len(items)
            next_cursor = (
                f"{queue.partition}:{end}"
                if end < size
                else (f"{queue.partition + 1}:0" if queue.partition + 1 < len(queues) else None)
            )
    return FailedPage(records, total, next_cursor)


async def job_infos(redis: Any, job_ids: Sequence[str], queue_name: str | None = None) -> list[JobDef | None]:
    """Each job's definition (or its result, once it has one), read at once: a page's rows."""
    name = queue_name or redis.default_queue_name

    async def info(job_id: str) -> JobDef | None:
        try:
            return await Job(job_id, redis, _queue_name=name, _deserializer=redis.job_deserializer).info()
        except DeserializationError:  # a payload this reader cannot decode: listed without its details
            return None

    return list(await asyncio.gather(*(info(job_id) for job_id in job_ids)))


@dataclass(frozen=True, slots=True)
class JobDetail:
    job_id: str
    status: JobStatus
    info: JobDef | None  # a JobResult once it finished
    failed: JobResult | None  # its record in the failed registry, if any
    error: str | None = None  # why its payload could not be read


async def job_detail(redis: Any, job_id: str, queue_name: str | None = None) -> JobDetail:
    """What is known of one job: status, definition or result, failed record."""
    name = queue_name or redis.default_queue_name
    job = Job(job_id, redis, _queue_name=name, _deserializer=redis.job_deserializer)
    status = await job.status()
    failed = await failed_job(redis, job_id, name)
    try:
        info = await job.info()
    except DeserializationError as exc:
        return JobDetail(job_id, status, None, failed, str(exc))
    return JobDetail(job_id, status, info, failed)


async def abort_job(redis: Any, job_id: str, queue_name: str | None = None, wait_s: float = 0.5) -> bool:
    """Abort a job (``Job.abort``): one not started is aborted at once; a running one is asked to stop and
    waited for ``wait_s`` at most. True when it ended aborted in that time."""
    name = queue_name or redis.default_queue_name
    return await Job(job_id, redis, _queue_name=name, _deserializer=redis.job_deserializer).abort(timeout=wait_s)


@dataclass(frozen=True, slots=True)
class CronState:
    last_ticks_ms: list[int | None]  # per cron name asked for, the last tick enqueued
    lock_ttl_ms: int  # the leadership lock's remaining time; -2 when nobody leads


async def cron_state(redis: Any, cron_names: Sequence[str], queue_name: str | None = None) -> CronState:
    """The cron jobs' last ticks and the leadership lock, from the queue's cron partition."""
    queues = await _queues(redis, queue_name)
    fences, ttl = await queues[cron_partition(len(queues))].cron_state(cron_names)
    return CronState(fences, ttl)
