"""The storage contract of one queue: every Redis command the queue issues lives here.

The worker and the client talk to a ``RedisQueue``; they never build a key or call a script themselves. The
life of a job (see scripts.py): enqueue -> [deferred -> promote] -> stream -> read by one consumer -> start ->
complete | requeue. A consumer that dies leaves its entries in the group's pending list; they are taken over by
``reclaim`` once idle longer than a few heartbeats, or at once by ``hand_back_consumer`` when its death is known.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import blocking
from .keys import CONSUMER_GROUP, PRIORITIES, QueueKeys
from .scripts import Scripts

logger = logging.getLogger("pool.worker")


@dataclass(slots=True)
class Delivery:
    """One job handed to this worker: a stream entry and, after ``start``, its payload and attempt count."""

    entry_id: str
    job_id: str
    priority: int = 0  # which lane (stream) the entry is in
    payload: bytes = b""
    attempts: int = 0
    score: int = 0
    failed_dependency: str = ""  # set when a job it depends on failed for good
    function: str = ""  # the job's function name, from its hash: max_tries is checked before decoding the payload
    finishing: bool = False  # the job function has returned: never cancel it now, its result must be written


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
    callback_function: str = ""


RESULT_WAIT_S = 5.0  # Job.result() blocks this long at most per read, then checks again and re-registers
WAITER_MARGIN_MS = 5_000  # a waiter's registration outlives its read by this much (round trip, a busy loop)

_SCRIPTS_ATTR = "_pool_scripts"
_QUEUES_ATTR = "_pool_queues"


def scripts_for(redis: Redis) -> Scripts:
    """Scripts are registered once per client and cached on it."""
    scripts: Scripts | None = getattr(redis, _SCRIPTS_ATTR, None)
    if scripts is None:
        scripts = Scripts(redis)
        setattr(redis, _SCRIPTS_ATTR, scripts)
    return scripts


def queue_for(redis: Redis, queue_name: str) -> RedisQueue:
    """The client side's RedisQueue of a queue, cached on the client: an enqueue (and the Job it returns)
    would otherwise build one, and its keys, every call. The worker keeps its own (it holds reclaim state)."""
    queues: dict[str, RedisQueue] | None = getattr(redis, _QUEUES_ATTR, None)
    if queues is None:
        queues = {}
        setattr(redis, _QUEUES_ATTR, queues)
    queue = queues.get(queue_name)
    if queue is None:
        queue = queues[queue_name] = RedisQueue(redis, queue_name)
    return queue


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
) -> tuple[Any, ...]:
    """One job as the ENQUEUE script reads it. The nonce lets the script recognise a replay of this call."""
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
    )


def enqueue_args(keys: QueueKeys, records: Sequence[tuple[Any, ...]]) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of the ENQUEUE script for ``job_record``s (also run by the supervisor's sync client)."""
    return [keys.stream, keys.deferred], [keys.prefix, msgpack.packb(list(records), use_bin_type=False)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _lane_priority(stream: bytes | str, keys: QueueKeys) -> int:
    name = _text(stream)
    return 0 if name == keys.stream else int(name.rsplit(":", 1)[1])


Limits = dict[str, int]  # function name -> max_concurrency across all workers


class RedisQueue:
    def __init__(self, redis: Redis, queue_name: str) -> None:
        # Typed Any: redis-py's reply types are unions over decode_responses; this module decodes replies itself.
        self.redis: Any = redis
        self.keys = QueueKeys(queue_name)
        self.scripts = scripts_for(redis)
        self._reclaim_cursors = {priority: "0-0" for priority in PRIORITIES}

    @property
    def name(self) -> str:
        return self.keys.queue_name

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """A hot-path script call (fetch, start, complete): on the client's short path when it has one
        (``PoolRedis.run_script``, pool/lane.py), else through redis-py's command path."""
        run_script = getattr(self.redis, "run_script", None)
        if run_script is None:
            return await script(keys=keys, args=args)
        (reply,) = await run_script(script, [(keys, args)])
        return reply

    # --- producer side -------------------------------------------------------------------------------------

    async def enqueue(self, job_id: str, payload: bytes, **kwargs: Any) -> bool:
        """Create the job atomically unless its id is taken; True when it was enqueued."""
        keys, args = enqueue_args(self.keys, [job_record(self.keys, job_id, payload, **kwargs)])
        (enqueued,) = await self.scripts.enqueue(keys=keys, args=args)
        return bool(enqueued)

    async def abort(self, job_id: str, *, now_ms: int, aborted_result: bytes, result_ttl_ms: int) -> int:
        """0: no such job; 1: running, its worker was asked to cancel it; 2: not started, aborted here."""
        keys = [self.keys.deferred, self.keys.aborts]
        args: list[Any] = [self.keys.prefix, job_id, now_ms, aborted_result, result_ttl_ms]
        return int(await self.scripts.abort(keys=keys, args=args))

    # --- reading state ---------------------------------------------------------------------------------------

    async def job_fields(self, job_id: str) -> tuple[bytes | None, int, str | None, int]:
        """(payload, attempts, state, score) of a job that is not finished; payload None when there is none."""
        payload, attempts, state, score = await self.redis.hmget(self.keys.job(job_id), ["d", "t", "s", "sc"])
        return (
            payload,
            int(attempts or 0),
            _text(state) if state is not None else None,
            int(score or 0),
        )

    async def result_payload(self, job_id: str) -> bytes | None:
        value: bytes | None = await self.redis.get(self.keys.result(job_id))
        return value

    async def has_result(self, job_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.result(job_id)))

    async def result_or_register_waiter(self, job_id: str, timeout_s: float) -> tuple[bytes | None, str | None, str]:
        """(result payload, None, '') when the job has a result; (None, None, '') when there is no such job;
        else (None, state, since): a waiter is registered for timeout_s (see the WAIT script) unless timeout_s
        is 0 (no time left to wait: only check), and ``wait_for_result`` reads the notifications after
        ``since``."""
        ttl_ms = blocking.block_ms(timeout_s) + WAITER_MARGIN_MS if timeout_s > 0 else 0
        reply = await self.scripts.wait(keys=[], args=[self.keys.prefix, job_id, ttl_ms])
        if int(reply[0]) == 1:
            return reply[1], None, ""
        if int(reply[0]) == 2:
            return None, _text(reply[1]), _text(reply[2])
        return None, None, ""

    def result_wait_s(self, remaining_s: float | None) -> float:
        """How long ``Job.result()``'s next blocking read may last: its time left, at most RESULT_WAIT_S, and
        within the connections' socket timeout (pool/blocking.py)."""
        longest = min(RESULT_WAIT_S, blocking.block_limit_s(self.redis))
        return longest if remaining_s is None else max(min(remaining_s, longest), 0.0)

    async def wait_for_result(self, job_id: str, since: str, timeout_s: float) -> bytes | None:
        """Block up to timeout_s for the notification of a completion after ``since`` and return the result
        payload it carries; None on a timeout. The read consumes nothing: every waiter of the run reads the
        same entry, and a read retried after a lost reply reads it again."""
        key = self.keys.notify(job_id)
        try:
            reply: Any = await self.redis.xread({key: since}, count=1, block=blocking.block_ms(timeout_s))
        except RedisTimeoutError:  # the socket timed out after all (a stalled machine): the caller checks again
            return None
        for _, entries in reply or []:
            for _, fields in entries:
                payload: bytes = fields[b"r"]
                return payload
        return None

    async def counts(self) -> dict[str, int]:
        """Ready (undelivered), running (delivered, not acked), deferred and parked (waiting for a
        max_concurrency slot) job counts."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for lane in self.keys.lanes:
                pipe.xlen(lane)
            pipe.zcard(self.keys.deferred)
            pipe.smembers(self.keys.parked_functions)
            *lengths, deferred, parked_functions = await pipe.execute()
        parked = 0
        for function in parked_functions:
            parked += int(await self.redis.llen(self.keys.parked(_text(function))))
        running = 0
        for lane, length in zip(self.keys.lanes, lengths, strict=True):
            if length:
                with contextlib.suppress(ResponseError):  # no group yet: nothing delivered
                    running += int((await self.redis.xpending(lane, CONSUMER_GROUP))["pending"])
        return {
            "ready": max(sum(lengths) - running, 0),
            "running": running,
            "deferred": int(deferred),
            "parked": parked,
        }

    async def job_ids_in_stream(self) -> list[str]:
        """Ids of entries in every lane (delivered ones included), highest priority first."""
        ids = []
        for lane in self.keys.lanes:
            ids += [_text(fields[b"id"]) for _, fields in await self.redis.xrange(lane)]
        return ids

    async def deferred_ids(self) -> list[tuple[str, int]]:
        items = await self.redis.zrange(self.keys.deferred, 0, -1, withscores=True)
        return [(_text(job_id), int(score)) for job_id, score in items]

    async def result_job_ids(self) -> list[str]:
        prefix = self.keys.result("")
        keys = self.redis.scan_iter(match=self.keys.pattern("result:"), count=1000)
        return [_text(key)[len(prefix) :] async for key in keys]

    # --- consumer side ---------------------------------------------------------------------------------------

    async def ensure_group(self) -> int:
        """Create every lane's stream and consumer group; id 0 so jobs enqueued before any worker ran (or
        before the group was recreated) are delivered. Returns how many groups it had to create."""
        created = 0
        for lane in self.keys.lanes:
            try:
                await self.redis.xgroup_create(lane, CONSUMER_GROUP, id="0", mkstream=True)
                created += 1
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        return created

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
        Lists the queued job hashes first and the lanes after (the script's proof needs that order). Costs a
        SCAN of the database and a read of every lane: only run after a loss was detected."""
        queued: dict[int, list[str]] = {}
        job_prefix = self.keys.job("")
        keys = [_text(key) async for key in self.redis.scan_iter(match=job_prefix + "*", count=1000, _type="HASH")]
        for i in range(0, len(keys), 1000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys[i : i + 1000]:
                    pipe.hmget(key, ["s", "p"])
                replies = await pipe.execute()
            for key, (state, priority) in zip(keys[i : i + 1000], replies, strict=True):
                if state == b"q":
                    queued.setdefault(int(priority or 0), []).append(key[len(job_prefix) :])
        restored = 0
        for priority, job_ids in queued.items():
            lane = self.keys.lane(priority)
            in_lane, last_id = await self._lane_job_ids(lane)
            missing = [job_id for job_id in job_ids if job_id not in in_lane]
            for i in range(0, len(missing), 500):
                args: list[Any] = [self.keys.prefix, priority, last_id, *missing[i : i + 500]]
                restored += int(await self.scripts.restore_queued(keys=[self.keys.stream], args=args))
        return restored

    async def _lane_job_ids(self, lane: str) -> tuple[set[str], str]:
        """The job ids of a lane's entries, and its last entry's id ('0-0' when empty), read in chunks."""
        ids: set[str] = set()
        last_id, start = "0-0", "-"
        while True:
            entries = await self.redis.xrange(lane, min=start, count=1000)
            if not entries:
                return ids, last_id
            ids.update(_text(fields[b"id"]) for _, fields in entries)
            last_id = _text(entries[-1][0])
            start = "(" + last_id

    async def fetch(
        self, consumer: str, count: int, order: Sequence[int], limits: Limits
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Read up to ``count`` new entries without blocking, lanes in ``order``, and start them in the same
        round trip. Returns (started, expired) as ``start`` does. The call's token (new per call, the same when
        the call is replayed after a lost reply) lets FETCH answer a replay with the entries it already read."""
        token = os.urandom(8).hex()
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer, count, token, *_limit_args(limits), *order]
        reply = await self._run(self.scripts.fetch, [self.keys.stream, self.keys.fetched(consumer)], args)
        if int(reply[0]):
            await self.recover_group()  # a lane or its group is gone: recreate it
        started: list[Delivery] = []
        expired: list[Delivery] = []
        for entry_id, job_id, priority, item in reply[1:]:
            delivery = Delivery(_text(entry_id), _text(job_id), int(priority))
            _sort_started(delivery, item, started, expired)
        return started, expired

    async def read(self, consumer: str, count: int, block_ms: int | None) -> list[Delivery]:
        """New entries for this consumer from any lane, blocking up to block_ms (None: don't block). With
        entries in several lanes this may return up to ``count`` from each: see ``unread``."""
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
            deliveries += [Delivery(_text(entry_id), _text(f[b"id"]), priority) for entry_id, f in entries]
        deliveries.sort(key=lambda d: -d.priority)
        return deliveries

    async def sweep_parked(self, limits: Limits) -> int:
        """Release parked jobs of limited functions into slots that were freed without passing them on."""
        if not limits:
            return 0
        return int(
            await self.scripts.sweep_parked(keys=[self.keys.stream], args=[self.keys.prefix, *_limit_args(limits)[1:]])
        )

    async def unread(self, consumer: str, deliveries: list[Delivery]) -> None:
        """Put entries this consumer read but will not run back at the end of their lane, undoing its START."""
        if deliveries:
            args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer]
            for d in deliveries:
                args += [d.entry_id, d.job_id, d.priority]
            await self.scripts.unread(keys=[self.keys.stream], args=args)

    async def start(
        self, consumer: str, deliveries: list[Delivery], limits: Limits | None = None
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Mark delivered jobs running and fill in their payloads. Returns (started, expired): expired jobs
        (their hash is gone, no result) stay pending until the caller records their failure. Jobs of a function
        at its max_concurrency are parked (in neither list)."""
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer, *_limit_args(limits or {})]
        for delivery in deliveries:
            args += [delivery.entry_id, delivery.job_id, delivery.priority]
        reply = await self._run(self.scripts.start, [self.keys.stream], args)
        started: list[Delivery] = []
        expired: list[Delivery] = []
        for delivery, item in zip(deliveries, reply, strict=True):
            _sort_started(delivery, item, started, expired)
        return started, expired

    async def complete(self, completions: list[Completion], consumer: str = "") -> None:
        """Write the results of finished jobs, then ack and delete them: one round trip for the batch.
        ``consumer`` (the worker that ran them) lets a result be recorded even when its stream entry vanished
        (see COMPLETE)."""
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
            )
            for c in completions
        ]
        args = [self.keys.prefix, CONSUMER_GROUP, msgpack.packb(records, use_bin_type=False), consumer]
        keys = [self.keys.stream, self.keys.aborts, self.keys.deferred, self.keys.failed]
        await self._run(self.scripts.complete, keys, args)

    async def requeue(self, entry_id: str, job_id: str, *, run_at_ms: int, now_ms: int, priority: int = 0) -> None:
        """Put a running job back, due at run_at_ms (now or earlier: straight onto the stream). If its hash was
        deleted meanwhile, the entry stays pending and is later recorded as expired (see REQUEUE)."""
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, entry_id, job_id, run_at_ms, now_ms, priority]
        await self.scripts.requeue(keys=[self.keys.stream, self.keys.deferred], args=args)

    async def promote_due(self, now_ms: int | None = None, limit: int = 1000) -> tuple[int, int | None]:
        """Move jobs due by Redis's clock (or by ``now_ms`` when given) to the stream; returns (moved, ms until
        the next deferred job is due, or None when there is none)."""
        moved, next_due_in = await self.scripts.promote(
            keys=[self.keys.stream, self.keys.deferred],
            args=[self.keys.prefix, "" if now_ms is None else now_ms, limit],
        )
        return int(moved), None if next_due_in is None else int(next_due_in)

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
            claimed += [Delivery(_text(e), _text(f[b"id"]), priority) for e, f in reply[1] if f]
        return claimed

    async def hand_back_consumer(self, consumer: str) -> int:
        """Put all jobs held by ``consumer`` back on their lanes now and forget the consumer."""
        args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, consumer, *PRIORITIES]
        return int(await self.scripts.hand_back_consumer(keys=[self.keys.stream], args=args))

    async def prune_consumers(self, min_idle_ms: int) -> int:
        """Forget consumers that hold nothing and have not read for min_idle_ms: workers that died and whose
        jobs were taken over. A live worker removed by mistake is re-created by its next read."""
        try:
            consumers = await self.redis.xinfo_consumers(self.keys.stream, CONSUMER_GROUP)
        except ResponseError:
            return 0
        removed = 0
        for consumer in consumers:
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) >= min_idle_ms:
                args: list[Any] = [self.keys.prefix, CONSUMER_GROUP, _text(consumer["name"]), *PRIORITIES]
                if int(await self.scripts.prune_consumer(keys=[self.keys.stream], args=args)) >= 0:
                    removed += 1
        return removed

    async def cron_fence(self, cron_name: str) -> int | None:
        """The last tick (ms) of this cron job that any process enqueued."""
        value = await self.redis.get(self.keys.cron_fence(cron_name))
        return int(value) if value is not None else None

    async def abort_requests(self) -> list[str]:
        job_ids = await self.redis.zrange(self.keys.aborts, 0, -1)
        return [_text(job_id) for job_id in job_ids]

    async def clear_abort_requests(self, job_ids: list[str]) -> None:
        if job_ids:
            await self.redis.zrem(self.keys.aborts, *job_ids)

    # --- health ------------------------------------------------------------------------------------------------

    async def write_health(self, worker_id: str, line: str, ttl_ms: int) -> None:
        """The worker's health line for ttl_ms, on Redis's clock (see WRITE_HEALTH)."""
        keys = [self.keys.health(worker_id), self.keys.workers]
        await self.scripts.write_health(keys=keys, args=[worker_id, line, ttl_ms])

    async def clear_health(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.health(worker_id))
            pipe.zrem(self.keys.workers, worker_id)
            await pipe.execute()

    async def read_supervisor_health(self) -> list[dict[str, Any]]:
        """Every live supervisor's health entry (see supervisor/health.py)."""
        values = await self._live_entries(self.keys.supervisors, self.keys.supervisor_health)
        return [json.loads(v) for v in values]

    async def read_health(self) -> list[str]:
        """The health lines of every worker whose key has not expired."""
        return [_text(v) for v in await self._live_entries(self.keys.workers, self.keys.health)]

    async def _live_entries(self, index: str, key_of: Callable[[str], str]) -> list[bytes]:
        """The values of an index's entries whose keys still exist: a key's TTL runs on Redis's clock, so
        whether an entry is live never depends on the reader's or the writer's clock. (Writers drop expired
        members from the index, so it stays small.)"""
        members = await self.redis.zrange(index, 0, -1)
        if not members:
            return []
        values = await self.redis.mget([key_of(_text(m)) for m in members])
        return [v for v in values if v is not None]


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
