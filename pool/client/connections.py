"""Connecting to Redis: ``RedisSettings``, ``create_pool`` and the client with ``enqueue_job``.

``PoolRedis`` (also exported as ``ArqRedis`` for code migrating from arq) is a ``redis.asyncio.Redis`` with
the producer side of the queue on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError

from .. import tracing
from ..redis.autopipeline import AutoPipeline, must_bypass
from ..redis.cluster_client import ReshardingSafeCluster, refreshing, run_with_wait
from ..redis.fastpath import FastPath, ScriptCall
from ..redis.node_fastpath import NodeFastPaths
from ..redis.replication import Durability, NotReplicated
from ..redis.retries import transient
from ..redis.sentinel import MasterConnection, MasterSSLConnection, SentinelMaster, master_of
from ..redis.settings import RedisSettings, ssl_options, tls_options
from ..redis.tls_probe import permanent_problem, tls_mismatch
from ..storage.codecs import JobDef, JobResult, deserialize_job, deserialize_result, job_try_before_end
from ..storage.keys import DEFAULT_QUEUE_NAME
from ..storage.partitions import partition_key, partition_of, tagged
from ..storage.queue import (
    PartitionMismatch,
    RedisQueue,
    job_queue,
    partition_count,
    partitions_of,
    queue_for,
    scripts_for,
)
from ..storage.serializers import Deserializer, Serializer, with_job_types
from ..utils import caused_by, ms_to_datetime
from . import inspection
from .enqueue_batch import EnqueueBatcher
from .jobs import Job, JobStatus
from .specs import (
    BULK_BATCH,
    BULK_BATCH_BYTES,
    DEFAULT_MAX_PAYLOAD_BYTES,
    EXPIRES_EXTRA_MS,
    DependsOn,
    EnqueueDefaults,
    JobSpec,
    function_name,
    prepare_job,
)

logger = logging.getLogger("pool.connections")

# redis-py's asyncio pool raises "Too many connections" once exhausted (100 by default in redis-py 8); a worker
# whose 100 jobs all use ctx['redis'] must wait for a connection instead, so pools are blocking and bounded.
DEFAULT_MAX_CONNECTIONS = 500


class QueueClient:
    """The queue side of a client (enqueue, bulk enqueue, inspection), on top of a redis-py asyncio client: a
    single Redis (``PoolRedis``) or a Redis Cluster (``PoolRedisCluster``)."""

    def __init__(
        self,
        *args: Any,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        default_queue_name: str = DEFAULT_QUEUE_NAME,
        expires_extra_ms: int = EXPIRES_EXTRA_MS,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        durability: Durability | None = None,
        queue_partitions: int | Mapping[str, int] = 1,
        **kwargs: Any,
    ) -> None:
        self.queue_partitions = queue_partitions
        self._agreed: set[str] = set()  # queues whose partition count was checked against Redis's
        self.max_payload_bytes = max_payload_bytes
        self.durability = durability  # WAIT for replicas after the writes that matter (pool/redis/replication.py)
        self.job_serializer = job_serializer
        self.job_deserializer = job_deserializer
        self.default_queue_name = default_queue_name
        self.expires_extra_ms = expires_extra_ms
        self._enqueue_batcher: EnqueueBatcher | None = None  # made on first use, in the caller's event loop
        super().__init__(*args, **kwargs)

    @property
    def _as_redis(self) -> Redis:
        """This client, typed as the redis-py client it also is (a cluster client quacks the same)."""
        return cast(Redis, self)

    async def run_script(
        self, script: AsyncScript, calls: Iterable[ScriptCall], *, durable: bool = False, what: str = "a write"
    ) -> list[Any]:
        """The replies of (keys, args) calls of one script, in order, through redis-py's command path (which
        loads the script when Redis lacks it). ``durable``: with ``wait_replicas`` set, the calls are followed by
        WAIT on their connection, and ``NotReplicated`` (carrying the replies as ``.replies``) is raised when too
        few replicas confirm them."""
        wait = self.durability.wait_args if durable and self.durability is not None else ()
        if not wait:
            return [await script(keys=keys, args=args) for keys, args in calls]
        async with self._as_redis.pipeline(transaction=False) as pipe:  # one connection, so WAIT covers the calls
            pipe.scripts.add(script)  # type: ignore[arg-type]  # (the async pipeline holds AsyncScripts)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command(*wait)
            replies = await pipe.execute()
        return self._confirmed(replies, wait, what)

    def _confirmed(self, replies: list[Any], wait: Sequence[Any], what: str) -> list[Any]:
        """The script replies, once WAIT's reply (last, when ``wait``) says enough replicas have them."""
        if not wait:
            return replies
        confirmed = int(replies.pop())
        assert self.durability is not None
        try:
            self.durability.check(confirmed, what)
        except NotReplicated as exc:
            exc.replies = replies
            self._not_replicated()
            raise
        return replies

    def _not_replicated(self) -> None:
        """Too few replicas confirmed a write: a hook for the client to look for a failover."""

    def partitions(self, queue_name: str) -> int:
        """How many partitions ``queue_name`` has (``queue_partitions``: one count for every queue, or per name)."""
        return partitions_of(self, queue_name)

    def _queue(self, queue_name: str | None, partition: int = 0) -> RedisQueue:
        return queue_for(self._as_redis, queue_name or self.default_queue_name, partition)

    def _queues(self, queue_name: str | None) -> list[RedisQueue]:
        """Every partition of a queue."""
        name = queue_name or self.default_queue_name
        return [self._queue(name, partition) for partition in range(self.partitions(name))]

    async def _agree_partitions(self, queue_name: str) -> None:
        """Before this client's first enqueue to a queue: its partition count must be the one producers and
        workers recorded in Redis (a job's partition follows from its id and the count: with two counts, jobs
        would be written where readers do not look). Once per queue and client."""
        if queue_name in self._agreed:
            return
        wanted = self.partitions(queue_name)
        recorded = await partition_count(self._as_redis, queue_name, wanted)
        if recorded != wanted:
            raise PartitionMismatch(queue_name, recorded, wanted)
        self._agreed.add(queue_name)

    async def enqueue_job(
        self,
        function: str | Any,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | None = None,
        _job_try: int | None = None,
        _ttl: float | timedelta | None = None,
        _depends_on: DependsOn = None,
        _allow_dependency_failure: bool = False,
        _on_success: str | Any | None = None,
        _on_failure: str | Any | None = None,
        _priority: int = 0,
        _at_front: bool = False,
        _job_timeout: float | timedelta | None = None,
        _keep_result: float | timedelta | None = None,
        _failure_ttl: float | timedelta | None = None,
        _description: str | None = None,
        **kwargs: Any,
    ) -> Job | None:
        """Enqueue ``function`` (a registered name, or the function itself); None if ``_job_id`` is taken.

        Uniqueness is decided inside one Lua script, so concurrent enqueues of one id yield exactly one job.
        Beyond arq: ``_ttl`` (= ``_expires``), ``_depends_on`` (jobs or ids that must complete first; if one
        fails for good this job fails too, unless ``_allow_dependency_failure``), ``_on_success`` /
        ``_on_failure`` (functions enqueued with ``(job_id, result)`` / ``(job_id, "Type: message")``),
        ``_priority`` (0-3, higher runs first; see docs/features.md for the anti-starvation policy) and
        ``_at_front`` (the same as the top priority, 3). rq's per-job options, which override the function's and
        the worker's settings for this job: ``_job_timeout`` (negative: no timeout), ``_keep_result`` (how long
        its result is kept; 0 not at all, negative forever), ``_failure_ttl`` (how long a failure stays in the
        failed registry; 0 not at all) and ``_description`` (shown by ``Job.info()``).
        """

        def prepare() -> JobSpec:  # inside the enqueue span, when there is one: the job carries that span
            return self.prepare(
                function,
                *args,
                _job_id=_job_id,
                _queue_name=_queue_name,
                _defer_until=_defer_until,
                _defer_by=_defer_by,
                _expires=_expires if _expires is not None else _ttl,
                _job_try=_job_try,
                _depends_on=_depends_on,
                _allow_dependency_failure=_allow_dependency_failure,
                _on_success=_on_success,
                _on_failure=_on_failure,
                _priority=_priority,
                _at_front=_at_front,
                _job_timeout=_job_timeout,
                _keep_result=_keep_result,
                _failure_ttl=_failure_ttl,
                _description=_description,
                **kwargs,
            )

        tracer = tracing.tracer
        if tracer is None:
            return await self._send(prepare())
        with tracer.enqueue_span(function_name(function), _queue_name or self.default_queue_name) as span:
            job = await self._send(prepare())
            if _job_id is not None or job is not None:
                span.set_attribute(tracing.JOB_ID, job.job_id if job is not None else str(_job_id))
            span.set_outcome("enqueued" if job is not None else "duplicate", None)
            return job

    async def _send(self, spec: JobSpec) -> Job | None:
        """ENQUEUE one prepared job; None if its id is taken."""
        await self._agree_partitions(spec.queue_name)
        batcher = self._enqueue_batcher
        if batcher is None:
            batcher = self._enqueue_batcher = EnqueueBatcher(self._enqueue_batch)
        if not await batcher.enqueue(spec):
            return None
        return Job(spec.job_id, self._as_redis, _queue_name=spec.queue_name, _deserializer=self.job_deserializer)

    async def _enqueue_batch(self, specs: list[JobSpec]) -> list[Any]:
        """ENQUEUE's reply for each of the specs ``enqueue_job`` calls sent together (pool/client/enqueue_batch.py);
        one spec, the common case, as one call of its own. A NotReplicated carries the same: a reply per spec."""
        if len(specs) > 1:
            return await self._enqueue_specs(specs, f"enqueueing {len(specs)} jobs")
        (spec,) = specs
        queue = self._queue(spec.queue_name, spec.partition)
        try:
            ((enqueued,),) = await self.run_script(
                queue.scripts.enqueue,
                [queue.enqueue_args([spec.record(queue)])],
                durable=True,
                what=f"enqueueing job {spec.job_id}",
            )
        except NotReplicated as exc:
            exc.replies = _per_spec(exc.replies, None)
            raise
        return [enqueued]

    def prepare(
        self,
        function: str | Any,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | None = None,
        _job_try: int | None = None,
        _depends_on: DependsOn = None,
        _allow_dependency_failure: bool = False,
        _on_success: str | Any | None = None,
        _on_failure: str | Any | None = None,
        _priority: int = 0,
        _at_front: bool = False,
        _job_timeout: float | timedelta | None = None,
        _keep_result: float | timedelta | None = None,
        _failure_ttl: float | timedelta | None = None,
        _description: str | None = None,
        **kwargs: Any,
    ) -> JobSpec:
        """Validate and encode a job without sending it: for ``enqueue_many``. Errors (bad arguments, values
        the serializer can't encode) are raised here, in the caller. (pool/client/specs.py does it, for the
        synchronous client too.)"""
        defaults = EnqueueDefaults(
            queue_name=self.default_queue_name,
            serializer=self.job_serializer,
            max_payload_bytes=self.max_payload_bytes,
            expires_extra_ms=self.expires_extra_ms,
        )
        spec = prepare_job(
            function,
            args,
            kwargs,
            defaults,
            job_id=_job_id,
            queue_name=_queue_name,
            defer_until=_defer_until,
            defer_by=_defer_by,
            expires=_expires,
            job_try=_job_try,
            depends_on=_depends_on,
            allow_dependency_failure=_allow_dependency_failure,
            on_success=_on_success,
            on_failure=_on_failure,
            priority=_priority,
            at_front=_at_front,
            job_timeout=_job_timeout,
            keep_result=_keep_result,
            failure_ttl=_failure_ttl,
            description=_description,
        )
        partitions = self.partitions(spec.queue_name)
        if partitions > 1:
            if spec.depends_on:
                spec.job_id = _with_dependencies(
                    spec.job_id, _job_id is None, spec.depends_on, spec.queue_name, partitions
                )
            spec.partition = partition_of(spec.job_id, partitions)
        return spec

    async def enqueue_many(self, specs: Iterable[JobSpec]) -> list[Job | None]:
        """Enqueue prepared jobs, a script call per ``BULK_BATCH`` (all in one round trip); each id's uniqueness is
        honoured on its own, atomically per job.
        Returns a Job for each enqueued spec, None where the id was taken."""
        specs = list(specs)
        if not specs:
            return []
        for queue_name in {spec.queue_name for spec in specs}:
            await self._agree_partitions(queue_name)
        replies = await self._enqueue_specs(specs, f"enqueueing {len(specs)} jobs")
        return [
            Job(spec.job_id, self._as_redis, _queue_name=spec.queue_name, _deserializer=self.job_deserializer)
            if ok
            else None
            for spec, ok in zip(specs, replies, strict=True)
        ]

    async def _enqueue_specs(self, specs: list[JobSpec], what: str) -> list[Any]:
        """ENQUEUE's reply for each spec, in order: a call per ``BULK_BATCH`` of one queue partition, all written
        before the first reply is read (one round trip in all, and Redis runs a batch while the next is packed)."""
        if not any(spec.partition for spec in specs):  # no partitioned queue: batches in the specs' order
            calls = self._enqueue_calls(_batches_in_order(specs, BULK_BATCH, BULK_BATCH_BYTES))
            order: list[int] | None = None
        else:  # by partition: replies come back in the order the batches were sent
            grouped = list(_batches_by_partition(specs, BULK_BATCH, BULK_BATCH_BYTES))
            calls = self._enqueue_calls((where, [specs[index] for index in batch]) for where, batch in grouped)
            order = [index for _, batch in grouped for index in batch]
        try:
            batches = await self.run_script(scripts_for(self).enqueue, calls, durable=True, what=what)
        except NotReplicated as exc:  # written all the same: its replies, too, are given per spec
            exc.replies = _per_spec(exc.replies, order)
            raise
        return _per_spec(batches, order)

    def _enqueue_calls(self, batches: Iterable[tuple[tuple[str, int], list[JobSpec]]]) -> Iterator[ScriptCall]:
        """One ENQUEUE call per batch, made only when it is about to be sent. (Each record has its own nonce:
        with one per call, a second spec with the same id in that call would pass for a replay of the first.)"""
        for (queue_name, partition), batch in batches:
            queue = self._queue(queue_name, partition)
            yield queue.enqueue_args([spec.record(queue) for spec in batch])

    async def all_job_results(self, queue_name: str | None = None) -> list[JobResult]:
        """Every kept result, oldest enqueue first: of every queue (as arq's; every partition of each), or of
        ``queue_name`` only."""
        if queue_name is None:
            found = await self._queue(None).all_result_ids()
        else:
            found = [
                (queue.name, job_id) for queue in self._queues(queue_name) for job_id in await queue.result_job_ids()
            ]
        results = []
        for name, job_id in found:
            payload = await job_queue(self, name, job_id).result_payload(job_id)
            if payload is not None:
                results.append(deserialize_result(payload, self.job_deserializer))
        return sorted(results, key=lambda r: r.enqueue_time)

    async def queued_jobs(self, *, queue_name: str | None = None) -> list[JobDef]:
        """Jobs waiting to run: ready ones in queue order, then deferred ones by due time (partition by partition,
        in a partitioned queue)."""
        defs = []
        for queue in self._queues(queue_name):
            defs += await self._queued_in(queue)
        return defs

    async def _queued_in(self, queue: RedisQueue) -> list[JobDef]:
        job_ids = await queue.job_ids_in_stream() + [job_id for job_id, _ in await queue.deferred_ids()]
        defs = []
        for job_id in job_ids:
            payload, attempts, state, score = await queue.job_fields(job_id)
            if payload is None or state == "r":
                continue
            data = deserialize_job(payload, self.job_deserializer)
            defs.append(
                JobDef(
                    function=data["f"],
                    args=tuple(data["a"]),
                    kwargs=data["k"],
                    job_try=job_try_before_end(attempts, state),
                    enqueue_time=ms_to_datetime(data["et"]),
                    score=score,
                    job_id=job_id,
                )
            )
        return defs

    # --- queue inspection and the failed-job registry (see inspection.py) ---------------------------------------

    async def queue_info(self, queue_name: str | None = None) -> dict[str, int]:
        return await inspection.queue_info(self, queue_name)

    async def job_statuses(self, queue_name: str | None = None) -> list[tuple[str, JobStatus]]:
        return await inspection.job_statuses(self, queue_name)

    async def empty_queue(self, queue_name: str | None = None) -> int:
        return await inspection.empty_queue(self, queue_name)

    async def delete_queue(self, queue_name: str | None = None) -> int:
        return await inspection.delete_queue(self, queue_name)

    async def failed_jobs(self, queue_name: str | None = None) -> list[JobResult]:
        return await inspection.failed_jobs(self, queue_name)

    async def requeue_failed(self, job_id: str, queue_name: str | None = None) -> bool:
        return await inspection.requeue_failed(self, job_id, queue_name)

    async def purge_failed(self, queue_name: str | None = None) -> int:
        return await inspection.purge_failed(self, queue_name)


class PoolRedis(QueueClient, Redis):  # type: ignore[misc]  # (redis-py's own bases disagree on command_info)
    """A Redis client that also enqueues and inspects jobs: ``QueueClient`` on a single Redis (or its master
    behind Sentinel), with the fast path, auto-pipelining and, behind Sentinel, failover following."""

    def __init__(
        self,
        *args: Any,
        followed_master: SentinelMaster | None = None,
        **kwargs: Any,
    ) -> None:
        self.followed_master = followed_master  # where the master is, behind Sentinel (pool/redis/sentinel.py)
        self._failover_watch: asyncio.Task[None] | None = None
        super().__init__(*args, **kwargs)
        # the queue's scripts skip redis-py's generic command path (pool/redis/fastpath.py); a sentinel pool
        # resolves its master per connection, so it keeps the standard path
        self.fast_path = (
            None if isinstance(self.connection_pool, SentinelConnectionPool) else FastPath(self.connection_pool)
        )

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._failover_watch is not None:
            self._failover_watch.cancel()
            with contextlib.suppress(BaseException):
                await self._failover_watch
            self._failover_watch = None
            if self.followed_master is not None:
                await self.followed_master.aclose()
        if self.fast_path is not None:
            await self.fast_path.close()
        await super().aclose(close_connection_pool)

    async def close(self, close_connection_pool: bool | None = None) -> None:
        """arq's ``ArqRedis.close``: the same as ``aclose`` (redis-py's own ``close`` is deprecated)."""
        await self.aclose(close_connection_pool)

    def follow_master(self) -> None:
        """Behind Sentinel: watch where the master is and, when it moves, drop every connection of this client
        (its pool's, in use or not, and its fast path's), so nothing more is written to a demoted master."""
        if self.followed_master is None or self._failover_watch is not None:
            return
        self.followed_master.on_switch(self._drop_connections)
        self._failover_watch = asyncio.create_task(self.followed_master.watch(), name="pool-sentinel-watch")

    async def _drop_connections(self, old: tuple[str, int], new: tuple[str, int]) -> None:
        await self.connection_pool.disconnect(inuse_connections=True)
        if self.fast_path is not None:
            await self.fast_path.drop_connections()

    async def run_script(
        self, script: AsyncScript, calls: Iterable[ScriptCall], *, durable: bool = False, what: str = "a write"
    ) -> list[Any]:
        """The replies of (keys, args) calls of one script, in order: on the fast path when it can take
        them, else one by one on the standard path. ``calls`` may be a generator: the fast path sends each call as
        it is made, so Redis runs the first while the next is built. The queue's scripts are all safe to send
        twice, which a fall-back after a connection error does with the very calls already made.

        ``durable``: with ``wait_replicas`` set, the calls are followed by WAIT on their connection, and
        ``NotReplicated`` (carrying the replies as ``.replies``) is raised when too few replicas confirm them."""
        wait = self.durability.wait_args if durable and self.durability is not None else ()
        calls = iter(calls)
        made: list[ScriptCall] = []
        if self.fast_path is not None:
            replies = await self.fast_path.run_scripts(script, _kept(calls, made), wait)
            if replies is not None:
                return self._confirmed(replies, wait, what)
        return await super().run_script(script, itertools.chain(made, calls), durable=durable, what=what)

    def _not_replicated(self) -> None:
        if self.followed_master is not None:
            self.followed_master.suspect()  # maybe the master lost its replicas to a failover

    def auto_pipelined(self) -> PoolRedis:
        """A client on the same connection pool whose commands, issued by concurrent tasks in one event-loop
        turn, go out as one pipeline (see pool/redis/autopipeline.py). The worker gives this to jobs as
        ``ctx['redis']``. Closing it leaves the shared pool open."""
        return AutoPipelinedRedis(
            connection_pool=self.connection_pool,
            job_serializer=self.job_serializer,
            job_deserializer=self.job_deserializer,
            default_queue_name=self.default_queue_name,
            expires_extra_ms=self.expires_extra_ms,
            max_payload_bytes=self.max_payload_bytes,
            durability=self.durability,
            followed_master=self.followed_master,
            queue_partitions=self.queue_partitions,
        )

    def describe(self) -> str:
        """Where this client connects, for logs (as ``RedisSettings.describe``): never the password."""
        if self.followed_master is not None:
            return f"the master of {self.followed_master.service!r} (Sentinel)"
        kwargs = self.connection_pool.connection_kwargs
        tls = issubclass(self.connection_pool.connection_class, SSLConnection)
        return RedisSettings(
            host=kwargs.get("host", "localhost"),
            port=kwargs.get("port", 6379),
            unix_socket_path=kwargs.get("path"),
            database=kwargs.get("db", 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            ssl=tls,
        ).describe()

    def __repr__(self) -> str:
        return f"<PoolRedis {self.connection_pool!r}>"


ArqRedis = PoolRedis


class PoolRedisCluster(QueueClient, ReshardingSafeCluster):  # type: ignore[misc]  # (as PoolRedis)
    """``QueueClient`` on a Redis Cluster. redis-py's cluster client sends each command, and each script by its
    first key, to the node serving that key's slot, and follows MOVED and ASK redirections (and retries TRYAGAIN)
    as slots move (ASKING on the redirected command's own connection: pool/redis/cluster_client.py). Every key of
    a queue shares one hash tag, so all of a queue's commands go to one node. The queue's scripts take a fast path
    per node (``node_paths``); jobs' commands are auto-pipelined through a cluster pipeline (see docs/cluster.md)."""

    fast_path = None
    followed_master = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the queue's scripts skip the cluster client's command path, each to its slot's node (see
        # pool/redis/node_fastpath.py)
        self.node_paths = NodeFastPaths(self)

    async def aclose(self) -> None:
        """Close the nodes' connections, the fast path's too. (redis-py also calls this to learn the cluster
        again, after CLUSTERDOWN for one: the client, and its fast path, reconnect at the next call.)"""
        if not refreshing():  # (redis-py's own topology refresh closes nothing: see pool/redis/cluster_client.py)
            await self.node_paths.close()
        await super().aclose()

    def auto_pipelined(self) -> PoolRedisCluster:
        """This client (its nodes, connections, slot map and fast path shared) with its keyed commands, issued by
        concurrent tasks in one event-loop turn, going out as one cluster pipeline: one write per node (see
        pool/redis/autopipeline.py). The worker gives this to jobs as ``ctx['redis']``."""
        return AutoPipelinedRedisCluster(self)

    async def run_script(
        self, script: AsyncScript, calls: Iterable[ScriptCall], *, durable: bool = False, what: str = "a write"
    ) -> list[Any]:
        """The replies of (keys, args) calls of one script, in order: each run of consecutive calls for one node
        on that node's fast path when it can take them, else through the cluster client, which follows
        redirections (MOVED, ASK, TRYAGAIN). With ``wait_replicas``, WAIT follows the calls on the connection that
        carried them, to the master of their keys' slot (each node's calls and its WAIT in one write: calls of
        several partitions may be on several masters; the fewest confirmations count)."""
        wait = self.durability.wait_args if durable and self.durability is not None else ()
        if wait:
            written, confirmed = await run_with_wait(self, script, list(calls), wait)
            return self._confirmed([*written, confirmed], wait, what)
        replies: list[Any] = []
        for run in _runs_by_node(self.node_paths, calls):
            got = await self.node_paths.run_scripts(script, run)
            replies += got if got is not None else await super().run_script(script, run)
        return replies

    def follow_master(self) -> None:
        """A cluster follows its own failovers (MOVED after a replica's promotion): nothing to watch."""

    def describe(self) -> str:
        """Where this client connects, for logs: the cluster's nodes (never the password)."""
        return "redis+cluster://" + ",".join(node.name for node in self.get_nodes())

    def __repr__(self) -> str:
        return f"<PoolRedisCluster {','.join(node.name for node in self.get_nodes())}>"


async def redis_summary(redis: Redis) -> str:
    """arq's one line about the server: version, memory used, clients connected, keys in the database. On a
    cluster, the node count (its pipelines refuse INFO, and one node's figures would say little)."""
    if isinstance(redis, RedisCluster):
        return f"redis cluster of {len(redis.get_nodes())} nodes"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.info(section="Server")
        pipe.info(section="Memory")
        pipe.info(section="Clients")
        pipe.dbsize()
        server, memory, clients, key_count = await pipe.execute()
    return (
        f"redis_version={server.get('redis_version', '?')} mem_usage={memory.get('used_memory_human', '?')} "
        f"clients_connected={clients.get('connected_clients', '?')} db_keys={key_count}"
    )


async def log_redis_info(redis: Redis, log_func: Callable[[str], Any]) -> None:
    """arq's: pass ``redis_summary`` to ``log_func`` (e.g. ``logger.info``)."""
    log_func(await redis_summary(redis))


class AutoPipelinedRedis(PoolRedis):
    """``PoolRedis.auto_pipelined()``: commands of one event-loop turn go out as one pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auto_pipeline = AutoPipeline(self)

    async def run_script(
        self, script: AsyncScript, calls: Iterable[ScriptCall], *, durable: bool = False, what: str = "a write"
    ) -> list[Any]:
        """Through the auto-pipeline, like every other command: the calls (and concurrent jobs' enqueues) are
        issued in one loop turn and go out together. A durable write (WAIT must follow it on its own connection)
        takes the client's own path."""
        if durable and self.durability is not None:
            return await super().run_script(script, calls, durable=durable, what=what)
        return list(await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls)))

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if must_bypass(args):
            return await super().execute_command(*args, **options)
        return await self.auto_pipeline.submit(args, options)


class AutoPipelinedRedisCluster(PoolRedisCluster):
    """``PoolRedisCluster.auto_pipelined()``: a view of a cluster client whose keyed commands of one loop turn go
    out through redis-py's cluster pipeline, which sends each node's commands in one write and follows MOVED and
    ASK per command. Commands redis-py sends to chosen nodes rather than by key (PING, INFO, TIME...), blocking
    ones and those given ``target_nodes`` take the client's own path."""

    def __init__(self, cluster: PoolRedisCluster) -> None:  # (no RedisCluster.__init__: it would learn the cluster)
        # the same nodes manager, connections, scripts and fast path: every attribute, slots (redis-py's) included
        for name in {name for klass in type(cluster).__mro__ for name in getattr(klass, "__slots__", ())}:
            if hasattr(cluster, name) and name not in ("__dict__", "__weakref__"):
                setattr(self, name, getattr(cluster, name))
        self.__dict__.update(cluster.__dict__)
        self._cluster = cluster
        self.auto_pipeline = AutoPipeline(self, alone=cluster.execute_command)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """The client's own pipeline: a command it must resend alone (after MOVED or ASK) goes through the client,
        which follows the redirection, not back into this view's next pipeline."""
        return self._cluster.pipeline(transaction, shard_hint)

    async def aclose(self) -> None:
        """Leaves the shared connections to the client they belong to; only learns the cluster again at the next
        call (what redis-py asks for when it closes a client after CLUSTERDOWN)."""
        self._initialize = True

    def __del__(self, *args: Any) -> None:
        """Nothing to close: the connections are the client's (redis-py's own warns of an unclosed client)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if must_bypass(args) or options.get("target_nodes") is not None or self._routed_by_flag(args[0]):
            return await super().execute_command(*args, **options)
        return await self.auto_pipeline.submit(args, options)

    def _routed_by_flag(self, name: Any) -> bool:
        """redis-py sends this command to nodes named by a flag (all primaries, a random node...), not by its keys:
        its cluster pipeline cannot."""
        text = name.decode() if isinstance(name, bytes) else str(name)
        return text.upper() in self.command_flags


def _per_spec(batches: list[Any], order: list[int] | None) -> list[Any]:
    """Each spec's reply, in the specs' order, from the replies of the ENQUEUE calls (a list per call) and the spec
    index of each job in the order they were sent (None: the specs' own order)."""
    replies = [ok for batch in batches for ok in batch]
    if order is None:
        return replies
    by_spec: list[Any] = [None] * len(order)
    for index, ok in zip(order, replies, strict=True):
        by_spec[index] = ok
    return by_spec


def _runs_by_node(paths: NodeFastPaths, calls: Iterable[ScriptCall]) -> Iterator[list[ScriptCall]]:
    """``calls`` in runs of consecutive calls for one node (a bulk enqueue's batches go to several partitions)."""
    run: list[ScriptCall] = []
    run_node: Any = None
    for call in calls:
        node = paths.node_of(call[0])
        if run and node is not run_node:
            yield run
            run = []
        run.append(call)
        run_node = node
    if run:
        yield run


def _kept(calls: Iterator[ScriptCall], made: list[ScriptCall]) -> Iterator[ScriptCall]:
    """``calls``, each one also kept in ``made`` (so a fall-back can replay exactly what was sent)."""
    for call in calls:
        made.append(call)
        yield call


def _batches_in_order(
    specs: list[JobSpec], size: int, max_bytes: int
) -> Iterator[tuple[tuple[str, int], list[JobSpec]]]:
    """Consecutive runs of one queue, at most ``size`` jobs and (but for a single larger job) ``max_bytes`` of
    records long: one script call each, keeping order."""
    batch: list[JobSpec] = []
    batch_bytes = 0
    for spec in specs:
        spec_bytes = spec.packed_size()
        if batch and (
            spec.queue_name != batch[0].queue_name or len(batch) == size or batch_bytes + spec_bytes > max_bytes
        ):
            yield (batch[0].queue_name, 0), batch
            batch, batch_bytes = [], 0
        batch.append(spec)
        batch_bytes += spec_bytes
    if batch:
        yield (batch[0].queue_name, 0), batch


def _batches_by_partition(
    specs: list[JobSpec], size: int, max_bytes: int
) -> Iterator[tuple[tuple[str, int], list[int]]]:
    """The specs' indices grouped by queue and partition (in order within each), in runs as ``_batches_in_order``
    cuts them: a partitioned queue's jobs alternate partitions, and a run per partition keeps batches large."""
    groups: dict[tuple[str, int], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault((spec.queue_name, spec.partition), []).append(index)
    for where, indices in groups.items():
        for _, batch in _batches_in_order([specs[index] for index in indices], size, max_bytes):
            yield where, indices[: len(batch)]
            indices = indices[len(batch) :]


def _with_dependencies(
    job_id: str, generated: bool, depends_on: tuple[str, ...], queue_name: str, partitions: int
) -> str:
    """A job of a partitioned queue lives in the partition of the jobs it depends on (ENQUEUE reads their state,
    and their completion releases it, within one partition): a generated id is tagged with theirs; a given one
    must already fall there."""
    where = {partition_of(dependency, partitions) for dependency in depends_on}
    if len(where) > 1:
        raise ValueError(
            f"queue {queue_name!r} has {partitions} partitions: the jobs a job depends on must share one; give "
            "them ids with one tag, as in '{{batch-7}}step-1' (see docs/cluster.md)"
        )
    if generated:
        return tagged(job_id, partition_key(depends_on[0]))
    if partition_of(job_id, partitions) not in where:
        raise ValueError(
            f"job {job_id!r} and the jobs it depends on fall in different partitions of queue {queue_name!r}: "
            f"give them one tag, as in '{{{partition_key(depends_on[0])}}}{job_id}', or leave _job_id unset"
        )
    return job_id


def _cluster_client(settings: RedisSettings, common: dict[str, Any], extra: dict[str, Any]) -> PoolRedisCluster:
    """A cluster client that learns the cluster's nodes from ``settings.host``'s; ``max_connections`` per node."""
    addresses = settings.host if isinstance(settings.host, list) else [(settings.host, settings.port)]
    kwargs = {k: v for k, v in common.items() if k not in {"max_connections", "retry_on_timeout"}}
    return PoolRedisCluster(
        startup_nodes=[ClusterNode(host, int(port)) for host, port in addresses],
        max_connections=settings.max_connections or DEFAULT_MAX_CONNECTIONS,
        ssl=settings.ssl,
        **tls_options(settings) if settings.ssl else {},
        **kwargs,
        **extra,
    )


def _blocking_pool(
    settings: RedisSettings, common: dict[str, Any], master: SentinelMaster | None = None
) -> BlockingConnectionPool:
    """A bounded pool whose callers wait for a free connection rather than fail. Behind Sentinel its
    connections connect to wherever ``master`` says the master is (pool/redis/sentinel.py)."""
    kwargs = {k: v for k, v in common.items() if k != "max_connections"}
    kwargs["max_connections"] = settings.max_connections or DEFAULT_MAX_CONNECTIONS
    kwargs["timeout"] = None
    if master is not None:
        connection_class: type[Connection] = MasterSSLConnection if settings.ssl else MasterConnection
        return BlockingConnectionPool(
            connection_class=connection_class, master=master, db=settings.database, **ssl_options(settings), **kwargs
        )
    if settings.unix_socket_path:
        return BlockingConnectionPool(
            connection_class=UnixDomainSocketConnection, path=settings.unix_socket_path, db=settings.database, **kwargs
        )
    if isinstance(settings.host, list):
        raise ValueError("a list of hosts needs sentinel=True")
    connection_class = SSLConnection if settings.ssl else Connection
    return BlockingConnectionPool(
        connection_class=connection_class,
        host=settings.host,
        port=settings.port,
        db=settings.database,
        **ssl_options(settings),
        **kwargs,
    )


async def create_pool(
    settings_: RedisSettings | None = None,
    *,
    retry: int = 0,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
    default_queue_name: str = DEFAULT_QUEUE_NAME,
    expires_extra_ms: int = EXPIRES_EXTRA_MS,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    queue_partitions: int | Mapping[str, int] = 1,
    job_types: Iterable[type] | None = None,
) -> PoolRedis:
    """Connect (retrying ``conn_retries`` times, ``conn_retry_delay`` apart) and return a ``PoolRedis``.

    ``job_types``: the dataclasses and pydantic models that results read back (``Job.result()``) may hold,
    rebuilt only into these (see pool/storage/serializers.py); any may be passed as an argument without it.

    ``queue_partitions``: how many partitions the queues this client uses have (one count for all, or per queue
    name; see docs/cluster.md); the same as the workers', which is checked at the first enqueue to each queue.

    Authentication failures are not retried: a wrong password does not become right by waiting.
    """
    settings = settings_ or RedisSettings()
    job_deserializer = with_job_types(job_types, job_deserializer)
    extra: dict[str, Any] = {
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "default_queue_name": default_queue_name,
        "expires_extra_ms": expires_extra_ms,
        "max_payload_bytes": max_payload_bytes,
        "queue_partitions": queue_partitions,
    }
    common: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        "socket_connect_timeout": settings.conn_timeout,
        "max_connections": settings.max_connections,
    }
    # only what the user set: redis-py deprecates passing its defaults explicitly
    if settings.retry_on_timeout:
        common["retry_on_timeout"] = True
    if settings.retry_on_error is not None:
        common["retry_on_error"] = settings.retry_on_error
    # A pool built here does not get the client's default retry: a connection made stale by a Redis restart
    # would fail its next command. Retry connection errors a few times, quickly, once connected: the first PING
    # is tried once per attempt below (conn_retries attempts, conn_retry_delay apart, as arq's), not retried
    # again inside redis-py, where each attempt would hide up to 16 connects and their back-off (a cluster client
    # keeps its retries throughout: it learns the nodes as it connects)
    command_retry = settings.retry or Retry(ExponentialBackoff(cap=0.5, base=0.05), 3)
    common["retry"] = command_retry if settings.cluster else settings.retry or Retry(NoBackoff(), 0)
    extra["durability"] = Durability.from_settings(settings.wait_replicas, settings.wait_timeout)
    while True:
        pool = _client(settings, common, extra)
        try:
            await _first_ping(pool, settings)
            break
        except TLSMismatch:
            await pool.aclose()
            raise
        except AuthenticationError as exc:
            await pool.aclose()
            raise ConnectionError(f"Redis at {settings.describe()} refused authentication: {exc}") from None
        except ResponseError as exc:
            await pool.aclose()
            raise ConnectionError(f"Redis at {settings.describe()} refused the connection: {exc}") from None
        except (TimeoutError, RedisError, OSError) as exc:
            await pool.aclose()
            if _caused_by_auth(exc):  # redis-py wraps auth errors on unix sockets in a ConnectionError
                raise ConnectionError(f"Redis at {settings.describe()} refused authentication: {exc}") from None
            if retry == 0 and (
                problem := await asyncio.to_thread(permanent_problem, settings, exc, settings.conn_timeout)
            ):
                raise ConnectionError(f"cannot connect to Redis at {settings.describe()}: {problem}") from None
            if retry >= settings.conn_retries:
                raise ConnectionError(f"cannot connect to Redis at {settings.describe()}: {exc}") from None
            logger.warning(
                "redis connection error %s %s: %s, %d retries remaining...",
                settings.describe(),
                exc.__class__.__name__,
                exc,
                settings.conn_retries - retry,
            )
            retry += 1
            await asyncio.sleep(settings.conn_retry_delay)
    if common["retry"] is not command_retry:  # connected: now redis-py may retry a command on a new connection
        if settings.retry_on_error:
            command_retry.update_supported_errors(cast(list[type[RedisError]], settings.retry_on_error))
        pool.set_retry(command_retry)
    if retry > 0:
        logger.info("redis connection successful")
    if not (settings.cluster or settings.sentinel or settings.unix_socket_path) and await _is_cluster_node(pool):
        # each of its commands would meet MOVED for most queues: talk to it as the cluster it is
        logger.warning(
            "Redis at %s is a node of a Redis Cluster: connecting in cluster mode (use redis+cluster:// or "
            "RedisSettings(cluster=True) to say so)",
            settings.describe(),
        )
        await pool.aclose()
        return await create_pool(
            dataclasses.replace(settings, cluster=True),
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
            default_queue_name=default_queue_name,
            expires_extra_ms=expires_extra_ms,
            max_payload_bytes=max_payload_bytes,
            queue_partitions=queue_partitions,
        )
    pool.follow_master()
    return pool


def _client(settings: RedisSettings, common: dict[str, Any], extra: dict[str, Any]) -> PoolRedis:
    """A client for ``settings``, not yet connected."""
    if settings.cluster:
        # typed as the PoolRedis it stands in for: QueueClient's methods and the redis-py commands pool uses
        return cast(PoolRedis, _cluster_client(settings, common, extra))
    if settings.sentinel:
        master = master_of(settings)
        pool = PoolRedis(connection_pool=_blocking_pool(settings, common, master), followed_master=master, **extra)
    else:
        pool = PoolRedis(connection_pool=_blocking_pool(settings, common), **extra)
    pool.auto_close_connection_pool = True
    return pool


async def _is_cluster_node(pool: PoolRedis) -> bool:
    """Whether the server has cluster mode on (INFO's cluster section; a server that refuses INFO is not)."""
    try:
        info = await pool.info("cluster")
    except ResponseError:
        return False
    return bool(int(info.get("cluster_enabled", 0)))


async def _first_ping(pool: PoolRedis, settings: RedisSettings) -> None:
    """``_ping``; a reply saying Redis cannot answer for now (BUSY while another client's script runs, and the
    like: ``transient``) is raised as a ConnectionError, so ``create_pool`` retries it like a refused connection
    rather than give up at once (a worker starting just then would fail to boot)."""
    try:
        await _ping(pool, settings)
    except ResponseError as exc:
        if transient(exc):
            raise ConnectionError(str(exc)) from exc
        raise


async def _ping(pool: PoolRedis, settings: RedisSettings) -> None:
    """PING; a TLS handshake still pending after ``conn_timeout`` is checked for a plain-text server at once,
    rather than after redis-py's retries have each timed out."""
    if not settings.ssl:
        await pool.ping()
        return
    ping = asyncio.ensure_future(pool.ping())
    done, _ = await asyncio.wait({ping}, timeout=settings.conn_timeout)
    if not done and (mismatch := await asyncio.to_thread(tls_mismatch, settings, settings.conn_timeout)):
        ping.cancel()
        await asyncio.wait({ping}, timeout=1)
        raise TLSMismatch(f"cannot connect to Redis at {settings.describe()}: {mismatch}")
    await ping


class TLSMismatch(ConnectionError):
    """The URL's scheme and the server disagree about TLS: retrying cannot help."""


def _caused_by_auth(exc: BaseException) -> bool:
    return caused_by(exc, lambda error: isinstance(error, AuthenticationError))


__all__: Sequence[str] = [
    "BULK_BATCH",
    "BULK_BATCH_BYTES",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "EXPIRES_EXTRA_MS",
    "ArqRedis",
    "JobSpec",
    "PoolRedis",
    "RedisSettings",
    "create_pool",
]  # (the constants and JobSpec are pool/client/specs.py's, still importable from here)
