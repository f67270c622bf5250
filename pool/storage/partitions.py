"""Which partition of a queue a job lives in: the one rule producers, workers and ``Job`` handles share.

A partitioned queue (``queue_partitions = N``) is N queues under one name, each with its own hash tag
(pool/storage/keys.py: ``pool:{default}:…`` for partition 0, ``pool:{default#3}:…`` for partition 3), so a Redis
Cluster spreads them over its masters. A job's partition follows from its id alone, so uniqueness, ``Job(id)``
(status, result, abort) and the failed registry need nothing but the id and N:

- the partition key is the text between the first ``{`` and the next ``}`` of the id, when there is such a
  non-empty text (as Redis Cluster's hash tags: jobs that must live together, a job and the jobs it depends on,
  say, share a tag), else the whole id;
- the partition is CRC-32 of the partition key, modulo N (partition 0 when N is 1).

A function's ``max_concurrency`` L keeps its meaning across the partitions (at most L of its jobs run at once on
the whole queue) by a fixed split: partition p may run ``limit_share(L, N, p)`` of them, L // N plus one for the
first L mod N partitions, so the shares add up to L. Each partition enforces its share as an unpartitioned queue
enforces the whole limit, inside its own scripts (its ``running:<fn>`` set), so a crashed worker's share comes
back the same way, and nothing is added to the hot path. A limit below N would leave some partitions a share of
0, whose jobs of that function could never run: workers refuse it (``check_limits``).

Callbacks and cron ticks of a partitioned queue get ids with a tag (``callback_id``, ``cron_tick_id``): a callback
lives with its job (COMPLETE enqueues it in the same script), every tick of every cron job in one partition (the
leader's lock and fences live there).
"""

from __future__ import annotations

import zlib

CRON_TAG = "cron"  # the partition key of every cron tick of a partitioned queue


def partition_key(job_id: str) -> str:
    start = job_id.find("{")
    if start >= 0:
        end = job_id.find("}", start + 1)
        if end > start + 1:
            return job_id[start + 1 : end]
    return job_id


def partition_of(job_id: str, partitions: int) -> int:
    """The partition of ``job_id`` in a queue of ``partitions`` partitions."""
    if partitions <= 1:
        return 0
    return zlib.crc32(partition_key(job_id).encode()) % partitions


def cron_partition(partitions: int) -> int:
    """The partition that holds every cron tick (and the cron leader's lock and fences) of a queue."""
    return partition_of(CRON_TAG, partitions)


def tagged(job_id: str, key: str) -> str:
    """``job_id`` placed with the jobs whose partition key is ``key``: its own tag if it has one, else ``{key}``
    in front."""
    return job_id if partition_key(job_id) == key else f"{{{key}}}{job_id}"


def limit_share(limit: int, partitions: int, partition: int) -> int:
    """How many jobs of a function limited to ``limit`` (``max_concurrency``) partition ``partition`` of a queue
    of ``partitions`` partitions may run at once: the shares of all partitions add up to ``limit``."""
    if partitions <= 1:
        return limit
    return limit // partitions + (1 if partition < limit % partitions else 0)


def check_limits(limits: dict[str, int], partitions: int) -> None:
    """Refuse a ``max_concurrency`` below the partition count: some partitions' share would be 0."""
    for function, limit in limits.items():
        if limit < partitions:
            raise ValueError(
                f"function {function!r}: max_concurrency={limit} is below queue_partitions={partitions}; "
                "the limit is split over the partitions and each needs a share of at least 1 (raise the limit, "
                "or give the function a queue of its own without partitions)"
            )
