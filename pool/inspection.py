"""Looking into a queue and its failed-job registry, and acting on them (``pool queue …``, ``pool failed …``).

Every function takes the ``PoolRedis`` client (typed Any: redis-py's reply types are unions over
decode_responses). Not on the hot path: these read with SCAN/XRANGE and act in several steps, so they are not
atomic with respect to running workers. Emptying a queue removes every job not started; running jobs finish.
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
    now = await _redis_now_ms(redis)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.scard(queue.keys.waiting)
        # the registry is scored by each record's expiry on Redis's clock: the live ones in one command
        pipe.zcount(queue.keys.failed, f"({now}", "+inf")
        waiting, failed = await pipe.execute()
    counts["deferred"] += int(waiting)
    counts["failed"] = int(failed)
    return counts


async def _redis_now_ms(redis: Any) -> int:
    """Redis's clock in ms: the failed registry's scores are expiry times on it (COMPLETE takes them from its
    TIME), so a reader whose host clock is off still counts what lives."""
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


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
    """Remove every job that has not started (ready, parked, deferred, and waiting for dependencies); returns
    how many. Running jobs finish, but jobs waiting on them are removed too: emptying leaves no backlog, and
    no job waits for one that is gone (it would report ``deferred`` forever). The ``dependents`` set of each
    removed job goes with it, so no key is left behind without a TTL."""
    queue = _queue(redis, queue_name)
    removed, running = await _empty_lanes(redis, queue)
    removed += await _empty_parked(redis, queue)
    removed += await _empty_deferred(redis, queue)
    removed += await _empty_waiting(redis, queue, removed, running)
    return len(removed)


async def _empty_lanes(redis: Any, queue: RedisQueue) -> tuple[list[str], list[str]]:
    """Remove the ready jobs; returns (their ids, the ids of the running jobs left alone)."""
    removed: list[str] = []
    running: list[str] = []
    for lane in queue.keys.lanes:
        running_entries = await _running_entry_ids(redis, lane)
        for entry_id, fields in await redis.xrange(lane):
            job_id = fields[b"id"].decode()
            if entry_id.decode() in running_entries:
                running.append(job_id)
                continue
            await redis.delete(queue.keys.job(job_id))
            await redis.xdel(lane, entry_id)
            removed.append(job_id)
    return removed, running


async def _empty_parked(redis: Any, queue: RedisQueue) -> list[str]:
    """Remove the jobs parked for a max_concurrency slot; returns the ids of those that still existed."""
    removed: list[str] = []
    for function in await redis.smembers(queue.keys.parked_functions):
        key = queue.keys.parked(function.decode())
        for job_id in await redis.lrange(key, 0, -1):
            if await redis.delete(queue.keys.job(job_id.decode())):
                removed.append(job_id.decode())
        await redis.delete(key)
    return removed


async def _empty_deferred(redis: Any, queue: RedisQueue) -> list[str]:
    removed: list[str] = []
    for job_id, _ in await queue.deferred_ids():
        await redis.delete(queue.keys.job(job_id))
        await redis.zrem(queue.keys.deferred, job_id)
        removed.append(job_id)
    return removed


async def _empty_waiting(redis: Any, queue: RedisQueue, removed_before: list[str], running: list[str]) -> list[str]:
    """Remove the jobs waiting for dependencies: those in the ``waiting`` set and any found through the
    ``dependents`` sets of the jobs removed before and of the running ones (so jobs enqueued before that set
    existed go too). Deletes the ``dependents`` sets of all removed jobs (a running job's own is deleted when
    it completes). Returns the ids removed here."""
    candidates = {i.decode() for i in await redis.smembers(queue.keys.waiting)}
    candidates |= await _dependents_of(redis, queue, removed_before + running)
    ordered = sorted(candidates)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ordered:
            pipe.hget(queue.keys.job(job_id), "s")
        states = await pipe.execute()
    removed = [job_id for job_id, state in zip(ordered, states, strict=True) if state == b"w"]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in removed:
            pipe.delete(queue.keys.job(job_id))
        for job_id in removed_before + removed:
            pipe.delete(queue.keys.dependents(job_id))
        if ordered:
            pipe.srem(queue.keys.waiting, *ordered)
        await pipe.execute()
    return removed


async def _dependents_of(redis: Any, queue: RedisQueue, job_ids: list[str]) -> set[str]:
    """Every job waiting, directly or through other waiting jobs, on one of ``job_ids``: one round trip per
    level of the dependency graph."""
    found: set[str] = set()
    frontier = job_ids
    while frontier:
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in frontier:
                pipe.smembers(queue.keys.dependents(job_id))
            members = await pipe.execute()
        frontier = sorted({m.decode() for group in members for m in group} - found)
        found.update(frontier)
    return found


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
    ``queue_info``'s count by score sees it. Judged and scored by Redis's clock, as COMPLETE scores them."""
    now = await _redis_now_ms(redis)
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
    return [_read_record(redis, i, p) for i, p in zip(ids, payloads, strict=True) if p is not None]


async def failed_job(redis: Any, job_id: str, queue_name: str | None = None) -> JobResult | None:
    """A failed job's record: function, arguments, the exception and its traceback."""
    payload = await redis.get(_queue(redis, queue_name).keys.failed_job(job_id))
    return None if payload is None else _read_record(redis, job_id, payload)


def _read_record(redis: Any, job_id: str, payload: bytes) -> JobResult:
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
