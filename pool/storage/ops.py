"""Every storage operation of a queue that is not on the per-job hot path, written once, free of I/O.

An op is a generator: it yields a batch of requests (``Command``: a redis-py client method and its arguments;
``ScriptCall``: one of pool/storage/scripts.py's scripts by name), receives their replies in order, and returns its
result. ``drivers.run`` (async) and ``drivers.run_sync`` (the supervisor's sync client) run the very same op,
so a change to how the queue talks to Redis is made here once. Error replies arrive as exception objects; an op
raises them (``_ok``) or handles the ones it expects (BUSYGROUP, NOGROUP...) itself.

Every op is safe to run again after a lost reply: reads are reads, and the writes are idempotent (SET, DEL,
ZREM, XGROUP CREATE tolerating BUSYGROUP, scripts whose contracts say they are replay safe).

A script call declares every key the script touches (see pool/storage/scripts.py). Where those keys are named by
data in Redis (the due jobs, a consumer's pending entries, the parked jobs given a slot, a job's dependents), an op
reads first, or takes the ids the previous script returned, and calls the script with their keys declared; the
script acts only on those ids and returns any others it met, for the op to call again with (``_PASSES`` times
at most: what is left waits for the next run of the op).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack
from redis.exceptions import ResponseError

from ..redis.replication import Durability
from .eviction import policy_from_reply
from .keys import ALL_RESULTS_PATTERN, CONSUMER_GROUP, QueueKeys, result_key_parts

T = TypeVar("T")

_PASSES = 4  # calls of a script that returns ids it needs declared, before an op leaves the rest for its next run


@dataclass(frozen=True, slots=True, init=False)
class Command:
    """``Command("xlen", key)`` runs ``client.xlen(key)``: redis-py's own method, so replies are parsed the same
    way on both drivers."""

    method: str
    args: tuple[Any, ...]
    options: tuple[tuple[str, Any], ...]

    def __init__(self, method: str, *args: Any, **options: Any) -> None:
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "options", tuple(options.items()))


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """A call of the script ``Scripts.<name>`` (pool/storage/scripts.py) with its KEYS and ARGV."""

    name: str
    keys: list[str]
    args: list[Any]


Request = Command | ScriptCall
Op = Generator[list[Request], list[Any], T]


def _ok(reply: Any) -> Any:
    """A reply, or the error Redis answered raised."""
    if isinstance(reply, Exception):
        raise reply
    return reply


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def one(request: Request) -> Op[Any]:
    """A single request's reply (its error raised)."""
    (reply,) = yield [request]
    return _ok(reply)


# --- connection and setup ----------------------------------------------------------------------------------------


def ping() -> Op[None]:
    yield from one(Command("ping"))


def eviction_policy() -> Op[str | None]:
    """Redis's maxmemory-policy; None when CONFIG GET is refused (managed Redis, an ACL without +config)."""
    (reply,) = yield [Command("config_get", "maxmemory-policy")]
    return None if isinstance(reply, ResponseError) else policy_from_reply(_ok(reply))


def ensure_group(keys: QueueKeys) -> Op[int]:
    """Create every lane's stream and consumer group; id 0 so jobs enqueued before any worker ran (or before the
    group was recreated) are delivered. Returns how many groups it had to create."""
    replies = yield [Command("xgroup_create", lane, CONSUMER_GROUP, id="0", mkstream=True) for lane in keys.lanes]
    created = 0
    for reply in replies:
        if isinstance(reply, ResponseError) and "BUSYGROUP" in str(reply):
            continue
        _ok(reply)
        created += 1
    return created


# --- reading state ---------------------------------------------------------------------------------------------


def counts(keys: QueueKeys) -> Op[dict[str, int]]:
    """Ready (undelivered), running (delivered, not acked), deferred and parked job counts: one pipeline, then
    the parked lists and the pending count of every non-empty lane in a second."""
    first: list[Request] = [Command("xlen", lane) for lane in keys.lanes]
    first += [Command("zcard", keys.deferred), Command("smembers", keys.parked_functions)]
    *lengths, deferred, parked_functions = [_ok(reply) for reply in (yield first)]
    busy = [lane for lane, length in zip(keys.lanes, lengths, strict=True) if length]
    functions = sorted(_text(f) for f in parked_functions)
    second: list[Request] = [Command("llen", keys.parked(f)) for f in functions]
    second += [Command("xpending", lane, CONSUMER_GROUP) for lane in busy]
    replies = (yield second) if second else []
    parked = sum(int(_ok(r)) for r in replies[: len(functions)])
    running = 0
    for reply in replies[len(functions) :]:
        if not isinstance(reply, ResponseError):  # no group yet: nothing delivered
            running += int(reply["pending"])
    return {"ready": max(sum(lengths) - running, 0), "running": running, "deferred": int(deferred), "parked": parked}


def lane_counts(keys: QueueKeys) -> Op[list[tuple[int, int]]]:
    """(ready, running) of each lane, priority 0 first (``counts`` sums them): the lanes' lengths, then the pending
    count of each non-empty one. For the metrics' depth by priority."""
    lanes = keys.lane_keys  # priority order, 0 first
    lengths = [int(_ok(reply)) for reply in (yield [Command("xlen", lane) for lane in lanes])]
    busy = [i for i, length in enumerate(lengths) if length]
    replies = (yield [Command("xpending", lanes[i], CONSUMER_GROUP) for i in busy]) if busy else []
    running = [0] * len(lengths)
    for i, reply in zip(busy, replies, strict=True):
        if not isinstance(reply, ResponseError):  # no group yet: nothing delivered
            running[i] = int(reply["pending"])
    return [(max(length - run, 0), run) for length, run in zip(lengths, running, strict=True)]


def job_fields(keys: QueueKeys, job_id: str) -> Op[tuple[bytes | None, int, str | None, int]]:
    """(payload, attempts, state, score) of a job that is not finished; payload None when there is none."""
    payload, attempts, state, score = yield from one(Command("hmget", keys.job(job_id), ["d", "t", "s", "sc"]))
    return payload, int(attempts or 0), _text(state) if state is not None else None, int(score or 0)


def job_progress(keys: QueueKeys, job_id: str) -> Op[bytes | None]:
    """The progress record a running job last reported (its hash's field pg), None when there is none."""
    reply: bytes | None = yield from one(Command("hget", keys.job(job_id), "pg"))
    return reply


def set_progress(keys: QueueKeys, job_id: str, mark: str, record: bytes) -> Op[bool]:
    """Record a running job's progress while ``mark`` (its run) holds it; False when it no longer does."""
    return bool((yield from one(ScriptCall("progress", [keys.job(job_id)], [mark, record]))))


def value(key: str) -> Op[bytes | None]:
    """A string key's value (a result, a health line...)."""
    reply: bytes | None = yield from one(Command("get", key))
    return reply


def set_value(key: str, data: bytes | str, ttl_ms: int) -> Op[None]:
    yield from one(Command("set", key, data, px=ttl_ms))


def exists(key: str) -> Op[bool]:
    return bool((yield from one(Command("exists", key))))


def agree_partitions(keys: QueueKeys, wanted: int) -> Op[int]:
    """The queue's partition count as recorded in Redis (1 when none is), recording ``wanted`` first when none is
    and ``wanted`` is more than 1 (SET NX: the first producer or worker to come records it)."""
    if wanted > 1:
        _, recorded = yield [
            Command("set", keys.partition_count, wanted, nx=True),
            Command("get", keys.partition_count),
        ]
    else:
        recorded = yield from one(Command("get", keys.partition_count))
    return int(recorded) if recorded else 1


def scan(match: str, type_: str | None = None) -> Op[list[str]]:
    """Every key matching ``match`` (SCAN, 1,000 at a time): for inspection and recovery, never per job."""
    found: list[str] = []
    cursor: int = 0
    while True:
        cursor, batch = yield from one(Command("scan", cursor, match=match, count=1000, _type=type_))
        found += [_text(key) for key in batch]
        if int(cursor) == 0:
            return found


def job_ids_in_stream(keys: QueueKeys) -> Op[list[str]]:
    """Ids of entries in every lane (delivered ones included), highest priority first."""
    replies = yield [Command("xrange", lane) for lane in keys.lanes]
    return [_text(fields[b"id"]) for reply in replies for _, fields in _ok(reply)]


def deferred_ids(keys: QueueKeys) -> Op[list[tuple[str, int]]]:
    items = yield from one(Command("zrange", keys.deferred, 0, -1, withscores=True))
    return [(_text(job_id), int(score)) for job_id, score in items]


def result_job_ids(keys: QueueKeys) -> Op[list[str]]:
    prefix = keys.result("")
    return [key[len(prefix) :] for key in (yield from scan(keys.pattern("result:")))]


def all_result_ids() -> Op[list[tuple[str, str]]]:
    """(queue name, job id) of every kept result, of every queue."""
    found = [result_key_parts(key) for key in (yield from scan(ALL_RESULTS_PATTERN))]
    return [parts for parts in found if parts is not None]


def job_states(keys: QueueKeys) -> Op[list[tuple[str, str | None]]]:
    """(job id, state) of every job hash of the queue (a job not finished)."""
    prefix = keys.job("")
    job_keys = yield from scan(keys.pattern("job:"))
    found: list[tuple[str, str | None]] = []
    for start in range(0, len(job_keys), 1000):
        chunk = job_keys[start : start + 1000]
        replies = yield [Command("hget", key, "s") for key in chunk]
        found += [
            (key[len(prefix) :], _text(s) if (s := _ok(r)) is not None else None)
            for key, r in zip(chunk, replies, strict=True)
        ]
    return found


def redis_now_ms() -> Op[int]:
    """Redis's clock in ms: the one hosts share (their own clocks disagree)."""
    seconds, microseconds = yield from one(Command("time"))
    return int(seconds) * 1000 + int(microseconds) // 1000


def queue_info(keys: QueueKeys) -> Op[dict[str, int]]:
    """``counts``, with the jobs waiting for dependencies counted as deferred, and the live failed records."""
    info = yield from counts(keys)
    now_ms = yield from redis_now_ms()
    # the registry is scored by each record's expiry on Redis's clock (COMPLETE takes it from TIME): the live
    # ones are counted in one command, whatever the reader's host clock says
    waiting, failed = map(
        _ok, (yield [Command("scard", keys.waiting), Command("zcount", keys.failed, f"({now_ms}", "+inf")])
    )
    info["deferred"] += int(waiting)
    info["failed"] = int(failed)
    return info


# --- clients: aborts and waiting for results ------------------------------------------------------------------


def abort(keys: QueueKeys, job_id: str, now_ms: int, aborted_result: bytes, result_ttl_ms: int) -> Op[int]:
    """0: no such job; 1: running, its worker was asked to cancel it; 2: not started, aborted here (see ABORT).
    The job's function is read first, so the call declares the keys of its slots; then the step after ABORT."""
    for _ in range(_PASSES):
        function = yield from one(Command("hget", keys.job(job_id), "f"))
        function = _text(function) if function is not None else ""
        call_keys = [keys.deferred, keys.aborts, keys.waiting, keys.releasing, *keys.finished(job_id)]
        if function:
            call_keys += keys.slots(function)
        args: list[Any] = [keys.prefix, job_id, now_ms, aborted_result, result_ttl_ms, function]
        reply = yield from one(ScriptCall("abort", call_keys, args))
        code = int(reply[0])
        if code == 2:
            passed, dependents = reply[1], reply[2]
            yield from finish(keys, passed, [[job_id, *dependents]] if dependents else [], [])
        if code != -1:  # -1: the job's function changed since it was read (its id reused): read it again
            return code
    return 0


def result_or_register_waiter(keys: QueueKeys, job_id: str, ttl_ms: int) -> Op[tuple[bytes | None, str | None, str]]:
    """(result, None, '') when the job has one; (None, None, '') when there is no such job; else (None, state,
    since), a waiter registered for ttl_ms unless it is 0 (see WAIT)."""
    wait_keys = [keys.result(job_id), keys.job(job_id), keys.waiters(job_id), keys.notify(job_id)]
    reply = yield from one(ScriptCall("wait", wait_keys, [ttl_ms]))
    if int(reply[0]) == 1:
        return reply[1], None, ""
    if int(reply[0]) == 2:
        return None, _text(reply[1]), _text(reply[2])
    return None, None, ""


def notified_result(keys: QueueKeys, job_id: str, since: str, block_ms: int) -> Op[bytes | None]:
    """Block up to block_ms for the notification of a completion after ``since``; the result payload it carries,
    None on a timeout. The read consumes nothing: every waiter reads the same entry, and a replay reads it again."""
    reply = yield from one(Command("xread", {keys.notify(job_id): since}, count=1, block=block_ms))
    for _, entries in reply or []:
        for _, fields in entries:
            payload: bytes = fields[b"r"]
            return payload
    return None


# --- deferred and parked jobs --------------------------------------------------------------------------------------


def promote_due(keys: QueueKeys, now_ms: int | None, limit: int) -> Op[tuple[int, int | None]]:
    """Move jobs due by Redis's clock (or by ``now_ms`` when given) to the stream; returns (moved, ms until the
    next deferred job is due, or None when there is none). PROMOTE is called first with no job known (it returns
    the due ids), then with the due ids, whose keys that call declares; and the dependents of finished jobs whose
    release was lost with its worker (PROMOTE counts them) are released."""
    known: list[str] = []
    moved = 0
    for _ in range(_PASSES):
        call_keys = [*keys.lane_keys, keys.deferred, keys.releasing, *map(keys.job, known)]
        args: list[Any] = [keys.prefix, "" if now_ms is None else now_ms, limit, *known]
        count, next_due_in, unknown, pending = yield from one(ScriptCall("promote", call_keys, args))
        moved += int(count)
        if not unknown:
            break
        known = [_text(job_id) for job_id in unknown]
    if int(pending):
        yield from release_pending(keys)
    return moved, None if next_due_in is None else int(next_due_in)


def sweep_parked(keys: QueueKeys, limits: Mapping[str, int]) -> Op[int]:
    """Release parked jobs of limited functions (``limits``: function -> max_concurrency) into slots passed to
    them or freed without passing them on (see SWEEP_PARKED): reads each function's parked list and running set
    first, so the call declares their jobs' keys. Nothing parked: one pipeline of reads, no script."""
    functions = list(limits)
    reads: list[Request] = []
    for function in functions:
        running, parked = keys.slots(function)
        reads += [Command("lrange", parked, 0, 2 * limits[function] - 1), Command("smembers", running)]
    replies = yield reads
    known: dict[str, set[str]] = {}
    for function, heads, members in zip(functions, replies[0::2], replies[1::2], strict=True):
        if _ok(heads):
            known[function] = {_text(job_id) for job_id in [*_ok(heads), *_ok(members)]}
    return (yield from release_parked(keys, {f: limits[f] for f in known}, known)) if known else 0


def release_parked(keys: QueueKeys, limits: Mapping[str, int], known: Mapping[str, Iterable[str]]) -> Op[int]:
    """SWEEP_PARKED for ``limits`` (function -> max_concurrency, or 0 when the caller does not know it: then only
    the parked jobs a slot was passed to are released) with the keys of the ``known`` ids of each function
    declared, and again with the ids it returns. Returns how many jobs were released."""
    ids = {function: set(known.get(function, ())) for function in limits}
    released = 0
    for _ in range(_PASSES):
        call_keys = list(keys.lane_keys)
        args: list[Any] = [keys.prefix]
        for function, limit in limits.items():
            listed = sorted(ids[function])
            call_keys += keys.slots(function)
            for job_id in listed:
                call_keys += keys.job_and_result(job_id)
            args += [function, limit, len(listed), *listed]
        count, needed = yield from one(ScriptCall("sweep_parked", call_keys, args))
        released += int(count)
        if not needed:
            break
        for function in ids:  # (which function needs an id is not said: a few more keys declared is harmless)
            ids[function].update(_text(job_id) for job_id in needed)
    return released


def release_dependents(keys: QueueKeys, dependents: Mapping[str, Collection[str]]) -> Op[None]:
    """RELEASE_DEPENDENTS for finished jobs (job id -> the ids of the jobs waiting on it), their keys declared."""
    finished = list(dependents)
    known = {job_id for waiting in dependents.values() for job_id in waiting}
    for _ in range(_PASSES):
        ids = sorted(known)
        call_keys = [*keys.lane_keys, keys.deferred, keys.waiting, keys.releasing]
        call_keys += [keys.dependents(job_id) for job_id in finished] + [keys.job(job_id) for job_id in ids]
        args: list[Any] = [keys.prefix, len(finished), *finished, *ids]
        needed = yield from one(ScriptCall("release_dependents", call_keys, args))
        more = {_text(job_id) for job_id in needed} - known
        if not more:
            return
        known |= more


def release_pending(keys: QueueKeys) -> Op[None]:
    """Release the dependents of the finished jobs still in ``releasing``: the step after their COMPLETE or
    ABORT was lost (its worker or client died in between), or is under way (then this one finds it done)."""
    finished = [_text(job_id) for job_id in (yield from one(Command("hkeys", keys.releasing)))]
    for start in range(0, len(finished), 100):
        chunk = finished[start : start + 100]
        replies = yield [Command("smembers", keys.dependents(job_id)) for job_id in chunk]
        yield from release_dependents(
            keys, {job_id: [_text(m) for m in _ok(reply)] for job_id, reply in zip(chunk, replies, strict=True)}
        )


def finish(
    keys: QueueKeys, passed: Sequence[Any], dependents: Sequence[Sequence[Any]], expired: Sequence[Any]
) -> Op[None]:
    """The step after COMPLETE, ABORT, REQUEUE, UNREAD and HAND_BACK_CONSUMER: the work on keys named by what
    that script read, which it returned rather than did (its call could not declare them): ``passed``, the
    (function, id, ...) of parked jobs given a slot, go onto their lanes (SWEEP_PARKED); ``dependents``, lists
    [finished job id, ids waiting on it...], are released (RELEASE_DEPENDENTS); ``expired`` failed registry
    members are dropped or re-scored (TRIM_FAILED). Each is safe to run twice, and each is also done by a
    periodic op if this one is lost: sweep_parked, promote_due (for dependents), the next COMPLETE with failures."""
    if passed:
        pairs = [_text(value) for value in passed]
        given: dict[str, list[str]] = {}
        for function, job_id in zip(pairs[0::2], pairs[1::2], strict=True):
            given.setdefault(function, []).append(job_id)
        yield from release_parked(keys, dict.fromkeys(given, 0), given)
    if dependents:
        groups = [[_text(value) for value in group] for group in dependents]
        yield from release_dependents(keys, {group[0]: group[1:] for group in groups})
    if expired:
        ids = [_text(job_id) for job_id in expired]
        call_keys = [keys.failed, *map(keys.failed_job, ids)]
        yield from one(ScriptCall("trim_failed", call_keys, [keys.prefix, *ids]))


# --- consumers ---------------------------------------------------------------------------------------------------


def hand_back(keys: QueueKeys, consumer: str) -> Op[int]:
    """Put all jobs held by ``consumer`` back on their lanes now and forget the consumer; 0 when the queue has no
    group (nothing can be pending). Reads the consumer's pending entries, their job ids and functions first, so
    HAND_BACK_CONSUMER declares their keys; again while the consumer holds entries read since."""
    total = 0
    passed: list[Any] = []
    for _ in range(1000):  # each pass hands back up to 1,000 entries per lane
        pending = yield [
            Command("xpending_range", lane, CONSUMER_GROUP, "-", "+", 1000, consumername=consumer)
            for lane in keys.lane_keys
        ]
        entries = [
            (priority, _text(row["message_id"]))
            for priority, reply in enumerate(pending)
            if not isinstance(reply, ResponseError)  # no such lane, or no group on it: nothing held there
            for row in reply
        ]
        job_ids = [""] * len(entries)
        functions = [""] * len(entries)
        if entries:
            found = yield [Command("xrange", keys.lane(p), entry_id, entry_id) for p, entry_id in entries]
            job_ids = [_text(_ok(reply)[0][1][b"id"]) if _ok(reply) else "" for reply in found]
            named = [job_id for job_id in job_ids if job_id]
            fields = (yield [Command("hget", keys.job(job_id), "f") for job_id in named]) if named else []
            function_of = {
                job_id: _text(f) if (f := _ok(reply)) else "" for job_id, reply in zip(named, fields, strict=True)
            }
            functions = [function_of.get(job_id, "") for job_id in job_ids]
        call_keys = list(keys.lane_keys)
        for function in dict.fromkeys(f for f in functions if f):
            call_keys += keys.slots(function)
        call_keys += [keys.job(job_id) for job_id in job_ids if job_id]
        args: list[Any] = [keys.prefix, CONSUMER_GROUP, consumer]
        for (priority, entry_id), job_id, function in zip(entries, job_ids, functions, strict=True):
            args += [priority, entry_id, job_id, function]
        (reply,) = yield [ScriptCall("hand_back_consumer", call_keys, args)]
        if isinstance(reply, ResponseError) and "NOGROUP" in str(reply):
            break
        count, holds, given = _ok(reply)
        total += int(count)
        passed += given
        if not int(holds):
            break
    if passed:
        yield from finish(keys, passed, (), ())
    return total


def prune_consumers(keys: QueueKeys, min_idle_ms: int) -> Op[int]:
    """Forget consumers that hold nothing and have not read for min_idle_ms (see RedisQueue.prune_consumers)."""
    (reply,) = yield [Command("xinfo_consumers", keys.stream, CONSUMER_GROUP)]
    if isinstance(reply, ResponseError):
        return 0
    idle = [_text(c["name"]) for c in reply if int(c["pending"]) == 0 and int(c["idle"]) >= min_idle_ms]
    removed = 0
    for name in idle:
        if int((yield from one(ScriptCall("prune_consumer", list(keys.lane_keys), [CONSUMER_GROUP, name])))) >= 0:
            removed += 1
    return removed


def abort_requests(keys: QueueKeys) -> Op[list[str]]:
    return [_text(job_id) for job_id in (yield from one(Command("zrange", keys.aborts, 0, -1)))]


def clear_abort_requests(keys: QueueKeys, job_ids: Sequence[str]) -> Op[None]:
    if job_ids:
        yield from one(Command("zrem", keys.aborts, *job_ids))


# --- health --------------------------------------------------------------------------------------------------------


def write_health(key: str, index: str, member: str, line: str, ttl_ms: int) -> Op[None]:
    """A health line for ttl_ms on Redis's clock, indexed by expiry (see WRITE_HEALTH)."""
    yield from one(ScriptCall("write_health", [key, index], [member, line, ttl_ms]))


def clear_health(key: str, index: str, member: str) -> Op[None]:
    for reply in (yield [Command("delete", key), Command("zrem", index, member)]):
        _ok(reply)


def live_entries(index: str, key_of: Callable[[str], str]) -> Op[list[bytes]]:
    """The values of an index's entries whose keys still exist: a key's TTL runs on Redis's clock, so whether an
    entry is live never depends on the reader's or the writer's clock. (Writers drop expired members from the
    index, so it stays small.)"""
    members = yield from one(Command("zrange", index, 0, -1))
    if not members:
        return []
    values = yield from one(Command("mget", [key_of(_text(m)) for m in members]))
    return [v for v in values if v is not None]


# --- cron: fences, the leadership lock, fenced enqueues -----------------------------------------------------------


def cron_fence(keys: QueueKeys, cron_name: str) -> Op[int | None]:
    """The last tick (ms) of this cron job that any process enqueued."""
    fence = yield from value(keys.cron_fence(cron_name))
    return int(fence) if fence is not None else None


def take_lock(key: str, token: str, ttl_ms: int) -> Op[bool]:
    return bool((yield from one(Command("set", key, token, nx=True, px=ttl_ms))))


def extend_lock(key: str, token: str, ttl_ms: int) -> Op[bool]:
    return bool((yield from one(ScriptCall("lock_extend", [key], [token, ttl_ms]))))


def release_lock(key: str, token: str) -> Op[None]:
    yield from one(ScriptCall("lock_release", [key], [token]))


# Where job_record (pool/storage/queue.py) puts a job's id, cron fence key and dependency ids in its record.
_RECORD_JOB_ID, _RECORD_FENCE, _RECORD_DEPENDENCIES = 0, 7, 11


def enqueue_args(
    keys: QueueKeys, records: Sequence[Sequence[Any]], *, job_keys: bool = True
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of the ENQUEUE script for ``job_record``s (pool/storage/queue.py): the keys it touches of
    each job (its hash, result, nonce, cron fence, and those of its dependencies) declared after the queue's,
    unless ``job_keys`` is false (see RedisQueue.declares_job_keys)."""
    declared = [*keys.lane_keys, keys.deferred, keys.waiting]
    if not job_keys:
        return declared, [keys.prefix, msgpack.packb(list(records), use_bin_type=False)]
    for record in records:
        declared += keys.enqueued(record[_RECORD_JOB_ID])
        if record[_RECORD_FENCE]:
            declared.append(record[_RECORD_FENCE])
        for dependency in record[_RECORD_DEPENDENCIES]:
            declared += keys.dependency(dependency)
    return declared, [keys.prefix, msgpack.packb(list(records), use_bin_type=False)]


def enqueue(keys: QueueKeys, records: Sequence[Sequence[Any]], durability: Durability | None = None) -> Op[list[int]]:
    """ENQUEUE ``job_record``s (pool/storage/queue.py) off the hot path (a cron tick); 1 per job enqueued, 0 per id
    taken. With ``durability``, WAIT follows in the same batch (one pipeline, so one connection, on either driver)
    and too few replicas raise ``NotReplicated`` (pool/redis/replication.py)."""
    call_keys, args = enqueue_args(keys, records)
    if durability is None:
        return [int(r) for r in (yield from one(ScriptCall("enqueue", call_keys, args)))]
    reply, confirmed = yield [ScriptCall("enqueue", call_keys, args), Command("execute_command", *durability.wait_args)]
    durability.check(int(_ok(confirmed)), "enqueueing a cron tick")
    return [int(r) for r in _ok(reply)]


# --- emptying and deleting (pool queue / pool failed) ---------------------------------------------------------------


def empty_queue(keys: QueueKeys) -> Op[int]:
    """Remove every job that has not started (see pool/client/inspection.py's ``empty_queue``); returns how many."""
    removed, running = yield from _empty_lanes(keys)
    removed += yield from _empty_parked(keys)
    removed += yield from _empty_deferred(keys)
    removed += yield from _empty_waiting(keys, removed, running)
    return len(removed)


def _empty_lanes(keys: QueueKeys) -> Op[tuple[list[str], list[str]]]:
    """Remove the ready jobs; returns (their ids, the ids of the running jobs left alone)."""
    removed: list[str] = []
    running: list[str] = []
    for lane in keys.lanes:
        pending, entries = yield [
            Command("xpending_range", lane, CONSUMER_GROUP, "-", "+", 100_000),
            Command("xrange", lane),
        ]
        # no group yet: nothing delivered
        running_entries = set() if isinstance(pending, Exception) else {_text(p["message_id"]) for p in pending}
        gone: list[tuple[str, str]] = []
        for entry_id, fields in _ok(entries):
            job_id = _text(fields[b"id"])
            if _text(entry_id) in running_entries:
                running.append(job_id)
            else:
                gone.append((_text(entry_id), job_id))
        if gone:
            for reply in (
                yield [c for e, j in gone for c in (Command("delete", keys.job(j)), Command("xdel", lane, e))]
            ):
                _ok(reply)
        removed += [job_id for _, job_id in gone]
    return removed, running


def _empty_parked(keys: QueueKeys) -> Op[list[str]]:
    """Remove the jobs parked for a max_concurrency slot; returns the ids of those that still existed."""
    removed: list[str] = []
    for function in (yield from one(Command("smembers", keys.parked_functions))):
        key = keys.parked(_text(function))
        job_ids = [_text(j) for j in (yield from one(Command("lrange", key, 0, -1)))]
        replies = yield [*(Command("delete", keys.job(j)) for j in job_ids), Command("delete", key)]
        removed += [j for j, reply in zip(job_ids, replies, strict=False) if _ok(reply)]
    return removed


def _empty_deferred(keys: QueueKeys) -> Op[list[str]]:
    job_ids = [job_id for job_id, _ in (yield from deferred_ids(keys))]
    if job_ids:
        for reply in (
            yield [c for j in job_ids for c in (Command("delete", keys.job(j)), Command("zrem", keys.deferred, j))]
        ):
            _ok(reply)
    return job_ids


def _empty_waiting(keys: QueueKeys, removed_before: list[str], running: list[str]) -> Op[list[str]]:
    """Remove the jobs waiting for dependencies: those in the ``waiting`` set and any found through the
    ``dependents`` sets of the jobs removed before and of the running ones. Deletes the ``dependents`` sets of
    all removed jobs (a running job's own is deleted when it completes). Returns the ids removed here."""
    candidates = {_text(i) for i in (yield from one(Command("smembers", keys.waiting)))}
    candidates |= yield from _dependents_of(keys, removed_before + running)
    ordered = sorted(candidates)
    states = (yield [Command("hget", keys.job(j), "s") for j in ordered]) if ordered else []
    removed = [j for j, state in zip(ordered, states, strict=True) if _ok(state) == b"w"]
    batch: list[Request] = [Command("delete", keys.job(j)) for j in removed]
    batch += [Command("delete", keys.dependents(j)) for j in removed_before + removed]
    if ordered:
        batch.append(Command("srem", keys.waiting, *ordered))
    if batch:
        for reply in (yield batch):
            _ok(reply)
    return removed


def _dependents_of(keys: QueueKeys, job_ids: list[str]) -> Op[set[str]]:
    """Every job waiting, directly or through other waiting jobs, on one of ``job_ids``: one round trip per
    level of the dependency graph."""
    found: set[str] = set()
    frontier = job_ids
    while frontier:
        members = yield [Command("smembers", keys.dependents(j)) for j in frontier]
        frontier = sorted({_text(m) for group in members for m in _ok(group)} - found)
        found.update(frontier)
    return found


def delete_queue(keys: QueueKeys) -> Op[int]:
    """Delete every key of the queue (jobs, results, registry, health); returns how many keys."""
    found = yield from scan(keys.pattern())
    for start in range(0, len(found), 500):
        yield from one(Command("delete", *found[start : start + 500]))
    return len(found)


# --- the failed registry -------------------------------------------------------------------------------------------


def failed_ids(keys: QueueKeys) -> Op[list[str]]:
    """Ids in the failed registry, latest expiry first; members whose record expired are dropped, and members
    still scored by their failure time (the registry's older form) re-scored by their record's expiry, both
    judged by Redis's clock, as COMPLETE scores them."""
    now_ms = yield from redis_now_ms()
    members = yield from one(Command("zrevrange", keys.failed, 0, -1, withscores=True))
    ttls = (yield [Command("pttl", keys.failed_job(_text(j))) for j, _ in members]) if members else []
    registry = {_text(j): (int(score), int(_ok(ttl))) for (j, score), ttl in zip(members, ttls, strict=True)}
    gone = [j for j, (_, ttl) in registry.items() if ttl == -2]
    rescore = {j: now_ms + ttl for j, (score, ttl) in registry.items() if ttl > 0 and score <= now_ms}
    tidy: list[Request] = [Command("zrem", keys.failed, *gone)] if gone else []
    if rescore:
        tidy.append(Command("zadd", keys.failed, rescore, xx=True))
    if tidy:
        for reply in (yield tidy):
            _ok(reply)
    return [j for j, (_, ttl) in registry.items() if ttl != -2]


def failed_records(keys: QueueKeys, job_ids: Sequence[str]) -> Op[list[bytes | None]]:
    """The failed records of ``job_ids`` (None where gone), one MGET per 1,000."""
    payloads: list[bytes | None] = []
    for start in range(0, len(job_ids), 1000):
        payloads += yield from one(Command("mget", [keys.failed_job(j) for j in job_ids[start : start + 1000]]))
    return payloads


def forget_failed(keys: QueueKeys, job_id: str) -> Op[None]:
    """Drop a failed job's result, record and registry entry (before it is enqueued again)."""
    for reply in (
        yield [Command("delete", keys.result(job_id), keys.failed_job(job_id)), Command("zrem", keys.failed, job_id)]
    ):
        _ok(reply)


def purge_failed(keys: QueueKeys) -> Op[int]:
    job_ids = [_text(j) for j in (yield from one(Command("zrange", keys.failed, 0, -1)))]
    batch: list[Request] = [Command("delete", *[keys.failed_job(j) for j in job_ids])] if job_ids else []
    for reply in (yield [*batch, Command("delete", keys.failed)]):
        _ok(reply)
    return len(job_ids)


def restore_candidates(keys: QueueKeys) -> Op[dict[int, list[str]]]:
    """The ids of the jobs queued (state q) by priority, from a SCAN of the job hashes: for ``restore_queued``."""
    prefix = keys.job("")
    job_keys = yield from scan(prefix + "*", "HASH")
    queued: dict[int, list[str]] = {}
    for start in range(0, len(job_keys), 1000):
        chunk = job_keys[start : start + 1000]
        replies = yield [Command("hmget", key, ["s", "p"]) for key in chunk]
        for key, reply in zip(chunk, replies, strict=True):
            state, priority = _ok(reply)
            if state == b"q":
                queued.setdefault(int(priority or 0), []).append(key[len(prefix) :])
    return queued


def lane_job_ids(lane: str) -> Op[tuple[set[str], str]]:
    """The job ids of a lane's entries, and its last entry's id ('0-0' when empty), read in chunks."""
    ids: set[str] = set()
    last_id, start = "0-0", "-"
    while True:
        entries = yield from one(Command("xrange", lane, min=start, count=1000))
        if not entries:
            return ids, last_id
        ids.update(_text(fields[b"id"]) for _, fields in entries)
        last_id = _text(entries[-1][0])
        start = "(" + last_id


def restore_queued(keys: QueueKeys) -> Op[int]:
    """Put back on their lanes the jobs still queued whose stream entries were lost (see RESTORE_QUEUED). Lists
    the queued job hashes first and the lanes after (the script's proof needs that order)."""
    queued = yield from restore_candidates(keys)
    restored = 0
    for priority, job_ids in queued.items():
        in_lane, last_id = yield from lane_job_ids(keys.lane(priority))
        missing = [j for j in job_ids if j not in in_lane]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            call_keys = [*keys.lane_keys, *map(keys.job, chunk)]
            args: list[Any] = [keys.prefix, priority, last_id, *chunk]
            restored += int((yield from one(ScriptCall("restore_queued", call_keys, args))))
    return restored


# --- the synchronous client (pool.rq) --------------------------------------------------------------------------------


def enqueue_calls(calls: Sequence[tuple[list[str], list[Any]]]) -> Op[list[int]]:
    """ENQUEUE calls (KEYS and ARGV as ``queue.enqueue_args`` builds them, so the async client and this one send
    the same) as one batch, one round trip on a single Redis: 1 per job enqueued, 0 per id taken, in order."""
    replies = yield [ScriptCall("enqueue", list(keys), list(args)) for keys, args in calls]
    return [int(r) for reply in replies for r in _ok(reply)]


def ready_job_ids(keys: QueueKeys) -> Op[list[str]]:
    """Ids of the jobs on the lanes that no worker has taken yet, highest priority first, each lane in queue order
    (one round trip: every lane's entries and its group's pending entries)."""
    replies = yield [
        request
        for lane in keys.lanes
        for request in (Command("xpending_range", lane, CONSUMER_GROUP, "-", "+", 100_000), Command("xrange", lane))
    ]
    ready: list[str] = []
    for pending, entries in zip(replies[::2], replies[1::2], strict=True):
        # no group yet: nothing delivered
        taken = set() if isinstance(pending, Exception) else {_text(p["message_id"]) for p in pending}
        ready += [_text(fields[b"id"]) for entry_id, fields in _ok(entries) if _text(entry_id) not in taken]
    return ready


def job_exists(keys: QueueKeys, job_id: str) -> Op[bool]:
    """Whether the id is taken: a job not finished, or a kept result (what ENQUEUE refuses an id for)."""
    return bool((yield from one(Command("exists", keys.job(job_id), keys.result(job_id)))))


def record_result(keys: QueueKeys, job_id: str, payload: bytes, ttl_ms: int, failure_ttl_ms: int) -> Op[None]:
    """A result written by the caller that ran the job itself (pool.rq's ``is_async=False``), as COMPLETE writes a
    worker's: kept ttl_ms (0 not at all, < 0 forever); a failure with failure_ttl_ms > 0 also goes to the failed
    registry, scored by its expiry on Redis's clock."""
    batch: list[Request] = []
    if ttl_ms > 0:
        batch.append(Command("set", keys.result(job_id), payload, px=ttl_ms))
    elif ttl_ms < 0:
        batch.append(Command("set", keys.result(job_id), payload))
    if failure_ttl_ms > 0:
        now_ms = yield from redis_now_ms()
        batch.append(Command("set", keys.failed_job(job_id), payload, px=failure_ttl_ms))
        batch.append(Command("zadd", keys.failed, {job_id: now_ms + failure_ttl_ms}))
    if batch:
        for reply in (yield batch):
            _ok(reply)


def job_snapshot(
    keys: QueueKeys, job_id: str
) -> Op[tuple[tuple[bytes | None, str | None, int], bytes | None, bytes | None]]:
    """((payload, state, score) of the job hash, its result, its failed record), read in that order in one round
    trip: a job that finishes between the reads shows its result rather than nothing."""
    fields, result, failed = yield [
        Command("hmget", keys.job(job_id), ["d", "s", "sc"]),
        Command("get", keys.result(job_id)),
        Command("get", keys.failed_job(job_id)),
    ]
    payload, state, score = _ok(fields)
    return (payload, _text(state) if state is not None else None, int(score or 0)), _ok(result), _ok(failed)


# --- pages of a queue (the dashboard): ranges with a COUNT, never a whole queue -------------------------------------


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def ready_page(keys: QueueKeys, priority: int, after: str, count: int) -> Op[list[tuple[str, str]]]:
    """(entry id, job id) of up to ``count`` ready entries of one lane, in queue order, after the entry id
    ``after`` ("0-0" from the start). Ready = not yet delivered to the group: after its last-delivered-id (a job
    handed back or requeued gets a new entry at the end). Two round trips: XINFO GROUPS, then XRANGE ... COUNT."""
    lane = keys.lane(priority)
    (groups,) = yield [Command("xinfo_groups", lane)]
    delivered = "0-0"
    if not isinstance(groups, ResponseError):  # no such lane yet: nothing delivered, nothing ready
        for group in groups:
            fields = {_text(name): value for name, value in group.items()}
            if _text(fields.get("name") or "") == CONSUMER_GROUP:
                delivered = _text(fields.get("last-delivered-id") or "0-0")
    start = max(after, delivered, key=_stream_id)
    entries = yield from one(Command("xrange", lane, min="(" + start, count=count))
    return [(_text(entry_id), _text(fields[b"id"])) for entry_id, fields in entries]


def running_page(keys: QueueKeys, priority: int, after: str, count: int) -> Op[list[tuple[str, str, str, int]]]:
    """(entry id, job id, consumer, ms since delivered or last heartbeat) of up to ``count`` running entries of
    one lane (delivered, not acked), after the entry id ``after``: XPENDING ... COUNT, then each entry's job id
    (XRANGE id id) in one pipeline."""
    lane = keys.lane(priority)
    (pending,) = yield [Command("xpending_range", lane, CONSUMER_GROUP, "(" + after, "+", count)]
    if isinstance(pending, ResponseError) or not pending:  # no group yet: nothing delivered
        return []
    found = yield [Command("xrange", lane, row["message_id"], row["message_id"]) for row in pending]
    rows = []
    for row, reply in zip(pending, found, strict=True):
        entries = _ok(reply)
        job_id = _text(entries[0][1][b"id"]) if entries else ""
        rows.append((_text(row["message_id"]), job_id, _text(row["consumer"]), int(row["time_since_delivered"])))
    return rows


def lane_sizes(keys: QueueKeys) -> Op[list[tuple[int, int]]]:
    """(entries, pending) of every lane, priority 0 to 3: how many rows each lane gives a page of the ready and
    running jobs, in one pipeline (XLEN, XPENDING summary)."""
    replies = yield [
        request
        for lane in keys.lane_keys
        for request in (Command("xlen", lane), Command("xpending", lane, CONSUMER_GROUP))
    ]
    sizes = []
    for length, pending in zip(replies[::2], replies[1::2], strict=True):
        running = 0 if isinstance(pending, ResponseError) else int(pending["pending"])
        sizes.append((int(_ok(length)), running))
    return sizes


def deferred_page(keys: QueueKeys, offset: int, count: int) -> Op[tuple[int, list[tuple[str, int]]]]:
    """(how many are deferred, [(job id, due ms)]) for up to ``count`` deferred jobs from ``offset``, soonest due
    first: ZCARD and ZRANGE by index in one pipeline."""
    total, items = yield [
        Command("zcard", keys.deferred),
        Command("zrange", keys.deferred, offset, offset + count - 1, withscores=True),
    ]
    return int(_ok(total)), [(_text(job_id), int(score)) for job_id, score in _ok(items)]


def failed_page(keys: QueueKeys, offset: int, count: int) -> Op[tuple[int, list[tuple[str, bytes | None]]]]:
    """(how many live records, [(job id, record)]) for up to ``count`` members of the failed registry from
    ``offset``, newest record first: live = scored by an expiry later than now on Redis's clock (as
    ``queue_info`` counts them). ZCOUNT and ZREVRANGEBYSCORE ... LIMIT, then one MGET."""
    now_ms = yield from redis_now_ms()
    total, members = yield [
        Command("zcount", keys.failed, f"({now_ms}", "+inf"),
        Command("zrevrangebyscore", keys.failed, "+inf", f"({now_ms}", start=offset, num=count),
    ]
    job_ids = [_text(j) for j in _ok(members)]
    records = (yield from failed_records(keys, job_ids)) if job_ids else []
    return int(_ok(total)), list(zip(job_ids, records, strict=True))


def cron_state(keys: QueueKeys, cron_names: Sequence[str]) -> Op[tuple[list[int | None], int]]:
    """The last tick enqueued (ms, None before the first) of each cron job, and the leadership lock's remaining
    ms (-2: nobody leads), in one pipeline."""
    replies = yield [*(Command("get", keys.cron_fence(name)) for name in cron_names), Command("pttl", keys.cron_leader)]
    fences = [int(f) if (f := _ok(r)) is not None else None for r in replies[:-1]]
    return fences, int(_ok(replies[-1]))
