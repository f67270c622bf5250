"""Looking into a queue and its failed-job registry, and acting on them (``pool queue …``, ``pool failed …``).

Every function takes the ``PoolRedis`` client (typed Any: redis-py's reply types are unions over
decode_responses). Not on the hot path: these read with SCAN/XRANGE and act in several steps, so they are not
atomic with respect to running workers. Emptying a queue removes waiting jobs only; running jobs finish.
"""

from __future__ import annotations

from typing import Any

from .jobs import JobResult, JobStatus, deserialize_result, status_of_state
from .keys import CONSUMER_GROUP
from .queue import RedisQueue
from .utils import now_ms


async def queue_info(redis: Any, queue_name: str | None = None) -> dict[str, int]:
    """How many jobs are ready, running, deferred (incl. waiting for dependencies), parked (waiting for a
    max_concurrency slot) and failed for good."""
    queue = _queue(redis, queue_name)
    counts = await queue.counts()
    # the registry is scored by each record's expiry: the live ones are counted in one command
    counts["failed"] = int(await redis.zcount(queue.keys.failed, f"({now_ms()}", "+inf"))
    return counts


async def job_statuses(redis: Any, queue_name: str | None = None) -> list[tuple[str, JobStatus]]:
    """Every job of the queue that is not finished, with its status, plus the ids with a kept result."""
    queue = _queue(redis, queue_name)
    found: list[tuple[str, JobStatus]] = []
    async for key in redis.scan_iter(match=queue.keys.pattern("job:"), count=1000):
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
    keys = [key async for key in redis.scan_iter(match=queue.keys.pattern(), count=1000)]
    for start in range(0, len(keys), 500):
        await redis.delete(*keys[start : start + 500])
    return len(keys)


async def failed_ids(redis: Any, queue_name: str | None = None) -> list[str]:
    """Ids in the failed registry, latest expiry (so newest failure, for one failure_ttl) first; members whose
    record expired are dropped. Three round trips at most, however many failures there are."""
    queue = _queue(redis, queue_name)
    members = await redis.zrevrange(queue.keys.failed, 0, -1, withscores=True)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, _ in members:
            pipe.pttl(queue.keys.failed_job(job_id.decode()))
        ttls = await pipe.execute()
    registry = {job_id.decode(): (int(score), int(ttl)) for (job_id, score), ttl in zip(members, ttls, strict=True)}
    await _tidy_registry(redis, queue.keys.failed, registry)
    return [job_id for job_id, (_, ttl) in registry.items() if ttl != -2]


async def _tidy_registry(redis: Any, key: str, registry: dict[str, tuple[int, int]]) -> None:
    """Drop members (id -> (score, record's PTTL)) whose record is gone, and re-score by its expiry each one
    still scored by its failure time (the registry's form before it was scored by expiry), so that
    ``queue_info``'s count by score sees it."""
    now = now_ms()
    gone = [job_id for job_id, (_, ttl) in registry.items() if ttl == -2]
    rescore = {job_id: now + ttl for job_id, (score, ttl) in registry.items() if ttl > 0 and score <= now}
    if not gone and not rescore:
        return
    async with redis.pipeline(transaction=False) as pipe:
        if gone:
            pipe.zrem(key, *gone)
        if rescore:
            pipe.zadd(key, rescore, xx=True)
        await pipe.execute()


async def failed_jobs(redis: Any, queue_name: str | None = None) -> list[JobResult]:
    """The failed registry's records (see ``failed_ids``), read with one MGET per 1,000."""
    queue = _queue(redis, queue_name)
    ids = await failed_ids(redis, queue_name)
    payloads: list[bytes | None] = []
    for start in range(0, len(ids), 1000):
        payloads += await redis.mget([queue.keys.failed_job(i) for i in ids[start : start + 1000]])
    return [deserialize_result(p, redis.job_deserializer) for p in payloads if p is not None]


async def failed_job(redis: Any, job_id: str, queue_name: str | None = None) -> JobResult | None:
    """A failed job's record: function, arguments, the exception and its traceback."""
    payload = await redis.get(_queue(redis, queue_name).keys.failed_job(job_id))
    return None if payload is None else deserialize_result(payload, redis.job_deserializer)


async def requeue_failed(redis: Any, job_id: str, queue_name: str | None = None) -> bool:
    """Enqueue a failed job again under its id, with its arguments; True if it was."""
    queue = _queue(redis, queue_name)
    record = await failed_job(redis, job_id, queue_name)
    if record is None:
        return False
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
