"""Looking into a queue and its failed-job registry, and acting on them (``pool queue …``, ``pool failed …``).

Every function takes the ``PoolRedis`` client (typed Any: redis-py's reply types are unions over
decode_responses). The Redis commands are pool/storage/ops.py's (through ``RedisQueue``); this module decodes
and shapes what they return. Not on the hot path: these read with SCAN/XRANGE and act in several steps, so they
are not atomic with respect to running workers. Emptying a queue removes every job not started; running jobs finish.
"""

from __future__ import annotations

from typing import Any

from ..storage.codecs import UNREADABLE, JobResult, deserialize_result, unreadable_result
from ..storage.partitions import partition_of
from ..storage.queue import RedisQueue, partition_count, partitions_of
from .jobs import DeserializationError, JobStatus, status_of_state


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
