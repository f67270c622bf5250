"""The storage contract of one queue, for the worker and the client (async).

Every Redis command of a queue is issued here or by pool/storage/ops.py. The worker's per-job path (enqueue,
fetch, read, start, complete, requeue, unread, heartbeat, reclaim) calls its scripts and commands directly, for
the least cost; every other method is one line running an op of pool/storage/ops.py, the same ops the
supervisor's sync facade (pool/storage/sync.py) runs. The worker and the client talk to a ``RedisQueue``; they
never build a key or call a script themselves.

The life of a job (see scripts.py): enqueue -> [deferred -> promote] -> stream -> read by one consumer -> start
-> complete | requeue. A consumer that dies leaves its entries in the group's pending list; they are taken over
by ``reclaim`` once idle longer than a few heartbeats, or at once by ``hand_back_consumer`` when its death is
known.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..redis import blocking
from ..redis.replication import NotReplicated
from . import ops
from .drivers import on_cluster, run, scripts_for
from .keys import CONSUMER_GROUP, PRIORITIES, QueueKeys
from .ops import enqueue_args as enqueue_args  # (the client's enqueue path takes it from here)
from .partitions import partition_of

logger = logging.getLogger("pool.worker")


@dataclass(slots=True)
class Delivery:
    """One job handed to this worker: a stream entry and, after ``start``, its payload and attempt count."""

    entry_id: str
    job_id: str
    priority: int = 0  # which lane (stream) the entry is in
    partition: int = 0  # which partition of the queue (pool/storage/partitions.py)
    payload: bytes = b""
    attempts: int = 0
    score: int = 0
    failed_dependency: str = ""  # set when a job it depends on failed for good
    function: str = ""  # the job's function name, from its hash: max_tries is checked before decoding the payload
    finishing: bool = False  # the job function has returned: never cancel it now, its result must be written
    # when the runner started it and when its function (and hooks) ended, 0 if not: its duration, for metrics
    started_ms: int = 0
    finished_ms: int = 0


@dataclass(slots=True)
class Completion:
    """A finished job's result, written (and the job acked) in the next batch."""

    entry_id: str
    job_id: str
    result: bytes
    ttl_ms: int  # > 0 keep that long, 0 keep nothing, < 0 keep forever
    failure_ttl_ms: int = 0  # > 0: failed for good, kept in the failed registry that long; < 0: failed, not kept
    callback_id: str = ""  # an on_success / on_failure job enqueued in the same step
    callback_payload: bytes = b""
    priority: int = 0  # the lane of the entry to ack
    partition: int = 0  # the partition of the queue it is in
    callback_function: str = ""
    function: str = ""  # the job's function (Delivery.function): COMPLETE passes its concurrency slot on


RESULT_WAIT_S = 5.0  # Job.result() blocks this long at most per read, then checks again and re-registers
WAITER_MARGIN_MS = 5_000  # a waiter's registration outlives its read by this much (round trip, a busy loop)

_QUEUES_ATTR = "_pool_queues"

# Whether workers pick jobs up with FETCH (read and start in one script) when they do not block. False: a read,
# then START, the two steps a worker takes after a blocking read anyway (the tests of that path set it).
ONE_STEP_FETCH = True


def queue_for(redis: Redis, queue_name: str, partition: int = 0) -> RedisQueue:
    """The client side's RedisQueue of a queue (or of one of its partitions), cached on the client: an enqueue
    (and the Job it returns) would otherwise build one, and its keys, every call. The worker keeps its own (it
    holds reclaim state). Keyed by name alone for partition 0 (every unpartitioned queue): no tuple per call."""
    queues: dict[Any, RedisQueue] | None = getattr(redis, _QUEUES_ATTR, None)
    if queues is None:
        queues = {}
        setattr(redis, _QUEUES_ATTR, queues)
    key: Any = queue_name if partition == 0 else (queue_name, partition)
    queue = queues.get(key)
    if queue is None:
        queue = queues[key] = RedisQueue(redis, queue_name, partition)
    return queue


def partitions_of(redis: Any, queue_name: str) -> int:
    """How many partitions ``queue_name`` has for this client (``queue_partitions``: one count, or per name; 1 for
    a plain redis-py client)."""
    count = getattr(redis, "queue_partitions", 1)
    return count if isinstance(count, int) else int(count.get(queue_name, 1))


async def complete_partitions(parts: Sequence[tuple[RedisQueue, list[Completion]]], consumer: str = "") -> None:
    """``RedisQueue.complete`` for the finished jobs of several partitions of one queue, their COMPLETE calls sent
    together: one write and one round trip on a single Redis (per node on a cluster) where the client takes
    several script calls at once, rather than one round trip per partition."""
    if len(parts) == 1:
        queue, completions = parts[0]
        await queue.complete(completions, consumer)
        return
    run_script = getattr(parts[0][0].redis, "run_script", None)
    if run_script is None:
        for queue, completions in parts:
            await queue.complete(completions, consumer)
        return
    calls = [queue.complete_call(completions, consumer) for queue, completions in parts]
    what = f"writing {sum(len(completions) for _, completions in parts)} results"
    replies = await run_script(parts[0][0].scripts.complete, calls, durable=True, what=what)
    for (queue, _), (passed, dependents, expired) in zip(parts, replies, strict=True):
        await queue.after_complete(passed, dependents, expired)


def job_queue(redis: Any, queue_name: str, job_id: str) -> RedisQueue:
    """The RedisQueue of the partition that holds ``job_id``."""
    partitions = partitions_of(redis, queue_name)
    return queue_for(redis, queue_name, partition_of(job_id, partitions) if partitions > 1 else 0)


class PartitionMismatch(ValueError):
    """This process's ``queue_partitions`` is not the count producers and workers recorded for the queue."""

    def __init__(self, queue_name: str, recorded: int, wanted: int) -> None:
        super().__init__(
            f"queue {queue_name!r} has {recorded} partition{'s' if recorded != 1 else ''} in Redis, but "
            f"queue_partitions says {wanted} here: producers and workers must agree (to change it, empty the queue "
            "and delete its keys first: pool queue delete)"
        )


async def partition_count(redis: Any, queue_name: str, wanted: int) -> int:
    """The queue's recorded partition count, recording ``wanted`` when none is (see ops.agree_partitions)."""
    return await run(redis, ops.agree_partitions(QueueKeys(queue_name), wanted))


def new_job_id() -> str:
    """32 random hex digits, as ``uuid4().hex`` gives (arq's job ids) at a fraction of its cost."""
    return os.urandom(16).hex()


def job_record(
    keys: QueueKeys,
    job_id: str,
    payload: bytes,
    *,
    score_ms: int,
    now_ms: int,
    expires_ms: int,
    attempts_before: int = 0,
    fence: tuple[str, int] | None = None,
    depends_on: Sequence[str] = (),
    function: str = "",
    priority: int = 0,
    relative: bool = False,
) -> tuple[Any, ...]:
    """One job as the ENQUEUE script reads it. The nonce lets the script recognise a replay of this call.
    ``relative``: the due time is a delay from now (``_defer_by``), which the script counts from Redis's clock;
    otherwise ``score_ms`` is an instant (``_defer_until``) and is kept as given."""
    fence_key, tick = (keys.cron_fence(fence[0]), fence[1]) if fence is not None else ("", 0)
    return (
        job_id,
        payload,
        str(score_ms),
        str(now_ms),
        str(max(expires_ms, 1)),
        str(attempts_before),
        os.urandom(8).hex(),
        fence_key,
        str(tick),
        function,
        str(priority),
        list(depends_on),
        "1" if relative else "",
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _lane_priority(stream: bytes | str, keys: QueueKeys) -> int:
    name = _text(stream)
    return 0 if name == keys.stream else int(name.rsplit(":", 1)[1])


Limits = dict[str, int]  # function name -> max_concurrency across all workers


class RedisQueue:
    def __init__(self, redis: Redis, queue_name: str, partition: int = 0) -> None:
        # Typed Any: redis-py's reply types are unions over decode_responses; this module decodes replies itself.
        self.redis: Any = redis
        self.keys = QueueKeys(queue_name, partition)
        self.partition = partition
        self.scripts = scripts_for(redis)
        self._reclaim_cursors = {priority: "0-0" for priority in PRIORITIES}
        cluster = on_cluster(redis)
        # FETCH reads and starts in one script (see ``fetch``); without it, the worker reads, then STARTs.
        self.one_step_fetch = ONE_STEP_FETCH
        # FETCH cannot declare the keys of the jobs it reads: on Redis Cluster it declares the slot guard instead,
        # a key that never exists, so Redis runs it only while its slot is wholly on the node (see FETCH)
        self._fetch_guard = (self.keys.slot_guard,) if cluster else ()
        # Every script call declares every key its script touches where that is checked: on Redis Cluster (see
        # pool/storage/scripts.py). A single Redis checks nothing, and there the hot scripts (ENQUEUE, START,
        # COMPLETE) declare the queue's own keys only, not each job's: declaring a job's keys costs the worker's
        # noop job 17% more instructions (the keys built, packed and sent; perf.instructions: 358,600 against
        # 305,900), for no check. The scripts build every name they touch themselves, so the calls work either way.
        self.declares_job_keys = cluster
        # COMPLETE's KEYS before the jobs' own (a tuple: copied into each call's list)
        keys = self.keys
        self._complete_keys = (*keys.lane_keys, keys.aborts, keys.deferred, keys.failed, keys.releasing)

    @property
    def name(self) -> str:
        return self.keys.queue_name

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any], what: str = "") -> Any:
        """A hot-path script call (fetch, start, complete): on the client's short path when it has one
        (``PoolRedis.run_script``, pool/fastpath.py), else through redis-py's command path. With ``what``, the
        call is durable: confirmed by replicas when the client asks for that (pool/redis/replication.py)."""
        run_script = getattr(self.redis, "run_script", None)
        if run_script is None:
            return await script(keys=keys, args=args)
        (reply,) = await run_script(script, [(keys, args)], durable=bool(what), what=what or "a write")
        return reply

    async def _run_start(
        self, script: AsyncScript, keys: list[str], args: list[Any], consumer: str, deliveries: list[Delivery] | None
    ) -> Any:
        """FETCH or START, durable: when replicas did not confirm it, the jobs must not run (a failover could
        deliver them again, as the same attempt). Their start is undone (UNREAD, best effort: where the start
        was lost, so is this) and the error raised; the worker fetches again."""
        try:
            return await self._run(script, keys, args, "starting jobs")
        except NotReplicated as exc:
            (reply,) = exc.replies
            if deliveries is None:  # FETCH: its reply names the entries it read
                items = [item for _, _, _, item in reply[1:]]
                deliveries = [Delivery(_text(e), _text(j), int(p), self.partition) for e, j, p, _ in reply[1:]]
            else:
                items = list(reply)
            for delivery, item in zip(deliveries, items, strict=True):
                _sort_started(delivery, item, [], [])  # its function: UNREAD passes a slot it took on
            with contextlib.suppress(RedisError, OSError):
                await self.unread(consumer, deliveries)
            raise

    # --- producer side -------------------------------------------------------------------------------------

    def enqueue_args(self, records: Sequence[tuple[Any, ...]]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of an ENQUEUE call of ``job_record``s, the jobs' keys declared where they are checked."""
        return enqueue_args(self.keys, records, job_keys=self.declares_job_keys)

    async def enqueue(self, job_id: str, payload: bytes, **kwargs: Any) -> bool:
        """Create the job atomically unless its id is taken; True when it was enqueued."""
        keys, args = self.enqueue_args([job_record(self.keys, job_id, payload, **kwargs)])
        (enqueued,) = await self.scripts.enqueue(keys=keys, args=args)
        return bool(enqueued)

    async def abort(self, job_id: str, *, now_ms: int, aborted_result: bytes, result_ttl_ms: int) -> int:
        """0: no such job; 1: running, its worker was asked to cancel it; 2: not started, aborted here."""
        return await run(self.redis, ops.abort(self.keys, job_id, now_ms, aborted_result, result_ttl_ms))

    # --- reading state ---------------------------------------------------------------------------------------

    async def job_fields(self, job_id: str) -> tuple[bytes | None, int, str | None, int]:
        """(payload, attempts, state, score) of a job that is not finished; payload None when there is none."""
        return await run(self.redis, ops.job_fields(self.keys, job_id))

    async def job_progress(self, job_id: str) -> bytes | None:
        return await run(self.redis, ops.job_progress(self.keys, job_id))

    async def set_progress(self, job_id: str, mark: str, record: bytes) -> bool:
        """Write a running job's progress record (see progress.lua); False when the run no longer holds it."""
        return await run(self.redis, ops.set_progress(self.keys, job_id, mark, record))

    async def result_payload(self, job_id: str) -> bytes | None:
        return await run(self.redis, ops.value(self.keys.result(job_id)))

    async def has_result(self, job_id: str) -> bool:
        return await run(self.redis, ops.exists(self.keys.result(job_id)))

    async def result_or_register_waiter(self, job_id: str, timeout_s: float) -> tuple[bytes | None, str | None, str]:
        """(result payload, None, '') when the job has a result; (None, None, '') when there is no such job;
        else (None, state, since): a waiter is registered for timeout_s (see the WAIT script) unless timeout_s
        is 0 (no time left to wait: only check), and ``wait_for_result`` reads the notifications after
        ``since``."""
        ttl_ms = blocking.block_ms(timeout_s) + WAITER_MARGIN_MS if timeout_s > 0 else 0
        return await run(self.redis, ops.result_or_register_waiter(self.keys, job_id, ttl_ms))

    def result_wait_s(self, remaining_s: float | None) -> float:
        """How long ``Job.result()``'s next blocking read may last: its time left, at most RESULT_WAIT_S, and
        within the connections' socket timeout (pool/blocking.py)."""
        longest = min(RESULT_WAIT_S, blocking.block_limit_s(self.redis))
        return longest if remaining_s is None else max(min(remaining_s, longest), 0.0)

    async def wait_for_result(self, job_id: str, since: str, timeout_s: float) -> bytes | None:
        """Block up to timeout_s for the notification of a completion after ``since`` and return the result
        payload it carries; None on a timeout. The read consumes nothing: every waiter of the run reads the
        same entry, and a read retried after a lost reply reads it again."""
        try:
            return await run(self.redis, ops.notified_result(self.keys, job_id, since, blocking.block_ms(timeout_s)))
        except RedisTimeoutError:  # the socket timed out after all (a stalled machine): the caller checks again
            return None

    async def counts(self) -> dict[str, int]:
        """Ready (undelivered), running (delivered, not acked), deferred and parked (waiting for a
        max_concurrency slot) job counts."""
        return await run(self.redis, ops.counts(self.keys))

    async def job_ids_in_stream(self) -> list[str]:
        """Ids of entries in every lane (delivered ones included), highest priority first."""
        return await run(self.redis, ops.job_ids_in_stream(self.keys))

    async def deferred_ids(self) -> list[tuple[str, int]]:
        return await run(self.redis, ops.deferred_ids(self.keys))

    async def result_job_ids(self) -> list[str]:
        return await run(self.redis, ops.result_job_ids(self.keys))

    async def all_result_ids(self) -> list[tuple[str, str]]:
        """(queue name, job id) of every kept result of every queue on this Redis, not only this one's."""
        return await run(self.redis, ops.all_result_ids())

    # --- consumer side ---------------------------------------------------------------------------------------

    async def ensure_group(self) -> int:
        """Create every lane's stream and consumer group (see ops.ensure_group); how many it had to create."""
        return await run(self.redis, ops.ensure_group(self.keys))

    async def recover_group(self) -> None:
        """A read or a heartbeat met NOGROUP: a lane's stream or its group is gone while workers ran (DEL,
        XTRIM MAXLEN 0, XGROUP DESTROY, FLUSHALL, Redis restarted empty). Recreate them, and say so once per
        loss (a worker that finds them already recreated by another says nothing): running jobs keep their
        results (see COMPLETE), but jobs whose entries were lost while still queued are not run."""
        if await self.ensure_group():
            logger.warning(
                "queue %r: a stream or its consumer group %r was gone (deleted, or Redis restarted empty); "
                "recreated it. Running jobs finish normally; looking for queued jobs whose entries were lost",
                self.name,
                CONSUMER_GROUP,
            )
            restored = await self.restore_queued()
            if restored:
                logger.warning("queue %r: put %d queued jobs back whose stream entries were lost", self.name, restored)

    async def restore_queued(self) -> int:
        """Put back on their lanes the jobs still queued whose stream entries were lost (see RESTORE_QUEUED).
        Costs a SCAN of the database and a read of every lane: only run after a loss was detected."""
        return await run(self.redis, ops.restore_queued(self.keys))

    async def fetch(
        self, consumer: str, count: int, order: Sequence[int], limits: Limits
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Read up to ``count`` new entries without blocking, lanes in ``order``, and start them in the same
        round trip. Returns (started, expired) as ``start`` does. The call's token (new per call, the same when
        the call is replayed after a lost reply) lets FETCH answer a replay with the entries it already read.
        On Redis Cluster FETCH declares the slot guard (see FETCH). With ``one_step_fetch`` false, the entries are
        read (one XREADGROUP over the lanes), then started (START declares their keys): two round trips."""
        if not self.one_step_fetch:
            deliveries = await self.read(consumer, count, None, order)
            if len(deliveries) > count:
                await self.unread(consumer, deliveries[count:])
                deliveries = deliveries[:count]
            return await self.start(consumer, deliveries, limits) if deliveries else ([], [])
        token = os.urandom(8).hex()
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer, count, token, *_limit_args(limits), *order]
        keys = [*self.keys.lane_keys, self.keys.fetched(consumer), self.keys.parked_functions]
        for function in limits:
            keys += self.keys.slots(function)
        keys += self._fetch_guard
        reply = await self._run_start(self.scripts.fetch, keys, args, consumer, None)
        if int(reply[0]):
            await self.recover_group()  # a lane or its group is gone: recreate it
        started: list[Delivery] = []
        expired: list[Delivery] = []
        for entry_id, job_id, priority, item in reply[1:]:
            delivery = Delivery(_text(entry_id), _text(job_id), int(priority), self.partition)
            _sort_started(delivery, item, started, expired)
        return started, expired

    async def read(
        self, consumer: str, count: int, block_ms: int | None, order: Sequence[int] | None = None
    ) -> list[Delivery]:
        """New entries for this consumer from any lane, blocking up to block_ms (None: don't block), sorted by
        ``order`` (priorities; default highest first). With entries in several lanes this may return up to
        ``count`` from each: see ``unread``."""
        streams = dict.fromkeys(self.keys.lanes, ">")
        if block_ms is not None:  # never longer than the connection's socket timeout allows (pool/blocking.py)
            block_ms = blocking.capped_block_ms(self.redis, block_ms)
        try:
            reply: Any = await self.redis.xreadgroup(CONSUMER_GROUP, consumer, streams, count=count, block=block_ms)
        except ResponseError as exc:  # NOGROUP, or UNBLOCKED: the stream or group went away during the read
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            await self.recover_group()  # a lane or its group is gone: recreate it and carry on
            return []
        deliveries = []
        for stream, entries in reply or []:
            priority = _lane_priority(stream, self.keys)
            deliveries += [
                Delivery(_text(entry_id), _text(f[b"id"]), priority, self.partition) for entry_id, f in entries
            ]
        if order is None:
            deliveries.sort(key=lambda d: -d.priority)
        else:
            rank = {priority: index for index, priority in enumerate(order)}
            deliveries.sort(key=lambda d: rank.get(d.priority, len(rank)))
        return deliveries

    async def sweep_parked(self, limits: Limits) -> int:
        """Release parked jobs of limited functions into slots passed to them or freed without passing them on."""
        return await run(self.redis, ops.sweep_parked(self.keys, limits)) if limits else 0

    async def unread(self, consumer: str, deliveries: list[Delivery]) -> None:
        """Put entries this consumer read but will not run back at the end of their lane, undoing its START."""
        if deliveries:
            args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer]
            keys = list(self.keys.lane_keys)
            for function in dict.fromkeys(d.function for d in deliveries if d.function):
                keys += self.keys.slots(function)
            for d in deliveries:
                args += [d.entry_id, d.job_id, d.priority, d.function]
                keys.append(self.keys.job(d.job_id))
            _, passed = await self.scripts.unread(keys=keys, args=args)
            if passed:
                await self._finish(passed)

    async def start(
        self, consumer: str, deliveries: list[Delivery], limits: Limits | None = None
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Mark delivered jobs running and fill in their payloads. Returns (started, expired): expired jobs
        (their hash is gone, no result) stay pending until the caller records their failure. Jobs of a function
        at its max_concurrency are parked (in neither list)."""
        limits = limits or {}
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer, *_limit_args(limits)]
        keys = [*self.keys.lane_keys, self.keys.parked_functions]
        for function in limits:
            keys += self.keys.slots(function)
        for delivery in deliveries:
            args += [delivery.entry_id, delivery.job_id, delivery.priority]
        if self.declares_job_keys:
            for delivery in deliveries:
                keys += self.keys.job_and_result(delivery.job_id)
        reply = await self._run_start(self.scripts.start, keys, args, consumer, deliveries)
        started: list[Delivery] = []
        expired: list[Delivery] = []
        for delivery, item in zip(deliveries, reply, strict=True):
            _sort_started(delivery, item, started, expired)
        return started, expired

    async def complete(self, completions: list[Completion], consumer: str = "") -> None:
        """Write the results of finished jobs, then ack and delete them: one round trip for the batch.
        ``consumer`` (the worker that ran them) lets a result be recorded even when its stream entry vanished
        (see COMPLETE). When COMPLETE returns work on keys it could not declare (parked jobs given a slot, the
        dependents of a finished job, the failed registry's tidying), the step after it follows at once."""
        keys, args = self.complete_call(completions, consumer)
        passed, dependents, expired = await self._run(
            self.scripts.complete, keys, args, f"writing {len(completions)} results"
        )
        await self.after_complete(passed, dependents, expired)

    def complete_call(self, completions: list[Completion], consumer: str = "") -> tuple[list[str], list[Any]]:
        """COMPLETE's keys and arguments for ``completions`` (see ``complete``)."""
        records = [
            (
                c.entry_id,
                c.job_id,
                c.result,
                c.ttl_ms,
                c.failure_ttl_ms,
                c.callback_id,
                c.callback_payload,
                c.priority,
                c.callback_function,
                c.function,
            )
            for c in completions
        ]
        keys = self._complete_job_keys(completions) if self.declares_job_keys else list(self._complete_keys)
        return keys, [self.keys.prefix, CONSUMER_GROUP, msgpack.packb(records, use_bin_type=False), consumer]

    async def after_complete(self, passed: Any, dependents: Any, expired: Any) -> None:
        """What follows COMPLETE's reply at once: work on keys it could not declare (see ``complete``)."""
        if passed or dependents or expired:
            await self._finish(passed, dependents, expired)

    def _complete_job_keys(self, completions: list[Completion]) -> list[str]:
        """COMPLETE's KEYS with the jobs' own (see its header)."""
        keys = list(self._complete_keys)
        functions: dict[str, None] = {}
        for c in completions:
            keys += self.keys.finished(c.job_id)
            if c.failure_ttl_ms > 0:
                keys.append(self.keys.failed_job(c.job_id))
            if c.callback_id:
                keys.append(self.keys.job(c.callback_id))
            if c.function:
                functions[c.function] = None
        for function in functions:
            keys += self.keys.slots(function)
        return keys

    async def _finish(self, passed: Any, dependents: Any = (), expired: Any = ()) -> None:
        """The step after COMPLETE, REQUEUE or UNREAD (see ops.finish). Its results already written, a Redis error
        here is only logged: what it leaves undone is done by the workers' periodic sweep and promotion."""
        try:
            await run(self.redis, ops.finish(self.keys, passed, dependents, expired))
        except (RedisError, OSError) as exc:
            logger.warning(
                "queue %r: releasing parked jobs or dependents failed (%s); the workers' sweep and promotion will",
                self.name,
                exc,
            )

    async def requeue(
        self, entry_id: str, job_id: str, *, run_at_ms: int, now_ms: int, priority: int = 0, function: str = ""
    ) -> None:
        """Put a running job back, due at run_at_ms (now or earlier: straight onto the stream). If its hash was
        deleted meanwhile, the entry stays pending and is later recorded as expired (see REQUEUE). ``function``
        (Delivery.function): a limited function's slot is passed on."""
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, entry_id, job_id, run_at_ms, now_ms, priority, function]
        keys = [*self.keys.lane_keys, self.keys.deferred, self.keys.job(job_id)]
        if function:
            keys += self.keys.slots(function)
        reply = await self.scripts.requeue(keys=keys, args=args)
        if int(reply[0]) and reply[1]:
            await self._finish(reply[1])

    async def promote_due(self, now_ms: int | None = None, limit: int = 1000) -> tuple[int, int | None]:
        """Move jobs due by Redis's clock (or by ``now_ms`` when given) to the stream; returns (moved, ms until
        the next deferred job is due, or None when there is none)."""
        return await run(self.redis, ops.promote_due(self.keys, now_ms, limit))

    async def heartbeat(self, consumer: str, deliveries: list[Delivery]) -> None:
        """Reset the idle time of the entries this worker runs (one XCLAIM per lane), so nobody reclaims them."""
        by_lane: dict[int, list[str]] = {}
        for delivery in deliveries:
            by_lane.setdefault(delivery.priority, []).append(delivery.entry_id)
        if not by_lane:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for priority, entry_ids in by_lane.items():
                pipe.xclaim(
                    self.keys.lane(priority),
                    CONSUMER_GROUP,
                    consumer,
                    min_idle_time=0,
                    message_ids=entry_ids,
                    justid=True,
                )
            await pipe.execute()

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over up to ``count`` entries idle longer than min_idle_ms: their worker stopped heartbeating.

        Lanes are scanned highest priority first. Each lane's scan resumes where the last one stopped (Redis
        looks at COUNT*10 entries per call), so entries behind many long-running live jobs are reached too."""
        claimed: list[Delivery] = []
        for priority in reversed(PRIORITIES):
            if len(claimed) >= count:
                break
            try:
                reply = await self.redis.xautoclaim(
                    self.keys.lane(priority),
                    CONSUMER_GROUP,
                    consumer,
                    min_idle_time=min_idle_ms,
                    start_id=self._reclaim_cursors[priority],
                    count=count - len(claimed),
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                    raise
                continue
            self._reclaim_cursors[priority] = _text(reply[0])
            claimed += [Delivery(_text(e), _text(f[b"id"]), priority, self.partition) for e, f in reply[1] if f]
        return claimed

    async def hand_back_consumer(self, consumer: str) -> int:
        """Put all jobs held by ``consumer`` back on their lanes now and forget the consumer."""
        return await run(self.redis, ops.hand_back(self.keys, consumer))

    async def prune_consumers(self, min_idle_ms: int) -> int:
        """Forget consumers that hold nothing and have not read for min_idle_ms: workers that died and whose
        jobs were taken over. A live worker removed by mistake is re-created by its next read."""
        return await run(self.redis, ops.prune_consumers(self.keys, min_idle_ms))

    async def cron_fence(self, cron_name: str) -> int | None:
        """The last tick (ms) of this cron job that any process enqueued."""
        return await run(self.redis, ops.cron_fence(self.keys, cron_name))

    async def abort_requests(self) -> list[str]:
        return await run(self.redis, ops.abort_requests(self.keys))

    async def clear_abort_requests(self, job_ids: list[str]) -> None:
        await run(self.redis, ops.clear_abort_requests(self.keys, job_ids))

    # --- health ------------------------------------------------------------------------------------------------

    async def write_health(self, worker_id: str, line: str, ttl_ms: int) -> None:
        """The worker's health line for ttl_ms, on Redis's clock (see WRITE_HEALTH)."""
        await run(self.redis, ops.write_health(self.keys.health(worker_id), self.keys.workers, worker_id, line, ttl_ms))

    async def clear_health(self, worker_id: str) -> None:
        await run(self.redis, ops.clear_health(self.keys.health(worker_id), self.keys.workers, worker_id))

    async def read_supervisor_health(self) -> list[dict[str, Any]]:
        """Every live supervisor's health entry (see supervisor/health.py)."""
        values = await run(self.redis, ops.live_entries(self.keys.supervisors, self.keys.supervisor_health))
        return [json.loads(v) for v in values]

    async def read_health(self) -> list[str]:
        """The health lines of every worker whose key has not expired."""
        return [_text(v) for v in await run(self.redis, ops.live_entries(self.keys.workers, self.keys.health))]

    async def write_named_health(self, key: str, line: str, ttl_ms: int) -> None:
        """arq's ``health_check_key``: the line under a key the settings name, for ttl_ms."""
        await run(self.redis, ops.set_value(key, line, ttl_ms))

    async def named_health(self, key: str) -> str | None:
        value = await run(self.redis, ops.value(key))
        return _text(value) if value else None

    async def eviction_policy(self) -> str | None:
        """Redis's maxmemory-policy; None when CONFIG GET is refused (see pool/eviction.py)."""
        return await run(self.redis, ops.eviction_policy())

    # --- inspection (pool/inspection.py) ------------------------------------------------------------------------

    async def info(self) -> dict[str, int]:
        """``counts`` plus the jobs waiting for dependencies (as deferred) and the live failed records."""
        return await run(self.redis, ops.queue_info(self.keys))

    async def job_states(self) -> list[tuple[str, str | None]]:
        return await run(self.redis, ops.job_states(self.keys))

    async def empty(self) -> int:
        return await run(self.redis, ops.empty_queue(self.keys))

    async def delete_all(self) -> int:
        return await run(self.redis, ops.delete_queue(self.keys))

    async def failed_ids(self) -> list[str]:
        return await run(self.redis, ops.failed_ids(self.keys))

    async def failed_records(self, job_ids: Sequence[str]) -> list[bytes | None]:
        return await run(self.redis, ops.failed_records(self.keys, job_ids))

    async def forget_failed(self, job_id: str) -> None:
        await run(self.redis, ops.forget_failed(self.keys, job_id))

    async def purge_failed(self) -> int:
        return await run(self.redis, ops.purge_failed(self.keys))

    # pages for the dashboard (pool/web): ranges with a COUNT, never the whole queue

    async def lane_sizes(self) -> list[tuple[int, int]]:
        return await run(self.redis, ops.lane_sizes(self.keys))

    async def ready_page(self, priority: int, after: str, count: int) -> list[tuple[str, str]]:
        return await run(self.redis, ops.ready_page(self.keys, priority, after, count))

    async def running_page(self, priority: int, after: str, count: int) -> list[tuple[str, str, str, int]]:
        return await run(self.redis, ops.running_page(self.keys, priority, after, count))

    async def deferred_page(self, offset: int, count: int) -> tuple[int, list[tuple[str, int]]]:
        return await run(self.redis, ops.deferred_page(self.keys, offset, count))

    async def failed_page(self, offset: int, count: int) -> tuple[int, list[tuple[str, bytes | None]]]:
        return await run(self.redis, ops.failed_page(self.keys, offset, count))

    async def cron_state(self, cron_names: Sequence[str]) -> tuple[list[int | None], int]:
        return await run(self.redis, ops.cron_state(self.keys, cron_names))


def _limit_args(limits: Limits) -> list[Any]:
    args: list[Any] = [len(limits)]
    for name, limit in limits.items():
        args += [name, limit]
    return args


def _sort_started(delivery: Delivery, item: Any, started: list[Delivery], expired: list[Delivery]) -> None:
    """File one START reply item: a started job gets its payload; parked and already-finished ones neither."""
    if item == b"expired":
        expired.append(delivery)
    elif item and item != b"parked":
        delivery.payload, delivery.attempts, delivery.score = item[0], int(item[1]), int(item[2] or 0)
        delivery.failed_dependency = _text(item[3])
        delivery.function = _text(item[4])
        started.append(delivery)
