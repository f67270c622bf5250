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

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgpack
import pytest
from redis.asyncio import Redis

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
        return [KEYS.stream, KEYS.fetched(consumer)], [
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

    @property
    def name(self) -> str:
        return self.scenario.__name__


CASES: list[Case] = []


def case(
    script: str, *, hot: bool = False, same_reply: bool = True, replay_unsafe: str = ""
) -> Callable[[Scenario], Scenario]:
    """Register a scenario of ``script``."""

    def register(scenario: Scenario) -> Scenario:
        CASES.append(Case(scenario, script, hot, same_reply, replay_unsafe))
        return scenario

    return register


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
async def enqueue_refuses_an_id_that_is_taken(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a", nonce="the first call")

    async def check(reply: Any) -> None:
        assert reply == [0]
        assert (await s.job("a"))["n"] == "the first call"
        assert await s.redis.get(KEYS.nonce("a")) == b"the first call"
        assert await s.lane() == ["a"]

    return s.enqueue_call("a", nonce="another call"), check


@case("fetch", hot=True)
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


@case("fetch", hot=True, same_reply=False)  # a replay answers no item for the parked entry: it was deleted
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

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "c", 0, entry_id, "a", 0]), check


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

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "c", 1, "f", 1, entry_id, "b", 0]), check


@case("unread", same_reply=False)
async def unread_puts_a_started_entry_back_and_uncounts_its_attempt(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one("c", {"f": 1})

    async def check(reply: Any) -> None:
        assert reply == 1
        job = await s.job("a")
        assert (job["s"], job["t"], "e" in job) == ("q", "0", False)
        assert await s.members(KEYS.running("f")) == set()
        assert await s.lane() == ["a"]
        assert await s.pending() == []

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "c", entry_id, "a", 0]), check


def completion(entry_id: str, job_id: str, *, failure_ttl: int = 0, callback: str = "") -> Call:
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
    ]
    return (
        [KEYS.stream, KEYS.aborts, KEYS.deferred, KEYS.failed],
        [PREFIX, CONSUMER_GROUP, msgpack.packb([record], use_bin_type=False)],
    )


@case("complete", hot=True)
async def complete_records_the_result_then_acks_and_releases_dependents(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", depends_on=["a"])
    await s.enqueue("later", depends_on=["a"], score=NOW + 3_600_000)  # due in an hour by Redis's clock
    entry_id = await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.redis.get(KEYS.result("a")) == b"result of a"
        assert await s.redis.pttl(KEYS.result("a")) > 0
        assert not await s.redis.exists(KEYS.job("a"))
        assert await s.pending() == []
        assert await s.lane() == ["b", "cb"]  # a's entry deleted; its dependent and its callback queued
        assert (await s.job("b"))["s"] == "q"
        # released, and placed by its due time against Redis's clock: deferred still
        assert (await s.job("later"))["s"] == "d"
        assert await s.zset(KEYS.deferred) == {"later": int((await s.job("later"))["sc"])}
        callback = await s.job("cb")
        assert callback["f"] == "g"
        await assert_redis_time_plus(s.redis, callback["sc"], 0)  # enqueued now, by Redis's clock
        assert await s.members(KEYS.waiting) == set()
        assert await s.zset(KEYS.failed) == {}

    return completion(entry_id, "a", callback="cb"), check


@case("complete", hot=True)
async def complete_a_failure_for_good_keeps_it_in_the_failed_registry(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", depends_on=["a"])
    entry_id = await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.redis.get(KEYS.result("a")) == b"result of a"
        assert await s.redis.get(KEYS.failed_job("a")) == b"result of a"
        expiry = await s.zset(KEYS.failed)
        assert list(expiry) == ["a"]
        await assert_redis_time_plus(s.redis, expiry["a"], 5_000)  # its record's expiry, on Redis's clock
        assert await s.pending() == []
        assert (await s.job("b"))["df"] == "a"  # released at once, marked with the failed dependency
        assert await s.lane() == ["b"]

    return completion(entry_id, "a", failure_ttl=5_000), check


@case("requeue", hot=True, same_reply=False)
async def requeue_now_puts_a_running_job_back_on_its_lane(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    entry_id = await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b is parked behind a

    async def check(reply: Any) -> None:
        assert reply == 1
        job = await s.job("a")
        assert (job["s"], job["t"]) == ("q", "1")  # the attempt it made stays counted
        assert await s.lane() == ["a", "b"]  # a's old entry deleted; b took the slot a freed
        assert await s.pending() == []
        assert await s.members(KEYS.running("f")) == {"b"}

    return ([KEYS.stream, KEYS.deferred], [PREFIX, CONSUMER_GROUP, entry_id, "a", 0, NOW, 0]), check


@case("requeue", hot=True, same_reply=False)
async def requeue_later_defers_a_running_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    entry_id = await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == 1
        job = await s.job("a")
        due = await s.zset(KEYS.deferred)
        assert job["s"] == "d" and list(due) == ["a"] and int(job["sc"]) == due["a"]
        await assert_redis_time_plus(s.redis, due["a"], LATER - NOW)  # the retry's delay, from Redis's clock
        assert await s.lane() == []
        assert await s.pending() == []

    return ([KEYS.stream, KEYS.deferred], [PREFIX, CONSUMER_GROUP, entry_id, "a", LATER, NOW, 0]), check


@case("promote", same_reply=False)
async def promote_moves_due_jobs_to_their_lanes_and_drops_stale_members(s: Store) -> tuple[Call, Check]:
    await s.enqueue("due", score=NOW + 1, priority=1)  # due 1 ms after ENQUEUE by Redis's clock
    await s.enqueue("running")
    await s.fetch_one()
    await s.redis.zadd(KEYS.deferred, {"running": LATER})  # a stale member of a job that runs now
    await s.enqueue("later", score=NOW + 3_600_000)  # due in an hour by Redis's clock
    due_at = (await s.zset(KEYS.deferred))["due"]
    await wait_for_redis_time(s.redis, due_at)

    async def check(reply: Any) -> None:
        moved, next_due_in = reply
        assert moved == 2  # due, and the stale member of running (dropped)
        assert 3_600_000 - CLOCK_TOLERANCE_MS <= next_due_in <= 3_600_000  # a delay by Redis's clock
        assert (await s.job("due"))["s"] == "q"
        assert await s.lane(1) == ["due"]
        assert await s.lane(0) == ["running"]
        assert (await s.job("running"))["s"] == "r"
        assert list(await s.zset(KEYS.deferred)) == ["later"]

    return ([KEYS.stream, KEYS.deferred], [PREFIX, "", 100]), check  # '': due by Redis's own clock


async def wait_for_redis_time(redis: Any, time_ms: int) -> None:
    """Until Redis's clock has reached ``time_ms`` (a few ms away), with a deadline."""
    for _ in range(1_000):
        if await redis_now_ms(redis) >= time_ms:
            return
    raise AssertionError(f"Redis's clock did not reach {time_ms}")


@case("hand_back_consumer", same_reply=False)
async def hand_back_consumer_puts_its_jobs_back_and_forgets_it(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b", priority=2)
    await s.fetch("dead", 2)
    await s.enqueue("c")
    await s.fetch_one("live")

    async def check(reply: Any) -> None:
        assert reply == 2
        assert ((await s.job("a"))["s"], (await s.job("b"))["s"]) == ("q", "q")
        assert await s.lane(0) == ["c", "a"] and await s.lane(2) == ["b"]
        assert await s.pending(0) == [("c", "live")] and await s.pending(2) == []
        assert await s.consumers() == ["live"]

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "dead", *PRIORITIES]), check


@case("prune_consumer")
async def prune_consumer_forgets_a_consumer_that_holds_nothing(s: Store) -> tuple[Call, Check]:
    await RedisQueue(s.redis, KEYS.queue_name).ensure_group()
    await s.redis.xgroup_createconsumer(KEYS.stream, CONSUMER_GROUP, "idle")
    assert await s.consumers() == ["idle"]

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.consumers() == []

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "idle", *PRIORITIES]), check


@case("prune_consumer")
async def prune_consumer_keeps_a_consumer_that_holds_a_job(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.fetch_one("busy")

    async def check(reply: Any) -> None:
        assert reply == -1
        assert await s.consumers() == ["busy"]
        assert await s.pending() == [("a", "busy")]

    return ([KEYS.stream], [PREFIX, CONSUMER_GROUP, "busy", *PRIORITIES]), check


def abort_call(job_id: str) -> Call:
    return [KEYS.deferred, KEYS.aborts], [PREFIX, job_id, NOW, b"aborted", RESULT_TTL_MS]


@case("abort", same_reply=False)
async def abort_finishes_a_job_not_started_and_fails_its_dependents(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a", score=LATER)
    await s.enqueue("b", depends_on=["a"])

    async def check(reply: Any) -> None:
        assert reply == 2
        assert not await s.redis.exists(KEYS.job("a"))
        assert await s.redis.get(KEYS.result("a")) == b"aborted"
        assert await s.zset(KEYS.deferred) == {}
        assert (await s.job("b"))["df"] == "a"
        assert await s.lane() == ["b"]

    return abort_call("a"), check


@case("abort")
async def abort_flags_a_running_job_for_its_worker(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.fetch_one()

    async def check(reply: Any) -> None:
        assert reply == 1
        assert await s.zset(KEYS.aborts) == {"a": NOW}
        assert (await s.job("a"))["s"] == "r"
        assert not await s.redis.exists(KEYS.result("a"))

    return abort_call("a"), check


@case("sweep_parked", same_reply=False)
async def sweep_parked_passes_on_a_slot_nobody_passed_on(s: Store) -> tuple[Call, Check]:
    await s.enqueue("a")
    await s.enqueue("b")
    await s.fetch_one("c", {"f": 1})
    await s.fetch("c", 1, {"f": 1})  # b parked
    await s.redis.delete(KEYS.job("a"))  # a's slot freed without a script (its hash expired or was deleted)

    async def check(reply: Any) -> None:
        assert reply == 1
        assert (await s.job("b"))["s"] == "q"
        assert await s.members(KEYS.running("f")) == {"b"}  # its slot reserved
        assert await s.redis.llen(KEYS.parked("f")) == 0
        assert await s.lane() == ["a", "b"]

    return ([KEYS.stream], [PREFIX, "f", 1]), check


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
    return ([KEYS.stream], [PREFIX, 0, last_id, "running", "lost", "appended", "high", "unknown"]), check


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
