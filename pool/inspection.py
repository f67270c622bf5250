"""Looking into a queue and its failed-job registry, and acting on them (``pool queue …``, ``pool failed …``).

Every function takes the ``PoolRedis`` client (typed Any: redis-py's reply types are unions over
decode_responses). Not on the hot path: these read with SCAN/XRANGE and act in several steps, so they are not
atomic with respect to running workers. Emptying a queue removes waiting jobs only; running jobs finish.
"""

from __future__ import annotations

from typing import Any

from .jobs import (
    UNREADABLE,
    DeserializationError,
    JobResult,
    JobStatus,
    deserialize_result,
    status_of_state,
    unreadable_result,
)
from .keys import CONSUMER_GROUP
from .queue import RedisQueue


async def queue_info(redis: Any, queue_name: str | None = None) -> dict[str, int]:
    """How many jobs are ready, running, deferred (incl. waiting for dependencies), parked (waiting for a
    max_concurrency slot) and failed for good."""
    queue = _queue(redis, queue_name)
    counts = await queue.counts()
    counts["failed"] = len(await failed_ids(redis, queue_name))
    return counts


async def job_statuses(redis: Any, queue_name: str | None = None) -> list[tuple[str, JobStatus]]:
    """Every job of the queue that is not finished, with its status, plus the ids with a kept result."""
    queue = _queue(redis, queue_name)
    found: list[tuple[str, JobStatus]] = []
    async for key in redis.scan_iter(match=queue.keys.job("*"), count=1000):
        job_id = key.decode()[len(queue.keys.job("")) :]
        _, _, state, _ = await queue.job_fields(job_id)
        found.append((job_id, status_of_state(state or "")))
    found += [(job_id, JobStatus.complete) for job_id in await queue.result_job_ids()]
    return sorted(found)


async def empty_queue(redis: Any, queue_name: str | None = None) -> int:
    """Remove the jobs waiting to run (ready, parked and deferred); returns how many. Running jobs are left
    alone."""
    queue = _queue(redis, queue_name)
    removed = 0
    for lane in queue.keys.lanes:
        running = await _running_entry_ids(redis, lane)
        for entry_id, fields in await redis.xrange(lane):
            if entry_id.decode() in running:
                continue
            await redis.delete(queue.keys.job(fields[b"id"].decode()))
            await redis.xdel(lane, entry_id)
            removed += 1
    for function in await redis.smembers(queue.keys.parked_functions):
        key = queue.keys.parked(function.decode())
        for job_id in await redis.lrange(key, 0, -1):
            removed += await redis.delete(queue.keys.job(job_id.decode()))
        await redis.delete(key)
    for job_id, _ in await queue.deferred_ids():
        await redis.delete(queue.keys.job(job_id))
        await redis.zrem(queue.keys.deferred, job_id)
        removed += 1
    return removed


async def delete_queue(redis: Any, queue_name: str | None = None) -> int:
    """Delete every key of the queue (jobs, results, registry, health); returns how many keys."""
    queue = _queue(redis, queue_name)
    keys = [key async for key in redis.scan_iter(match=queue.keys.prefix + "*", count=1000)]
    for start in range(0, len(keys), 500):
        await redis.delete(*keys[start : start + 500])
    return len(keys)


async def failed_ids(redis: Any, queue_name: str | None = None) -> list[str]:
    """Ids in the failed registry, newest failure first; entries whose record expired are dropped."""
    queue = _queue(redis, queue_name)
    ids = [i.decode() for i in await redis.zrevrange(queue.keys.failed, 0, -1)]
    exists = [await redis.exists(queue.keys.failed_job(i)) for i in ids]
    gone = [i for i, present in zip(ids, exists, strict=True) if not present]
    if gone:
        await redis.zrem(queue.keys.failed, *gone)
    return [i for i, present in zip(ids, exists, strict=True) if present]


async def failed_job(redis: Any, job_id: str, queue_name: str | None = None) -> JobResult | None:
    """A failed job's record: function, arguments, the exception and its traceback."""
    payload = await redis.get(_queue(redis, queue_name).keys.failed_job(job_id))
    if payload is None:
        return None
    try:
        return deserialize_result(payload, redis.job_deserializer)
    except DeserializationError as exc:  # a record pool did not write: listed with the reason, not a crash
        return unreadable_result(job_id, exc)


async def requeue_failed(redis: Any, job_id: str, queue_name: str | None = None) -> bool:
    """Enqueue a failed job again under its id, with its arguments; True if it was."""
    queue = _queue(redis, queue_name)
    record = await failed_job(redis, job_id, queue_name)
    if record is None:
        return False
    if record.function == UNREADABLE and isinstance(record.result, DeserializationError):
        raise record.result  # its function and arguments cannot be read: keep the record, say why
    await redis.delete(queue.keys.result(job_id), queue.keys.failed_job(job_id))
    await redis.zrem(queue.keys.failed, job_id)
    job = await redis.enqueue_job(
        record.function, *record.args, _job_id=job_id, _queue_name=queue.name, **record.kwargs
    )
    return job is not None


async def purge_failed(redis: Any, queue_name: str | None = None) -> int:
    queue = _queue(redis, queue_name)
    ids = [i.decode() for i in await redis.zrange(queue.keys.failed, 0, -1)]
    if ids:
        await redis.delete(*[queue.keys.failed_job(i) for i in ids])
    await redis.delete(queue.keys.failed)
    return len(ids)


def _queue(redis: Any, queue_name: str | None) -> RedisQueue:
    return RedisQueue(redis, queue_name or redis.default_queue_name)


async def _running_entry_ids(redis: Any, lane: str) -> set[str]:
    try:
        pending: Any = await redis.xpending_range(lane, CONSUMER_GROUP, "-", "+", 100_000)
    except Exception:  # no group yet: nothing delivered
        return set()
    return {p["message_id"].decode() for p in pending}
