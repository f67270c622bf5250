"""The storage contract: each Lua script of pool/scripts.py, driven directly against a real Redis.

Every script is one atomic step of a job's life, and redis-py re-sends a call whose reply was lost (a connection
dropped after Redis ran it), so each must also be safe to run twice. For every script this suite checks

- its effect on the queue's keys, as its contract header states it (one ``Case`` per scenario), and
- its replay: the same call run again leaves exactly the state of one run (no double attempt, no double entry,
  no lost result); the scripts the worker and the client send on the hot path (ENQUEUE, FETCH/START, COMPLETE,
  REQUEUE) are also replayed by redis-py's own retry, through a proxy that loses the first reply.

States are set up with the scripts themselves (ENQUEUE, FETCH), with arguments laid out as the headers document
them. A state is compared as a snapshot of every key of the queue; stream entry ids (time-based) and times the
scripts take from Redis's clock (due times, expiry scores) are replaced by their rank, so that two runs from the
same start compare equal. Each case's check asserts what such a time means (e.g. due = Redis's TIME + delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgpack
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pool import PoolRedis
from pool.storage.keys import CONSUMER_GROUP, PRIORITIES, QueueKeys
from pool.storage.queue import RedisQueue, enqueue_args, job_record, scripts_for
from pool.storage.scripts import REQUEUE, Scripts
from pool.utils import now_ms
from tests.proxy import client_through_proxy

KEYS = QueueKeys("default")
PREFIX = KEYS.prefix
# A fixed "now" for the scripts' now_ms arguments, so that two runs of a case build the same state. A minute in
# the past: a job due "later" than NOW (deferred) is due by the clock too.
NOW = now_ms() - 60_000
LATER = NOW + 1_000
EXPIRES_MS = 600_000
RESULT_TTL_MS = 600_000
NONCE_FIELD = 6  # the nonce's place in an ENQUEUE record (see ENQUEUE's header)
# How far a time a script took from Redis's clock may lie from the TIME a check reads after the call: the call's
# round trip and the check's reads on a busy machine, with a wide margin.
CLOCK_TOLERANCE_MS = 5_000

Call = tuple[list[Any], list[Any]]  # (KEYS, ARGV) of one script call
LANES = list(KEYS.lane_keys)  # the first four KEYS of every script that touches a lane, priority 0 to 3


def slot_keys(functions: Iterable[str]) -> list[str]:
    """running:<fn> and parked:<fn> of each function, as the scripts that touch a function's slots declare them."""
    return [key for function in functions for key in KEYS.slots(function)]


def start_call(consumer: str, delivered: Sequence[tuple[str, str, int]], limits: dict[str, int] | None = None) -> Call:
    """START's KEYS and ARGV for (entry_id, job_id, priority) triples (see its header)."""
    limits = limits or {}
    keys = [*LANES, KEYS.parked_functions, *slot_keys(limits)]
    args: list[Any] = [PREFIX, CONSUMER_GROUP, consumer, len(limits)]
    for name, limit in limits.items():
        args += [name, limit]
    for entry_id, job_id, priority in delivered:
        keys += KEYS.job_and_result(job_id)
        args += [entry_id, job_id, priority]
    return keys, args


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


async def redis_now_ms(redis: Any) -> int:
    """Redis's clock (TIME) in ms: the clock the scripts take due times and expiry scores from."""
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def assert_redis_time_plus(redis: Any, value: int | str, delay_ms: int) -> None:
    """``value`` is a time a script just took from Redis's clock plus ``delay_ms``: at most Redis's TIME now
    plus the delay, and not older than the tolerance allows."""
    now = await redis_now_ms(redis)
    assert now + delay_ms - CLOCK_TOLERANCE_MS <= int(value) <= now + delay_ms, (int(value) - now, delay_ms)


class Store:
    """One test's queue: the scripts, a few steps built from them to set up states, and readers of its keys."""

    def __init__(self, redis: PoolRedis) -> None:
        self.redis: Any = redis  # Any: redis-py types replies as unions over decode_responses; read as bytes here
        self.scripts = scripts_for(redis)
        self.fetches = 0

    # --- setting up states ----------------------------------------------------------------------------------

    def enqueue_call(
        self,
        job_id: str,
        *,
        score: int = NOW,
        priority: int = 0,
        function: str = "f",
        depends_on: Sequence[str] = (),
        nonce: str = "",
        relative: bool = True,
        fence: tuple[str, int] | None = None,
    ) -> Call:
        """An ENQUEUE call of one job whose nonce is fixed (so two setups build the same state); its score is
        a delay from NOW (``_defer_by``) unless ``relative`` is false (an instant, ``_defer_until``)."""
        record = list(
            job_record(
                KEYS,
                job_id,
                b"payload of " + job_id.encode(),
                score_ms=score,
                now_ms=NOW,
                expires_ms=EXPIRES_MS,
                function=function,
                priority=priority,
                depends_on=depends_on,
                relative=relative,
                fence=fence,
            )
        )
        record[NONCE_FIELD] = nonce or "nonce of " + job_id
        return enqueue_args(KEYS, [tuple(record)])

    async def enqueue(self, job_id: str, **kwargs: Any) -> None:
        keys, args = self.enqueue_call(job_id, **kwargs)
        assert await self.scripts.enqueue(keys=keys, args=args) == [1]
        # the next entry, on any lane, gets a later millisecond: two lanes' entries never share an id (each
        # lane numbers its own), so the ids' ranks in a snapshot are the same in every setup of a case
        await wait_for_redis_time(self.redis, await redis_now_ms(self.redis) + 1)

    def fetch_call(self, consumer: str, count: int, limits: dict[str, int] | None = None) -> Call:
        limits = limits or {}
        pairs = [value for name, limit in limits.items() for value in (name, limit)]
        order = sorted(PRIORITIES, reverse=True)
        self.fetches += 1  # a new token per call, the same in two setups of a case: they build the same state
        token = f"fetch {self.fetches} by {consumer}"
        return [*LANES, KEYS.fetched(consumer), KEYS.parked_functions, *slot_keys(limits)], [
            PREFIX,
            CONSUMER_GROUP,
            consumer,
            count,
            token,
            len(limits),
            *pairs,
            *order,
        ]

    async def fetch(self, consumer: str, count: int = 10, limits: dict[str, int] | None = None) -> list[Any]:
        """FETCH for ``consumer``: its reply's entries, each [entry_id, job_id, priority, START's item]."""
        await RedisQueue(self.redis, KEYS.queue_name).ensure_group()
        keys, args = self.fetch_call(consumer, count, limits)
        reply = await self.scripts.fetch(keys=keys, args=args)
        return [[text(entry_id), text(job_id), text(p), item] for entry_id, job_id, p, item in reply[1:]]

    async def fetch_one(self, consumer: str = "c", limits: dict[str, int] | None = None) -> str:
        """The entry id of the one job FETCH starts for ``consumer``."""
        ((entry_id, _, _, item),) = await self.fetch(consumer, 1, limits)
        assert isinstance(item, list), item
        return str(entry_id)

    async def read(self, consumer: str, count: int = 1) -> list[tuple[str, str]]:
        """Entries delivered to ``consumer`` by a plain XREADGROUP (not started): (entry_id, job_id)."""
        await RedisQueue(self.redis, KEYS.queue_name).ensure_group()
        reply = await self.redis.xreadgroup(CONSUMER_GROUP, consumer, {KEYS.stream: ">"}, count=count)
        return [(text(entry_id), text(fields[b"id"])) for entry_id, fields in reply[0][1]]

    # --- reading state ------------------------------------------------------------------------------------------

    async def job(self, job_id: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in (await self.redis.hgetall(KEYS.job(job_id))).items()}

    async def lane(self, priority: int = 0) -> list[str]:
        """The job ids of a lane's entries, delivered ones included, oldest first."""
        return [text(fields[b"id"]) for _, fields in await self.redis.xrange(KEYS.lane(priority))]

    async def pending(self, priority: int = 0) -> list[tuple[str, str]]:
        """(job_id, consumer) of each entry delivered and not acked on a lane."""
        lane = KEYS.lane(priority)
        rows = await self.redis.xpending_range(lane, CONSUMER_GROUP, "-", "+", 100)
        entries = {text(entry_id): text(f[b"id"]) for entry_id, f in await self.redis.xrange(lane)}
        return [(entries.get(text(r["message_id"]), "?"), text(r["consumer"])) for r in rows]

    async def entries(self, priority: int = 0) -> list[tuple[str, str]]:
        """(entry_id, job_id) of a lane's entries, oldest first."""
        return [
            (text(entry_id), text(fields[b"id"])) for entry_id, fields in await self.redis.xrange(KEYS.lane(priority))
        ]

    async def members(self, key: str) -> set[str]:
        return {text(m) for m in await self.redis.smembers(key)}

    async def zset(self, key: str) -> dict[str, int]:
        return {text(m): int(s) for m, s in await self.redis.zrange(key, 0, -1, withscores=True)}

    async def consumers(self) -> list[str]:
        return sorted(text(c["name"]) for c in await self.redis.xinfo_consumers(KEYS.stream, CONSUMER_GROUP))


# --- snapshots ------------------------------------------------------------------------------------------------

_ENTRY_ID = re.compile(r"\d{10,}-\d+")


async def snapshot(redis: Any) -> str:
    """Every key of the queue: its type, content and whether it has a TTL (not its value: time passes), with
    stream entry ids replaced by their rank. Streams show their entries, and per consumer group the last
    delivered id and each pending entry's consumer."""
    state = []
    async for key in redis.scan_iter(match=KEYS.pattern()):
        state.append((text(key), await _key_state(redis, key), await redis.pttl(key) > 0))
    return _rank_clock_times(_rank_entry_ids(repr(sorted(state))))


async def _key_state(redis: Any, key: bytes) -> Any:
    kind = text(await redis.type(key))
    readers: dict[str, Callable[[], Awaitable[Any]]] = {
        "string": lambda: redis.get(key),
        "hash": lambda: _sorted(redis.hgetall(key)),
        "set": lambda: _sorted(redis.smembers(key)),
        "zset": lambda: redis.zrange(key, 0, -1, withscores=True),
        "list": lambda: redis.lrange(key, 0, -1),
        "stream": lambda: _stream_state(redis, key),
    }
    return kind, await readers[kind]()


async def _sorted(values: Awaitable[Iterable[Any]]) -> list[Any]:
    collection = await values
    return sorted(collection.items() if isinstance(collection, dict) else collection)


async def _stream_state(redis: Any, key: bytes) -> Any:
    groups = []
    for group in await redis.xinfo_groups(key):
        name = group["name"]
        pending = await redis.xpending_range(key, name, "-", "+", 1000)
        consumers = await redis.xinfo_consumers(key, name)
        groups.append(
            (
                name,
                group["last-delivered-id"],
                [(r["message_id"], r["consumer"]) for r in pending],
                sorted((c["name"], c["pending"]) for c in consumers),
            )
        )
    return await redis.xrange(key), groups


def _rank_entry_ids(state: str) -> str:
    ids = sorted(set(_ENTRY_ID.findall(state)), key=lambda entry_id: tuple(map(int, entry_id.split("-"))))
    ranks = {entry_id: f"<entry {rank}>" for rank, entry_id in enumerate(ids)}
    return _ENTRY_ID.sub(lambda match: ranks[match.group()], state)


def normalised(value: Any) -> str:
    """A reply as the snapshots compare state: entry ids and times from Redis's clock replaced by their rank."""
    return _rank_clock_times(_rank_entry_ids(repr(value)))


# A time in ms from Redis's clock: 13 digits standing alone (entry ids are ranked before, so none is left here).
_TIME = re.compile(r"(?<![\d.-])\d{13}(?!\d)")


def _rank_clock_times(state: str) -> str:
    """Replace times the scripts took from Redis's clock by their rank: they move on between two runs, their
    order does not. The suite's own times (NOW, LATER, ... up to a few seconds past NOW) stay as they are, so a
    script that misplaces one of those is still caught; Redis's clock is past NOW + a minute."""
    times = sorted({int(t) for t in _TIME.findall(state) if int(t) > NOW + 30_000})
    ranks = {str(t): f"<redis time {rank}>" for rank, t in enumerate(times)}
    return _TIME.sub(lambda match: ranks.get(match.group(), match.group()), state)


# --- the cases: one scenario of one script each ---------------------------------------------------------------


Check = Callable[[Any], Awaitable[None]]  # asserts a call's effect, given its reply
Scenario = Callable[[Store], Awaitable[tuple[Call, Check]]]  # builds a state; returns the call and its check


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    script: str  # the Scripts attribute it calls
    hot: bool  # sent by the worker or the client on the hot path: also replayed by redis-py's retry
    same_reply: bool  # a replay answers as the first run did (else its reply is not compared)
    replay_unsafe: str  # why running this call twice is known to leave another state than one run ('' if safe)
    undeclared: str  # why this call is known to touch keys it does not declare ('' if it declares them all)

    @property
    def name(self) -> str:
        return self.scenario.__name__


CASES: list[Case] = []


def case(
    script: str, *, hot: bool = False, same_reply: bool = True, replay_unsafe: str = "", undeclared: str = ""
) -> Callable[[Scenario], Scenario]:
    """Register a scenario of ``script``."""

    def register(scenario: Scenario) -> Scenario:
        CASES.append(Case(scenario, script, hot, same_reply, replay_unsafe, undeclared))
        return scenario

    return register


# FETCH starts the jobs of the entries it reads: their keys cannot be in its call. On Redis Cluster it declares the
# slot guard instead (see its header), which holds because every key it touches is in its queue's slot: checked by
# test_fetch_touches_only_keys_of_its_queues_slot.
FETCH_UNDECLARED = "FETCH touches the jobs of the entries it reads (on a cluster, the slot guard covers them)"


@case("enqueue", hot=True)
async def enqueue_a_job_due_now(s: Store) -> tuple[Call, Check]:
    async def check(reply: Any) -> None:
        assert reply == [1]
        job = await s.job("a")
        assert (job["s"], job["t"], job["f"], job["d"]) == ("q", "0", "f", "payload of a")
        assert await s.lane() == ["a"]
        assert await s.redis.pttl(KEYS.job("a")) > 0

    return s.enqueue_call("a"), check


@case("enqueue", hot=True)
async def enqueue_a_deferred_job_with_a_priority(s: Store) -> tuple[Call, Check]:
    async def check(reply: Any) -> None:
        assert reply == [1]
        job = await s.job("a")
        assert (job["s"], job["p"]) == ("d", "2")
        due = await s.zset(KEYS.deferred)
        assert list(due) == ["a"] and int(job["sc"]) == due["a"]
        await assert_redis_time_plus(s.redis, due["a"], LATER - NOW)  # the delay asked for, from Redis's clock
        assert await s.lane(0) == [] and await s.lane(2) == []

    return s.enqueue_call("a", score=LATER, priority=2), check


@case("enqueue", hot=True)
async def enqueue_a_job_deferred_until_an_instant_keeps_that_score(s: Store) -> tuple[Call, Check]:
    async def check(reply: Any) -> None:
        assert reply == [1]
        assert (await s.zset(KEYS.deferred)) == {"a": LATER}  # exactly the instant asked for (arq's score)
        assert (await s.job("a"))["s"] == "d"

    return s.enqueue_call("a", score=LATER, relative=False), check


@case("enqueue", hot=True)
async def enqueue_a_job_that_waits_for_its_dependency(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")

    async def check(reply: Any) -> None:
        assert reply == [1]
        job = await s.job("b")
        assert (job["s"], job["w"]) == ("w", "1")
        assert await s.members(KEYS.waiting) == {"b"}
        assert await s.members(KEYS.dependents("a")) == {"b"}
        assert await s.lane() == ["a"]

    return s.enqueue_call("b", depends_on=["a"]), check


@case("enqueue", hot=True)
async def enqueue_a_job_whose_dependency_failed_queues_it_marked_with_that_failure(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.failed_job("a"), b"a's failure", px=60_000)

    async def check(reply: Any) -> None:
        assert reply == [1]
        job = await s.job("b")
        assert (job["s"], job["df"]) == ("q", "a")
        assert await s.lane() == ["b"]
        assert await s.members(KEYS.waiting) == set()

    return s.enqueue_call("b", depends_on=["a"]), check


@case("enqueue", hot=True)
async def enqueue_a_cron_tick_sets_its_fence_and_refuses_an_earlier_tick(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.cron_fence("tick"), NOW)  # the tick at NOW was enqueued already

    async def check(reply: Any) -> None:
        assert reply == [1]
        assert await s.redis.get(KEYS.cron_fence("tick")) == str(LATER).encode()
        assert await s.lane() == ["a"]

    return s.enqueue_call("a", fence=("tick", LATER)), check


@case("enqueue", hot=True)
async def enqueue_refuses_an_id_that_is_taken(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a", nonce="the first call")

    async def check(reply: Any) -> None:
        assert reply == [0]
        assert (await s.job("a"))["n"] == "the first call"
        assert await s.redis.get(KEYS.nonce("a")) == b"the first call"
        assert await s.lane() == ["a"]

    return s.enqueue_call("a", nonce="another call"), check


@case("fetch", hot=True, undeclared=FETCH_UNDECLARED)
async def fetch_reads_and_starts_up_to_count_highest_priority_first(s: Store) -> tuple[Call, Check]:
    await s.enqueue("low")
    await s.enqueue("high", priority=3)
    await s.enqueue("low2")
    await RedisQueue(s.redis, KEYS.queue_name).ensure_group()

    async def check(reply: Any) -> None:
        assert [text(e[1]) for e in reply[1:]] == ["high", "low"]
        assert [e[3][:2] for e in reply[1:]] == [[b"payload of high", 1], [b"payload of low", 1]]
        for job_id in ("high", "low"):
            job = await s.job(job_id)
            assert (job["s"], job["t"]) == ("r", "1")
            assert job["e"].startswith("c ")
            assert await s.redis.pttl(KEYS.job(job_id)) == -1  # _expires bounds the wait to start, not the run
        assert (await s.job("low2"))["s"] == "q"
        assert await s.pending(3) == [("high", "c")]
        assert await s.pending(0) == [("low", "c")]
        assert 0 < await s.redis.pttl(KEYS.fetched("c")) <= 60_000  # what it read, for a replay of this call

    return s.fetch_call("c", 2), check


# a replay answers no item for the parked entry: it was deleted
@case("fetch", hot=True, same_reply=False, undeclared=FETCH_UNDECLARED)
async def fetch_parks_a_job_whose_function_is_at_its_limit(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await RedisQueue(s.redis, KEYS.queue_name).ensure_group()

    async def check(reply: Any) -> None:
        assert [(text(e[1]), e[3] if e[3] == b"parked" else e[3][1]) for e in reply[1:]] == [("a", 1), ("b", b"parked")]
        assert (await s.job("b"))["s"] == "p"
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"b"]
        assert await s.members(KEYS.running("f")) == {"a"}
        assert await s.lane() == ["a"]  # b's entry was acked and deleted
        assert await s.pending() == [("a", "c")]

    return s.fetch_call("c", 2, {"f": 1}), check


@case("start", hot=True)
async def start_marks_a_delivered_job_running_and_counts_its_attempt(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    ((entry_id, _),) = await s.read("c")

    async def check(reply: Any) -> None:
        assert reply == [[b"payload of a", 1, str(NOW).encode(), b"", b"f"]]
        job = await s.job("a")
        assert (job["s"], job["t"], job["e"]) == ("r", "1", "c " + entry_id)
        assert await s.pending() == [("a", "c")]

    return start_call("c", [(entry_id, "a", 0)]), check


@case("start", hot=True, same_reply=False)
async def start_parks_a_job_whose_function_is_at_its_limit(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.fetch_one("c", {"f": 1})
    ((entry_id, _),) = await s.read("c")

    async def check(reply: Any) -> None:
        assert reply == [b"parked"]
        assert (await s.job("b"))["s"] == "p"
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"b"]
        assert await s.members(KEYS.parked_functions) == {"f"}
        assert await s.members(KEYS.running("f")) == {"a"}
        assert await s.lane() == ["a"]  # b's entry was acked and deleted
        assert await s.pending() == [("a", "c")]

    return start_call("c", [(entry_id, "b", 0)], {"f": 1}), check


@case("start", hot=True)
async def start_reports_a_job_whose_hash_expired_and_drops_one_already_finished(s: Store) -> tuple[Call, Check]:
    await s.enqueue("gone")
    await s.enqueue("done")
    delivered = await s.read("c", 2)
    await s.redis.delete(KEYS.job("gone"), KEYS.job("done"))  # "gone" expired; "done" was aborted (has a result)
    await s.redis.set(KEYS.result("done"), b"aborted")

    async def check(reply: Any) -> None:
        assert reply == [b"expired", None]  # the worker records "gone" as failed, acking its entry
        assert await s.pending() == [("gone", "c")]
        assert await s.lane() == ["gone"]  # the entry of "done" acked and deleted

    return start_call("c", [(entry_id, job_id, 0) for entry_id, job_id in delivered]), check


def unread_call(consumer: str, undone: Sequence[tuple[str, str, int, str]]) -> Call:
    """UNREAD's KEYS and ARGV for (entry_id, job_id, priority, function) quadruples (see its header)."""
    keys = [*LANES, *slot_keys(dict.fromkeys(fn for _, _, _, fn in undone if fn))]
    args: list[Any] = [PREFIX, CONSUMER_GROUP, consumer]
    for entry_id, job_id, priority, function in undone:
        keys.append(KEYS.job(job_id))
        args += [entry_id, job_id, priority, function]
    return keys, args


@case("unread", same_reply=False)
async def unread_puts_a_started_entry_back_and_uncounts_its_attempt(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one("c", {"f": 1})

    async def check(reply: Any) -> None:
        assert reply == [1, []]
        job = await s.job("a")
        assert (job["s"], job["t"], "e" in job) == ("q", "0", False)
        assert await s.members(KEYS.running("f")) == set()
        assert await s.lane() == ["a"]
        assert await s.pending() == []

    return unread_call("c", [(entry_id, "a", 0, "f")]), check


@case("unread", same_reply=False)
async def unread_passes_the_slot_of_a_started_job_to_the_first_parked_one(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    entry_id = await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b parked

    async def check(reply: Any) -> None:
        assert reply == [1, [b"f", b"b"]]  # b's slot is reserved; SWEEP_PARKED puts it on its lane
        assert await s.members(KEYS.running("f")) == {"b"}
        assert (await s.job("b"))["s"] == "p"
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"b"]
        assert await s.lane() == ["a"]

    return unread_call("c", [(entry_id, "a", 0, "f")]), check


def completion(entry_id: str, job_id: str, *, failure_ttl: int = 0, callback: str = "", function: str = "f") -> Call:
    """COMPLETE's KEYS and ARGV for one finished job (see its header)."""
    record = [
        entry_id,
        job_id,
        b"result of " + job_id.encode(),
        RESULT_TTL_MS,
        failure_ttl,
        callback,
        b"payload of " + callback.encode() if callback else b"",
        0,
        "g" if callback else "",
        function,
    ]
    keys = [*LANES, KEYS.aborts, KEYS.deferred, KEYS.failed, KEYS.releasing, *KEYS.finished(job_id)]
    if failure_ttl > 0:
        keys.append(KEYS.failed_job(job_id))
    if callback:
        keys.append(KEYS.job(callback))
    keys += slot_keys([function] if function else [])
    return keys, [PREFIX, CONSUMER_GROUP, msgpack.packb([record], use_bin_type=False)]


def sorted_groups(groups: Any) -> list[list[Any]]:
    """COMPLETE's or ABORT's [job_id, dependent ids...] groups with the dependents in order (a set's order)."""
    return [[group[0], *sorted(group[1:])] for group in groups]


@case("complete", hot=True, same_reply=False)  # a replay names no dependents: the entry is acked already
async def complete_records_the_result_then_acks_and_names_the_dependents_to_release(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", depends_on=["a"])
    await s.enqueue("later", depends_on=["a"], score=NOW + 3_600_000)
    entry_id = await s.fetch_one()

    async def check(reply: Any) -> None:
        passed, dependents, expired = reply
        assert (passed, sorted_groups(dependents), expired) == ([], [[b"a", b"b", b"later"]], [])
        assert await s.redis.get(KEYS.result("a")) == b"result of a"
        assert await s.redis.pttl(KEYS.result("a")) > 0
        assert not await s.redis.exists(KEYS.job("a"))
        assert await s.pending() == []
        assert await s.lane() == ["cb"]  # a's entry deleted; its callback queued
        callback = await s.job("cb")
        assert callback["f"] == "g"
        await assert_redis_time_plus(s.redis, callback["sc"], 0)  # enqueued now, by Redis's clock
        # the dependents wait for RELEASE_DEPENDENTS, the outcome kept for it
        assert ((await s.job("b"))["s"], (await s.job("later"))["s"]) == ("w", "w")
        assert await s.redis.hgetall(KEYS.releasing) == {b"a": b"1"}
        assert await s.members(KEYS.dependents("a")) == {"b", "later"}
        assert await s.zset(KEYS.failed) == {}

    return completion(entry_id, "a", callback="cb"), check


@case("complete", hot=True, same_reply=False)
async def complete_a_failure_for_good_keeps_it_in_the_failed_registry(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", depends_on=["a"])
    entry_id = await s.fetch_one()
    # a registry member whose record expired: COMPLETE names it for TRIM_FAILED
    await s.redis.zadd(KEYS.failed, {"old": NOW})

    async def check(reply: Any) -> None:
        assert reply == [[], [[b"a", b"b"]], [b"old"]]
        assert await s.redis.get(KEYS.result("a")) == b"result of a"
        assert await s.redis.get(KEYS.failed_job("a")) == b"result of a"
        expiry = await s.zset(KEYS.failed)
        assert sorted(expiry) == ["a", "old"]
        await assert_redis_time_plus(s.redis, expiry["a"], 5_000)  # its record's expiry, on Redis's clock
        assert await s.pending() == []
        assert await s.redis.hgetall(KEYS.releasing) == {b"a": b"0"}  # b is released marked with the failure
        assert (await s.job("b"))["s"] == "w"

    return completion(entry_id, "a", failure_ttl=5_000), check


@case("complete", hot=True, same_reply=False)
async def complete_passes_the_slot_to_the_first_parked_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.enqueue("c")
    entry_id = await s.fetch_one("w", {"f": 1})
    await s.fetch("w", 2, {"f": 1})  # b and c parked

    async def check(reply: Any) -> None:
        assert reply == [[b"f", b"b"], [], []]
        assert await s.members(KEYS.running("f")) == {"b"}  # reserved for b: SWEEP_PARKED puts it on its lane
        assert (await s.job("b"))["s"] == "p"
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"b", b"c"]
        assert await s.lane() == []

    return completion(entry_id, "a"), check


@case("complete", hot=True, same_reply=False)
async def complete_frees_the_last_slot_of_a_function_once_in_a_batch(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    ((entry_a, *_),) = await s.fetch("w", 1, {"f": 1})  # a holds the only slot
    ((entry_b, *_),) = await s.fetch("other", 1)  # b, of the same function, run by a worker without the limit
    keys_a, (prefix, group, packed_a) = completion(entry_a, "a")
    keys_b, (_, _, packed_b) = completion(entry_b, "b")
    records = msgpack.unpackb(packed_a, raw=False) + msgpack.unpackb(packed_b, raw=False)

    async def check(reply: Any) -> None:
        assert reply == [[], [], []]
        assert not await s.redis.exists(KEYS.running("f"))  # emptied by a's completion, not touched after
        assert await s.pending() == []

    keys = keys_a + [key for key in keys_b if key not in keys_a]
    return (keys, [prefix, group, msgpack.packb(records, use_bin_type=False)]), check


def requeue_call(entry_id: str, job_id: str, run_at: int, function: str = "f") -> Call:
    keys = [*LANES, KEYS.deferred, KEYS.job(job_id), *slot_keys([function] if function else [])]
    return keys, [PREFIX, CONSUMER_GROUP, entry_id, job_id, run_at, NOW, 0, function]


@case("requeue", hot=True, same_reply=False)
async def requeue_now_puts_a_running_job_back_on_its_lane(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    entry_id = await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b is parked behind a

    async def check(reply: Any) -> None:
        assert reply == [1, [b"f", b"b"]]
        job = await s.job("a")
        assert (job["s"], job["t"]) == ("q", "1")  # the attempt it made stays counted
        assert await s.lane() == ["a"]  # a's old entry deleted
        assert await s.pending() == []
        assert await s.members(KEYS.running("f")) == {"b"}  # a's slot passed to b

    return requeue_call(entry_id, "a", 0), check


@case("requeue", hot=True, same_reply=False)
async def requeue_later_defers_a_running_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == [1, []]
        job = await s.job("a")
        due = await s.zset(KEYS.deferred)
        assert job["s"] == "d" and list(due) == ["a"] and int(job["sc"]) == due["a"]
        await assert_redis_time_plus(s.redis, due["a"], LATER - NOW)  # the retry's delay, from Redis's clock
        assert await s.lane() == []
        assert await s.pending() == []

    return requeue_call(entry_id, "a", LATER), check


def promote_call(known: Sequence[str] = ()) -> Call:
    keys = [*LANES, KEYS.deferred, KEYS.releasing, *map(KEYS.job, known)]
    return keys, [PREFIX, "", 100, *known]  # '': due by Redis's own clock


async def deferred_due_and_later(s: Store) -> None:
    """'due' (priority 1) and a stale member of 'running' are due by Redis's clock; 'later' is due in an hour."""
    await s.enqueue("due", score=NOW + 1, priority=1)  # due 1 ms after ENQUEUE by Redis's clock
    await s.enqueue("running")
    await s.fetch_one()
    await s.redis.zadd(KEYS.deferred, {"running": LATER})  # a stale member of a job that runs now
    await s.enqueue("later", score=NOW + 3_600_000)  # due in an hour by Redis's clock
    due_at = (await s.zset(KEYS.deferred))["due"]
    await wait_for_redis_time(s.redis, due_at)


@case("promote")
async def promote_names_the_due_jobs_for_a_call_that_declares_them(s: Store) -> tuple[Call, Check]:
    await deferred_due_and_later(s)

    async def check(reply: Any) -> None:
        assert reply == [0, 0, [b"running", b"due"], 0]  # by score; nothing moved, due now
        assert list(await s.zset(KEYS.deferred)) == ["running", "due", "later"]
        assert await s.lane(1) == []

    return promote_call(), check


@case("promote", same_reply=False)
async def promote_moves_due_jobs_to_their_lanes_and_drops_stale_members(s: Store) -> tuple[Call, Check]:
    await deferred_due_and_later(s)

    async def check(reply: Any) -> None:
        moved, next_due_in, unknown, pending = reply
        assert (moved, unknown, pending) == (2, [], 0)  # due, and the stale member of running (dropped)
        assert 3_600_000 - CLOCK_TOLERANCE_MS <= next_due_in <= 3_600_000  # a delay by Redis's clock
        assert (await s.job("due"))["s"] == "q"
        assert await s.lane(1) == ["due"]
        assert await s.lane(0) == ["running"]
        assert (await s.job("running"))["s"] == "r"
        assert list(await s.zset(KEYS.deferred)) == ["later"]

    return promote_call(["due", "running"]), check


async def wait_for_redis_time(redis: Any, time_ms: int) -> None:
    """Until Redis's clock has reached ``time_ms`` (a few ms away), with a deadline."""
    for _ in range(1_000):
        if await redis_now_ms(redis) >= time_ms:
            return
    raise AssertionError(f"Redis's clock did not reach {time_ms}")


def hand_back_call(consumer: str, held: Sequence[tuple[int, str, str, str]]) -> Call:
    """HAND_BACK_CONSUMER's KEYS and ARGV for (priority, entry_id, job_id, function) quadruples."""
    keys = [*LANES, *slot_keys(dict.fromkeys(fn for _, _, _, fn in held if fn))]
    args: list[Any] = [PREFIX, CONSUMER_GROUP, consumer]
    for priority, entry_id, job_id, function in held:
        keys += [KEYS.job(job_id)] if job_id else []
        args += [priority, entry_id, job_id, function]
    return keys, args


@case("hand_back_consumer", same_reply=False)
async def hand_back_consumer_puts_its_jobs_back_and_forgets_it(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", priority=2)
    held = [(int(p), entry_id, job_id, "f") for entry_id, job_id, p, _ in await s.fetch("dead", 2)]
    await s.enqueue("c")
    await s.fetch_one("live")

    async def check(reply: Any) -> None:
        assert reply == [2, 0, []]
        assert ((await s.job("a"))["s"], (await s.job("b"))["s"]) == ("q", "q")
        assert await s.lane(0) == ["c", "a"] and await s.lane(2) == ["b"]
        assert await s.pending(0) == [("c", "live")] and await s.pending(2) == []
        assert await s.consumers() == ["live"]

    return hand_back_call("dead", held), check


@case("hand_back_consumer", same_reply=False)
async def hand_back_consumer_keeps_a_consumer_holding_entries_it_was_not_given(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    ((entry_a, _, _, _),) = await s.fetch("dead", 1, {"f": 1})
    await s.fetch("dead", 1, {"f": 1})  # b parked behind a
    await s.enqueue("c")
    await s.fetch("dead", 1)  # read since the caller listed the consumer's entries

    async def check(reply: Any) -> None:
        assert reply == [1, 1, [b"f", b"b"]]  # a handed back, its slot passed to b; c still held
        assert (await s.job("a"))["s"] == "q"
        assert await s.members(KEYS.running("f")) == {"b"}
        assert await s.pending(0) == [("c", "dead")]
        assert await s.consumers() == ["dead"]

    return hand_back_call("dead", [(0, entry_a, "a", "f")]), check


@case("prune_consumer")
async def prune_consumer_forgets_a_consumer_that_holds_nothing(s: Store) -> tuple[Call, Check]:
    await RedisQueue(s.redis, KEYS.queue_name).ensure_group()
    await s.redis.xgroup_createconsumer(KEYS.stream, CONSUMER_GROUP, "idle")
    assert await s.consumers() == ["idle"]

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.consumers() == []

    return (LANES, [CONSUMER_GROUP, "idle"]), check


@case("prune_consumer")
async def prune_consumer_keeps_a_consumer_that_holds_a_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.fetch_one("busy")

    async def check(reply: Any) -> None:
        assert reply == -1
        assert await s.consumers() == ["busy"]
        assert await s.pending() == [("a", "busy")]

    return (LANES, [CONSUMER_GROUP, "busy"]), check


def abort_call(job_id: str, function: str = "f") -> Call:
    keys = [KEYS.deferred, KEYS.aborts, KEYS.waiting, KEYS.releasing, *KEYS.finished(job_id)]
    keys += slot_keys([function] if function else [])
    return keys, [PREFIX, job_id, NOW, b"aborted", RESULT_TTL_MS, function]


@case("abort", same_reply=False)
async def abort_finishes_a_job_not_started_and_names_its_dependents(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a", score=LATER)
    await s.enqueue("b", depends_on=["a"])

    async def check(reply: Any) -> None:
        assert reply == [2, [], [b"b"]]
        assert not await s.redis.exists(KEYS.job("a"))
        assert await s.redis.get(KEYS.result("a")) == b"aborted"
        assert await s.zset(KEYS.deferred) == {}
        assert await s.redis.hgetall(KEYS.releasing) == {b"a": b"0"}  # b fails with it: RELEASE_DEPENDENTS
        assert (await s.job("b"))["s"] == "w"

    return abort_call("a"), check


@case("abort", same_reply=False)
async def abort_of_a_job_holding_a_slot_passes_it_on(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.enqueue("c")
    entry_id = await s.fetch_one("w", {"f": 1})
    await s.fetch("w", 2, {"f": 1})  # b and c parked
    keys, args = completion(entry_id, "a")
    await s.scripts.complete(keys=keys, args=args)  # a's slot passed to b, b not on its lane yet

    async def check(reply: Any) -> None:
        assert reply == [2, [b"f", b"c"], []]
        assert await s.members(KEYS.running("f")) == {"c"}
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"c"]  # b left its parked list

    return abort_call("b"), check


@case("abort")
async def abort_flags_a_running_job_for_its_worker(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == [1]
        assert await s.zset(KEYS.aborts) == {"a": NOW}
        assert (await s.job("a"))["s"] == "r"
        assert not await s.redis.exists(KEYS.result("a"))

    return abort_call("a"), check


@case("abort")
async def abort_writes_nothing_when_the_job_is_of_another_function_than_named(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a", score=LATER, function="other")

    async def check(reply: Any) -> None:
        assert reply == [-1]  # the caller reads the job's function again
        assert (await s.job("a"))["s"] == "d"
        assert not await s.redis.exists(KEYS.result("a"))

    return abort_call("a", "f"), check


def sweep_call(limits: dict[str, int], known: dict[str, Sequence[str]]) -> Call:
    keys, args = list(LANES), [PREFIX]
    for function, limit in limits.items():
        ids = known.get(function, ())
        keys += KEYS.slots(function)
        for job_id in ids:
            keys += KEYS.job_and_result(job_id)
        args += [function, limit, len(ids), *ids]
    return keys, args


@case("sweep_parked", same_reply=False)
async def sweep_parked_puts_the_jobs_given_a_slot_on_their_lanes(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one("w", {"f": 1})
    await s.enqueue("b", priority=1)
    await s.enqueue("c")
    await s.fetch("w", 2, {"f": 1})  # b and c parked
    keys, args = completion(entry_id, "a")
    await s.scripts.complete(keys=keys, args=args)  # a's slot passed to b

    async def check(reply: Any) -> None:
        assert reply == [1, []]
        assert (await s.job("b"))["s"] == "q"
        assert await s.lane(1) == ["b"]
        assert await s.members(KEYS.running("f")) == {"b"}
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"c"]  # no room for c (limit not known)

    return sweep_call({"f": 0}, {"f": ["b"]}), check


@case("sweep_parked", same_reply=False)
async def sweep_parked_passes_on_a_slot_nobody_passed_on(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b parked
    await s.redis.delete(KEYS.job("a"))  # a's slot freed without a script (its hash expired or was deleted)

    async def check(reply: Any) -> None:
        assert reply == [1, []]
        assert (await s.job("b"))["s"] == "q"
        assert await s.members(KEYS.running("f")) == {"b"}  # its slot reserved
        assert await s.redis.llen(KEYS.parked("f")) == 0
        assert await s.lane() == ["a", "b"]

    return sweep_call({"f": 1}, {"f": ["a", "b"]}), check


@case("sweep_parked")
async def sweep_parked_counts_a_member_it_does_not_know_as_holding_its_slot(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.fetch_one("c", {"f": 2})
    await s.redis.sadd(KEYS.running("f"), "x")  # the limit reached: room is taken by a job not known here
    await s.fetch("c", 1, {"f": 1})  # b parked

    async def check(reply: Any) -> None:
        assert reply == [0, []]  # no room: a known job holds one slot, "x" (not known) the other
        assert (await s.job("b"))["s"] == "p"

    return sweep_call({"f": 2}, {"f": ["a"]}), check


@case("sweep_parked")
async def sweep_parked_stops_at_a_parked_job_not_known(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b parked
    await s.redis.delete(KEYS.job("a"))  # a slot for b

    async def check(reply: Any) -> None:
        assert reply == [0, [b"b"]]  # the caller calls again with b known
        assert (await s.job("b"))["s"] == "p"
        assert await s.redis.lrange(KEYS.parked("f"), 0, -1) == [b"b"]

    return sweep_call({"f": 1}, {"f": ["a"]}), check


def release_call(finished: Sequence[str], known: Sequence[str]) -> Call:
    keys = [*LANES, KEYS.deferred, KEYS.waiting, KEYS.releasing, *map(KEYS.dependents, finished)]
    keys += map(KEYS.job, known)
    return keys, [PREFIX, len(finished), *finished, *known]


async def finished_with_dependents(s: Store, *, failure_ttl: int) -> None:
    """'a' finished (COMPLETE), 'b' and 'later' (due in an hour) waiting on it, 'c' on it and on 'x'."""
    await s.enqueue("x", score=LATER)
    await s.enqueue("a")
    await s.enqueue("b", depends_on=["a"], priority=1)
    await s.enqueue("later", depends_on=["a"], score=NOW + 3_600_000)
    await s.enqueue("c", depends_on=["a", "x"])
    keys, args = completion(await s.fetch_one(), "a", failure_ttl=failure_ttl)
    await s.scripts.complete(keys=keys, args=args)


@case("release_dependents")
async def release_dependents_runs_the_jobs_left_with_no_dependency_after_a_success(s: Store) -> tuple[Call, Check]:
    await finished_with_dependents(s, failure_ttl=0)

    async def check(reply: Any) -> None:
        assert reply == []
        assert (await s.job("b"))["s"] == "q" and await s.lane(1) == ["b"]
        later = await s.job("later")
        assert later["s"] == "d" and (await s.zset(KEYS.deferred))["later"] == int(later["sc"])
        assert ((await s.job("c"))["s"], (await s.job("c"))["w"]) == ("w", "1")  # waits for x still
        assert await s.members(KEYS.waiting) == {"c"}
        assert not await s.redis.exists(KEYS.dependents("a"))
        assert await s.redis.hgetall(KEYS.releasing) == {}

    return release_call(["a"], ["b", "later", "c"]), check


@case("release_dependents")
async def release_dependents_releases_them_marked_with_a_failure(s: Store) -> tuple[Call, Check]:
    await finished_with_dependents(s, failure_ttl=60_000)

    async def check(reply: Any) -> None:
        assert reply == []
        assert [(await s.job(j))["df"] for j in ("b", "c")] == ["a", "a"]
        assert await s.lane(0) == ["c"] and await s.lane(1) == ["b"]
        assert await s.members(KEYS.waiting) == set()

    return release_call(["a"], ["b", "later", "c"]), check


@case("release_dependents")
async def release_dependents_counts_off_only_the_jobs_its_call_declares(s: Store) -> tuple[Call, Check]:
    await finished_with_dependents(s, failure_ttl=0)

    async def check(reply: Any) -> None:
        assert sorted(reply) == [b"c", b"later"]  # the caller calls again with them known
        assert (await s.job("b"))["s"] == "q"
        assert await s.members(KEYS.dependents("a")) == {"c", "later"}
        assert await s.redis.hgetall(KEYS.releasing) == {b"a": b"1"}

    return release_call(["a"], ["b"]), check


@case("trim_failed", same_reply=False)
async def trim_failed_drops_expired_members_and_rescores_ones_scored_by_failure_time(s: Store) -> tuple[Call, Check]:
    await s.redis.zadd(KEYS.failed, {"expired": NOW, "legacy": NOW, "live": NOW + 3_600_000})
    await s.redis.set(KEYS.failed_job("legacy"), b"a failure", px=60_000)  # still kept: scored by failure time

    async def check(reply: Any) -> None:
        assert reply == 1
        registry = await s.zset(KEYS.failed)
        assert sorted(registry) == ["legacy", "live"]
        await assert_redis_time_plus(s.redis, registry["legacy"], 60_000)  # its record's expiry

    return ([KEYS.failed, KEYS.failed_job("expired"), KEYS.failed_job("legacy")], [PREFIX, "expired", "legacy"]), check


@case("progress")
async def progress_is_written_under_the_runs_mark(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one("c")

    async def check(reply: Any) -> None:
        assert reply == 1
        job = await s.job("a")
        assert (job["s"], job["pg"]) == ("r", "40%")

    return ([KEYS.job("a")], [f"c {entry_id}", "40%"]), check


@case("progress")
async def progress_leaves_another_runs_job_and_a_finished_one_alone(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.fetch_one("c")

    async def check(reply: Any) -> None:
        assert reply == 0
        assert "pg" not in await s.job("a")  # another run's (mark "c <entry>") job keeps its progress

    return ([KEYS.job("a")], ["old-worker 1-0", "40%"]), check


@case("progress")
async def progress_does_not_create_a_finished_jobs_hash(s: Store) -> tuple[Call, Check]:
    async def check(reply: Any) -> None:
        assert reply == 0
        assert not await s.redis.exists(KEYS.job("gone"))

    return ([KEYS.job("gone")], ["c 1-0", "40%"]), check


@case("lock_extend")
async def lock_extend_extends_only_the_holders_lock(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.cron_leader, "mine", px=1_000)

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.redis.pttl(KEYS.cron_leader) > 1_000

    return ([KEYS.cron_leader], ["mine", 60_000]), check


@case("lock_extend")
async def lock_extend_leaves_anothers_lock_alone(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.cron_leader, "theirs", px=60_000)

    async def check(reply: Any) -> None:
        assert reply == 0
        assert await s.redis.get(KEYS.cron_leader) == b"theirs"

    return ([KEYS.cron_leader], ["mine", 60_000]), check


@case("lock_release", same_reply=False)
async def lock_release_deletes_only_the_holders_lock(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.cron_leader, "mine", px=60_000)

    async def check(reply: Any) -> None:
        assert reply == 1
        assert not await s.redis.exists(KEYS.cron_leader)

    return ([KEYS.cron_leader], ["mine"]), check


@case("lock_release")
async def lock_release_leaves_anothers_lock_alone(s: Store) -> tuple[Call, Check]:
    await s.redis.set(KEYS.cron_leader, "theirs", px=60_000)

    async def check(reply: Any) -> None:
        assert reply == 0
        assert await s.redis.get(KEYS.cron_leader) == b"theirs"

    return ([KEYS.cron_leader], ["mine"]), check


def wait_keys(job_id: str) -> list[str]:
    return [KEYS.result(job_id), KEYS.job(job_id), KEYS.waiters(job_id), KEYS.notify(job_id)]


@case("wait")
async def wait_registers_a_waiter_for_a_job_without_a_result(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")

    async def check(reply: Any) -> None:
        assert reply == [2, b"q", b"0-0"]
        assert await s.redis.pttl(KEYS.waiters("a")) > 0

    return (wait_keys("a"), [10_000]), check


@case("wait")
async def wait_answers_the_result_of_a_finished_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    keys, args = completion(await s.fetch_one(), "a")
    await s.scripts.complete(keys=keys, args=args)

    async def check(reply: Any) -> None:
        assert reply == [1, b"result of a"]
        assert not await s.redis.exists(KEYS.waiters("a"))

    return (wait_keys("a"), [10_000]), check


@case("wait")
async def wait_answers_nothing_for_an_unknown_job(s: Store) -> tuple[Call, Check]:
    async def check(reply: Any) -> None:
        assert reply == [0]
        assert not await s.redis.exists(KEYS.waiters("a"))

    return (wait_keys("a"), [10_000]), check


@case("write_health")
async def write_health_writes_the_entry_and_indexes_it_by_expiry_on_redis_clock(s: Store) -> tuple[Call, Check]:
    now = await redis_now_ms(s.redis)
    await s.redis.zadd(KEYS.workers, {"gone": now - 1, "alive": now + 60_000})  # expired by Redis's clock; not

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.redis.get(KEYS.health("w1")) == b"the health line"
        assert 0 < await s.redis.pttl(KEYS.health("w1")) <= 30_000
        index = await s.zset(KEYS.workers)
        assert sorted(index) == ["alive", "w1"]  # "gone" dropped
        await assert_redis_time_plus(s.redis, index["w1"], 30_000)  # its expiry, by Redis's clock

    return ([KEYS.health("w1"), KEYS.workers], ["w1", "the health line", 30_000]), check


@case("restore_queued", same_reply=False)
async def restore_queued_puts_back_only_queued_jobs_whose_entry_was_lost(s: Store) -> tuple[Call, Check]:
    for job_id in ("running", "lost", "appended"):
        await s.enqueue(job_id)
    await s.fetch_one()  # "running" runs
    await s.enqueue("high", priority=2)  # queued, on another lane
    entries = {job_id: entry_id for entry_id, job_id in await s.entries()}
    await s.redis.xdel(KEYS.lane(0), entries["lost"], entries["appended"])  # their entries were lost
    (last_id, _), *_ = reversed(await s.entries())  # the lane as the caller listed it: its last entry
    await s.redis.xadd(KEYS.lane(0), {"id": "appended"})  # a step that queued it appended its entry since

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.lane(0) == ["running", "appended", "lost"]
        assert (await s.job("lost"))["s"] == "q"
        assert await s.lane(2) == ["high"]

    # "high": queued on another lane; "running": not queued; "unknown": no job
    job_ids = ["running", "lost", "appended", "high", "unknown"]
    return ([*LANES, *map(KEYS.job, job_ids)], [PREFIX, 0, last_id, *job_ids]), check


# --- the tests ------------------------------------------------------------------------------------------------


class _SourceOf:
    """Stands in for a client: ``Scripts`` built on it holds each script's Lua source instead of a handle."""

    def register_script(self, source: str) -> str:
        return source


HOT = [c for c in CASES if c.hot]
SOURCES: dict[str, str] = vars(Scripts(cast(Redis, _SourceOf())))  # Scripts attribute -> its Lua source


def test_every_script_has_a_case_and_every_hot_path_script_a_lost_reply_case() -> None:
    assert {c.script for c in CASES} == set(SOURCES)
    assert {c.script for c in HOT} == {"enqueue", "fetch", "start", "complete", "requeue"}


def params(cases: list[Case], *, replay: bool) -> list[Any]:
    """One test per case; a replay test of a case whose replay is known to be unsafe is a strict xfail."""
    return [
        pytest.param(
            c,
            id=c.name,
            marks=[pytest.mark.xfail(strict=True, reason=c.replay_unsafe)] if replay and c.replay_unsafe else [],
        )
        for c in cases
    ]


@pytest.mark.parametrize("c", params(CASES, replay=False))
async def test_a_script_has_the_effect_its_contract_states(redis: PoolRedis, c: Case) -> None:
    store = Store(redis)
    (keys, args), check = await c.scenario(store)
    await check(await getattr(store.scripts, c.script)(keys=keys, args=args))


@pytest.mark.parametrize("c", params(CASES, replay=True))
async def test_a_script_run_twice_leaves_the_state_of_one_run(redis: PoolRedis, c: Case) -> None:
    store = Store(redis)
    (keys, args), _ = await c.scenario(store)
    script = getattr(store.scripts, c.script)
    reply = await script(keys=keys, args=args)
    after_one_run = await snapshot(redis)

    again = await script(keys=keys, args=args)

    assert await snapshot(redis) == after_one_run, "a second run of the same call changed the state"
    if c.same_reply:
        assert again == reply


@pytest.mark.parametrize("c", params(HOT, replay=True))
async def test_a_hot_path_script_replayed_after_a_lost_reply_leaves_the_state_of_one_run(
    redis: PoolRedis, redis_url: str, c: Case
) -> None:
    """The first run's reply is lost after Redis ran it; redis-py's retry sends the call again. The state is
    that of the same call run once from the same start (checked on a fresh Redis, then compared)."""
    (keys, args), _ = await c.scenario(Store(redis))
    reply = await getattr(scripts_for(redis), c.script)(keys=keys, args=args)
    after_one_run = await snapshot(redis)
    await redis.flushall()

    async with client_through_proxy(redis_url) as (via_proxy, proxy):
        (keys, args), check = await c.scenario(Store(redis))
        await redis.script_load(SOURCES[c.script])  # so the call that gets cut is the one that runs
        proxy.drop_reply_of(SOURCES[c.script])
        replayed = await getattr(scripts_for(via_proxy), c.script)(keys=keys, args=args)
        assert proxy.dropped == 1

    assert await snapshot(redis) == after_one_run, "the replay after a lost reply left another state than one run"
    if c.same_reply:  # (replies from two Redis runs: entry ids compared by rank, as in snapshots)
        assert normalised(replayed) == normalised(reply)
        await check(replayed)


async def test_a_requeue_replayed_after_a_lost_reply_leaves_one_ready_entry(redis: PoolRedis, redis_url: str) -> None:
    """Through the queue's own API: a job put back (a Retry, or handed back at shutdown) whose REQUEUE reply is
    lost has one ready entry, so it runs once more, not twice."""
    async with client_through_proxy(redis_url) as (via_proxy, proxy):
        queue = RedisQueue(via_proxy, "default")
        await redis.script_load(REQUEUE)  # so the EVALSHA that gets cut is the one that runs
        await redis.enqueue_job("count_run", _job_id="rq")
        await queue.ensure_group()
        deliveries = await queue.read("c", 1, None)
        started, _ = await queue.start("c", deliveries)
        (d,) = started
        proxy.drop_reply_of(REQUEUE)
        await queue.requeue(d.entry_id, d.job_id, run_at_ms=0, now_ms=now_ms())  # Retry / handed back
        assert proxy.dropped == 1
        entries = await queue.job_ids_in_stream()
        assert entries == ["rq"], f"one job, {len(entries)} ready entries: it will run {len(entries)} times"


# --- every key a script touches is declared, and none is touched after the script emptied it ---------------------
#
# On Redis Cluster, while the queue's slot moves between nodes, Redis runs a script only if every key its call
# declares is on the node, and refuses it whole otherwise (TRYAGAIN, ASK: the caller retries). A key the script
# touches without declaring it, or one the script deleted itself (emptied a set, popped a list's last item) and
# touches again, is looked up command by command: missing, it fails the script half way, after its first writes.
# These tests check both rules on a single Redis against what each contract case's call actually runs: MONITOR
# shows every command a script issues, and COMMAND GETKEYS names the keys of each.

_MONITOR_LINE = re.compile(rb"^[\d.]+ \[\d+ (\S+)\] (.*)$", re.DOTALL)
_MONITOR_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_MONITOR_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescaped(arg: bytes) -> bytes:
    """A MONITOR argument as the command had it (Redis quotes it with C escapes: \\n, \\", \\xHH...)."""

    def char(match: re.Match[bytes]) -> bytes:
        escape = match.group(1)
        if len(escape) == 3 and escape[:1] == b"x":
            return bytes([int(escape[1:], 16)])
        return _ESCAPED.get(escape, escape)

    return _MONITOR_ESCAPE.sub(char, arg)


async def monitor_lines(monitor: Any, marker: bytes) -> AsyncIterator[tuple[bytes, list[bytes]]]:
    """What a MONITOR connection shows, until the ECHO of ``marker``: (the client: b"lua" for a script's commands,
    the command's arguments as sent)."""
    assert monitor.connection is not None
    while True:
        line = await monitor.connection.read_response()
        match = _MONITOR_LINE.match(line if isinstance(line, bytes) else line.encode())
        assert match is not None, line
        args = [_unescaped(arg) for arg in _MONITOR_ARG.findall(match.group(2))]
        if args == [b"ECHO", marker]:
            return
        yield match.group(1), args


async def script_commands(redis_url: str, call: Callable[[], Awaitable[Any]]) -> list[list[bytes]]:
    """The commands the scripts run by ``call`` issued, in order, each as its arguments (as MONITOR shows them)."""
    marker = b"end of the trace " + os.urandom(8).hex().encode()
    client = Redis.from_url(redis_url)
    try:
        async with client.monitor() as monitor, asyncio.timeout(10):
            await call()
            await client.echo(marker)
            return [args async for source, args in monitor_lines(monitor, marker) if source == b"lua"]
    finally:
        await client.aclose()


async def keys_of(redis: Any, command: list[bytes]) -> list[bytes]:
    """The keys a command names, as Redis finds them (COMMAND GETKEYS): none for TIME and the like."""
    try:
        return [key if isinstance(key, bytes) else key.encode() for key in await redis.command_getkeys(*command)]
    except ResponseError:  # "the command has no key arguments"
        return []


async def traced(redis: PoolRedis, redis_url: str, c: Case) -> tuple[list[str], list[list[bytes]]]:
    """A case's call, run: its declared KEYS and the commands its script issued."""
    store = Store(redis)
    (keys, args), _ = await c.scenario(store)
    commands = await script_commands(redis_url, lambda: getattr(store.scripts, c.script)(keys=keys, args=args))
    assert commands, "no command of the script was seen"
    return keys, commands


def undeclared_params(cases: list[Case]) -> list[Any]:
    """One test per case; a case whose call is known to touch keys it does not declare is a strict xfail."""
    return [
        pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.undeclared)] if c.undeclared else [])
        for c in cases
    ]


@pytest.mark.parametrize("c", undeclared_params(CASES))
async def test_a_script_touches_only_keys_its_call_declares(redis: PoolRedis, redis_url: str, c: Case) -> None:
    keys, commands = await traced(redis, redis_url, c)
    declared = {key.encode() for key in keys}
    undeclared = [
        (b" ".join(command[:2]).decode(errors="replace"), key.decode(errors="replace"))
        for command in commands
        for key in await keys_of(redis, command)
        if key not in declared
    ]
    assert not undeclared, f"{c.script} touches keys its call does not declare: {undeclared}"


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name) for c in CASES if c.script == "fetch"])
async def test_fetch_touches_only_keys_of_its_queues_slot(redis: PoolRedis, redis_url: str, c: Case) -> None:
    """The keys FETCH cannot declare are safe on a cluster only because they share its queue's hash tag: while
    the slot guard it declares keeps it from running during a migration of that slot, no other slot can move."""
    _, commands = await traced(redis, redis_url, c)
    touched = {key for command in commands for key in await keys_of(redis, command)}
    assert touched and all(key.startswith(KEYS.prefix.encode()) for key in touched), touched


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name) for c in CASES if not c.undeclared])
async def test_a_script_never_touches_a_key_after_emptying_it(redis: PoolRedis, redis_url: str, c: Case) -> None:
    """The call is run, then its commands are replayed one at a time from the same start (the keys dumped before
    and restored): no command may name a key that existed at the start but no longer does."""
    store = Store(redis)
    (keys, args), _ = await c.scenario(store)
    start = [(key, await redis.dump(key), max(await redis.pttl(key), 0)) async for key in redis.scan_iter(count=1000)]
    commands = await script_commands(redis_url, lambda: getattr(store.scripts, c.script)(keys=keys, args=args))
    await redis.flushall()
    for key, value, ttl in start:
        await redis.restore(key, ttl, value)
    existed = {key for key, _, _ in start}
    touched_after_emptying = []
    for command in commands:
        for key in await keys_of(redis, command):
            if key in existed and not await redis.exists(key):
                touched_after_emptying.append((b" ".join(command[:2]).decode(errors="replace"), key.decode()))
        with contextlib.suppress(ResponseError):
            await redis.execute_command(*command)
    assert not touched_after_emptying, f"{c.script} touches keys after its own commands deleted them: " + str(
        touched_after_emptying
    )
