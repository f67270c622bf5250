"""The synchronous facade over the storage ops: the same code the async ``RedisQueue`` runs.

The supervisor's parent process is a single-threaded loop without an event loop, so it drives
pool/storage/ops.py with ``run_sync`` on a redis-py client of its own: short timeouts and no hidden retries, so a
dead Redis costs the parent loop at most a second or two, never a hang. Synchronous applications enqueue through
it too (``pool.rq.Queue``), with the same ENQUEUE records as the async client. Each method is one line; there is
no logic here to keep in step with the async side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from ..redis.replication import Durability
from ..redis.settings import RedisSettings, ssl_options
from ..redis.sync_sentinel import close, master_client
from . import ops
from .drivers import run_sync
from .keys import QueueKeys
from .ops import Op
from .partitions import cron_partition
from .queue import enqueue_args

T = TypeVar("T")


def connect(settings: RedisSettings, *, socket_timeout: float = 2, retries: int = 0) -> redis.Redis:
    """A sync client for ``settings``: 1 s to connect, ``socket_timeout`` per reply, ``retries`` quick retries of
    a call whose connection failed (none by default: the supervisor's loop must not wait; an application's
    enqueue may retry, every script being safe to run twice).

    Behind Sentinel (pool/redis/sync_sentinel.py) each Sentinel has 0.5 s to connect and 1 s to answer, and the
    client re-asks them for the master every ``sentinel_check_interval``: after a promotion a call fails at most
    once on the demoted master's dropped connection, and writes go to the new master within that interval."""
    common: dict[str, Any] = {
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
        "socket_connect_timeout": 1,
        "socket_timeout": socket_timeout,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries) if retries else Retry(NoBackoff(), 0),
    }
    if settings.unix_socket_path:
        return redis.Redis(unix_socket_path=settings.unix_socket_path, **common)
    if settings.cluster:
        # typed as the Redis it stands in for: the ops run on it through run_sync's cluster branch
        return cast(redis.Redis, _cluster_client(settings, common))
    if settings.sentinel:
        sentinel_timeouts = {"socket_connect_timeout": 0.5, "socket_timeout": 1, "retry": Retry(NoBackoff(), 0)}
        return master_client(settings, sentinel_timeouts, ssl=settings.ssl, **ssl_options(settings), **common)
    host = settings.host if isinstance(settings.host, str) else settings.host[0][0]
    client = redis.Redis(host=host, port=settings.port, ssl=settings.ssl, **ssl_options(settings), **common)
    if _is_cluster_node(client):  # as create_pool does: talk to a cluster node as the cluster it is
        client.close()
        return connect(dataclasses.replace(settings, cluster=True), socket_timeout=socket_timeout, retries=retries)
    return client


def _is_cluster_node(client: redis.Redis) -> bool:
    """Whether the server has cluster mode on; False when it cannot tell now (Redis down: asked again never)."""
    try:
        return bool(int(client.info("cluster").get("cluster_enabled", 0)))
    except (redis.RedisError, OSError):
        return False


def _cluster_client(settings: RedisSettings, common: dict[str, Any]) -> RedisCluster:
    """A sync cluster client: it learns the nodes from ``settings.host``'s, with the same short timeouts."""
    addresses = settings.host if isinstance(settings.host, list) else [(settings.host, settings.port)]
    kwargs = {key: value for key, value in common.items() if key != "db"}
    return RedisCluster(
        startup_nodes=[ClusterNode(host, int(port)) for host, port in addresses],
        ssl=settings.ssl,
        **ssl_options(settings),
        **kwargs,
    )


class SyncQueue:
    """One queue seen from a sync client."""

    def __init__(self, client: redis.Redis, queue_name: str, partitions: int = 1) -> None:
        self.client = client
        self.partitions = partitions  # of a partitioned queue: counts and hand-backs cover them all
        self.keys = QueueKeys(queue_name)  # partition 0's: health is written there
        self.every_partition = [QueueKeys(queue_name, partition) for partition in range(partitions)]
        # the partition of the cron leader's lock, fences and ticks (pool/storage/partitions.py)
        self.cron_keys = self.every_partition[cron_partition(partitions)]
        self.durability: Durability | None = None  # wait_replicas, for the cron ticks the supervisor enqueues

    @classmethod
    def connect(cls, settings: RedisSettings, queue_name: str, partitions: int = 1) -> SyncQueue:
        queue = cls(connect(settings), queue_name, partitions)
        queue.durability = Durability.from_settings(settings.wait_replicas, settings.wait_timeout)
        return queue

    def close(self) -> None:
        close(self.client)

    def run(self, op: Op[T]) -> T:
        """Any storage op on this client (the cron duty's turns, say)."""
        return run_sync(self.client, op)

    def ping(self) -> None:
        run_sync(self.client, ops.ping())

    def ensure_group(self) -> int:
        return sum(run_sync(self.client, ops.ensure_group(keys)) for keys in self.every_partition)

    def eviction_policy(self) -> str | None:
        return run_sync(self.client, ops.eviction_policy())

    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for keys in self.every_partition:
            for name, count in run_sync(self.client, ops.counts(keys)).items():
                total[name] = total.get(name, 0) + count
        return total

    def depth(self) -> tuple[dict[str, int], list[tuple[int, int]]]:
        """The queue's jobs by state, as ``pool queue info`` counts them (``queue_info``), and (ready, running)
        by priority, summed over the partitions: what the metrics export."""
        states: dict[str, int] = {}
        lanes: list[tuple[int, int]] = []
        for keys in self.every_partition:
            for name, count in run_sync(self.client, ops.queue_info(keys)).items():
                states[name] = states.get(name, 0) + count
            mine = run_sync(self.client, ops.lane_counts(keys))
            lanes = mine if not lanes else [(a + c, b + d) for (a, b), (c, d) in zip(lanes, mine, strict=True)]
        return states, lanes

    def hand_back(self, consumer: str) -> int:
        return sum(run_sync(self.client, ops.hand_back(keys, consumer)) for keys in self.every_partition)

    def write_supervisor_health(self, supervisor_id: str, entry: str, ttl_ms: int) -> None:
        key = self.keys.supervisor_health(supervisor_id)
        run_sync(self.client, ops.write_health(key, self.keys.supervisors, supervisor_id, entry, ttl_ms))

    def clear_supervisor_health(self, supervisor_id: str) -> None:
        key = self.keys.supervisor_health(supervisor_id)
        run_sync(self.client, ops.clear_health(key, self.keys.supervisors, supervisor_id))

    # --- the synchronous client (pool.rq) ------------------------------------------------------------------------

    def enqueue(self, batches: Sequence[Sequence[tuple[Any, ...]]]) -> list[int]:
        """ENQUEUE batches of ``job_record``s in one round trip: 1 per job enqueued, 0 per id taken."""
        return run_sync(self.client, ops.enqueue_calls([enqueue_args(self.keys, records) for records in batches]))

    def job_exists(self, job_id: str) -> bool:
        return run_sync(self.client, ops.job_exists(self.keys, job_id))

    def job_fields(self, job_id: str) -> tuple[bytes | None, int, str | None, int]:
        return run_sync(self.client, ops.job_fields(self.keys, job_id))

    def result_payload(self, job_id: str) -> bytes | None:
        return run_sync(self.client, ops.value(self.keys.result(job_id)))

    def job_snapshot(self, job_id: str) -> tuple[tuple[bytes | None, str | None, int], bytes | None, bytes | None]:
        return run_sync(self.client, ops.job_snapshot(self.keys, job_id))

    def failed_record(self, job_id: str) -> bytes | None:
        return run_sync(self.client, ops.failed_records(self.keys, [job_id]))[0]

    def result_or_register_waiter(self, job_id: str, ttl_ms: int) -> tuple[bytes | None, str | None, str]:
        return run_sync(self.client, ops.result_or_register_waiter(self.keys, job_id, ttl_ms))

    def notified_result(self, job_id: str, since: str, block_ms: int) -> bytes | None:
        return run_sync(self.client, ops.notified_result(self.keys, job_id, since, block_ms))

    def record_result(self, job_id: str, payload: bytes, ttl_ms: int, failure_ttl_ms: int) -> None:
        run_sync(self.client, ops.record_result(self.keys, job_id, payload, ttl_ms, failure_ttl_ms))

    def ready_job_ids(self) -> list[str]:
        return run_sync(self.client, ops.ready_job_ids(self.keys))

    def empty(self) -> int:
        return run_sync(self.client, ops.empty_queue(self.keys))

    def delete_all(self) -> int:
        return run_sync(self.client, ops.delete_queue(self.keys))
