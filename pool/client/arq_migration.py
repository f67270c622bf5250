"""Moving the jobs waiting in arq's queue into pool's (``pool migrate-from-arq``).

arq 0.26 keeps a queue as a sorted set of job ids scored by due time (ms), each job's payload in ``arq:job:<id>``
(``{t: job_try, f: function, a: args, k: kwargs, et: enqueue ms}``, pickled by default), the tries it used in
``arq:retry:<id>`` and, while a worker runs it, ``arq:in-progress:<id>``.

Each job moves in three steps, so that a run killed at any point loses nothing and a re-run finishes the move:

0. an id pool already holds (another job) is left in arq, unclaimed: a claim taken then released would, if the
   run were killed in between, read as the earlier run's own enqueue in step 2 and arq's job would be dropped.
1. claim it in arq: ``SET arq:in-progress:<id> <CLAIM> NX``. arq's workers skip a job whose in-progress key
   exists (and their WATCH on that key aborts a pickup racing with the claim), so from here arq will not run it.
   A key already holding something else means an arq worker runs the job: it is left to arq. A key holding
   CLAIM was set by an earlier, interrupted run: the move is resumed.
2. enqueue it into pool with the same id, function, arguments, due time and tries already used. pool refuses an
   id it already holds: on a resumed move that is the earlier run's enqueue, done already.
3. remove it from arq in one transaction: the queue's entry, the job, retry and in-progress (claim) keys.

A job is thus in arq's queue (claimed) or in pool's, or briefly in both but claimed so arq never runs it; never
in neither, never enqueued twice. A job arq was asked to abort (``arq:abort``) is left to arq, whose worker drops
it. A job naming a function pool's settings lack stays in arq too (it would fail
in pool). (The one gap: an earlier run enqueued it, pool ran it and its result expired
before the re-run, which then enqueues it again. Hence the order of docs/arq.md: re-run a killed migration before
starting pool's workers.) Jobs that cannot be decoded or re-encoded are released and stay in arq's queue.
arq's results (``arq:result:<id>``) are not touched.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..storage.partitions import partition_of
from ..utils import now_ms
from .connections import PoolRedis
from .jobs import Job, JobStatus
from .specs import EnqueueDefaults, JobSpec, prepare_job

JOB_PREFIX = "arq:job:"
RETRY_PREFIX = "arq:retry:"
IN_PROGRESS_PREFIX = "arq:in-progress:"
DEFAULT_ARQ_QUEUE = "arq:queue"
ABORT_SET = "arq:abort"  # ids arq's Job.abort() asked to abort, for every queue
# The in-progress value that marks a job as being moved (arq's own workers write b'1')
CLAIM = b"pool migrate-from-arq"
# Test hook: after enqueueing this many jobs into pool, and before removing the last one from arq, say so on
# stderr and wait to be killed (tests/test_migrate_from_arq.py kills the run there)
PAUSE_ENV = "POOL_TEST_MIGRATE_PAUSE_AFTER"

ArqDeserializer = Callable[[bytes], Any]
HELD_BY_POOL = "pool's queue already holds a job with this id: left in arq"


def looks_pickled(payload: bytes) -> bool:
    """A pickle of protocol 2 or later starts with PROTO (0x80) and its version; arq's msgpack payloads start
    with a map of 5 entries (0x85)."""
    return len(payload) > 2 and payload[0] == 0x80 and 2 <= payload[1] <= 5


@dataclass(slots=True)
class Outcome:
    """What happened to one job: ``kind`` is moved, running, aborted (both left to arq), failed or gone."""

    job_id: str
    kind: str
    detail: str = ""
    deferred: bool = False


@dataclass(slots=True)
class Tally:
    moved: int = 0
    deferred: int = 0
    running: int = 0
    aborted: int = 0
    failed: int = 0
    reports: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        if outcome.kind == "moved":
            self.moved += 1
            self.deferred += outcome.deferred
        elif outcome.kind == "running":
            self.running += 1
        elif outcome.kind == "aborted":
            self.aborted += 1
        elif outcome.kind == "failed":
            self.failed += 1
        if outcome.kind in ("running", "aborted", "failed"):
            self.reports.append(outcome)


class PickleRefused(Exception):
    """arq's payloads are pickled and ``--serializer pickle`` was not given."""


class ArqMigration:
    """Moves the jobs of one arq queue into ``pool``'s default queue (see the module's docstring)."""

    def __init__(
        self,
        pool: PoolRedis,
        deserializer: ArqDeserializer,
        arq_queue: str = DEFAULT_ARQ_QUEUE,
        *,
        pickle_allowed: bool = False,
        dry_run: bool = False,
        functions: Collection[str] | None = None,
    ) -> None:
        self.pool = pool
        self.redis: Any = pool  # arq's keys are plain keys on the same Redis
        self.arq_queue = arq_queue
        self.deserializer = deserializer
        self.pickle_allowed = pickle_allowed
        self.dry_run = dry_run
        self.functions = functions  # the names pool's workers run; a job naming another stays in arq
        self._pause_after = int(os.environ.get(PAUSE_ENV) or 0)
        self._enqueued = 0

    async def job_ids(self) -> list[tuple[str, float]]:
        """The queue's ids and scores as they are now; jobs added later are left to a re-run."""
        entries = await self.redis.zrange(self.arq_queue, 0, -1, withscores=True)
        return [(_text(job_id), score) for job_id, score in entries]

    async def check_serializer(self, sample: int = 50) -> None:
        """PickleRefused if the first payloads look pickled and pickle was not allowed: said before anything
        moves, rather than once per job."""
        if self.pickle_allowed:
            return
        ids = [job_id for job_id, _ in (await self.job_ids())[:sample]]
        if not ids:
            return
        payloads = await self.redis.mget([JOB_PREFIX + job_id for job_id in ids])
        if any(p is not None and looks_pickled(p) for p in payloads):
            raise PickleRefused

    async def run(self, on_outcome: Callable[[Outcome], None] | None = None) -> Tally:
        tally = Tally()
        for job_id, _ in await self.job_ids():
            outcome = await (self.inspect(job_id) if self.dry_run else self.move(job_id))
            tally.add(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return tally

    async def move(self, job_id: str) -> Outcome:
        in_progress = IN_PROGRESS_PREFIX + job_id
        resumed = False
        # An id pool holds already is refused before the claim, not after: a claim left behind by a run killed
        # between pool's refusal and the release would read, on the re-run, as that run's own enqueue, and arq's
        # job would be dropped for pool's other one.
        if await self.redis.get(in_progress) is None and await self._held_by_pool(job_id):
            return Outcome(job_id, "failed", HELD_BY_POOL)
        if not await self.redis.set(in_progress, CLAIM, nx=True):
            holder = await self.redis.get(in_progress)
            if holder is None:  # arq's run just ended: its worker removed the job, or will retry it; look again
                return await self.move(job_id)
            if holder != CLAIM:
                return Outcome(job_id, "running", "an arq worker is running it: left to arq")
            resumed = True
        outcome, spec = await self._read(job_id)
        if spec is None:
            if not resumed:
                await self.redis.delete(in_progress)  # released: it stays arq's
            elif outcome.kind != "gone":  # the earlier run may have enqueued it: arq must not run it too
                outcome.kind = "failed"
                outcome.detail += " (claimed by an interrupted run, and kept so: it may be in pool already)"
            return outcome
        (enqueued,) = await self.pool.enqueue_many([spec])
        if enqueued is None and not resumed:  # pool took the id since the check above
            await self.redis.delete(in_progress)
            return Outcome(job_id, "failed", HELD_BY_POOL)
        self._enqueued += 1
        if self._pause_after and self._enqueued >= self._pause_after:
            print(f"paused after {self._enqueued} jobs", file=sys.stderr, flush=True)
            time.sleep(3600)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.arq_queue, job_id)
            pipe.delete(JOB_PREFIX + job_id, RETRY_PREFIX + job_id, in_progress)
            await pipe.execute()
        return outcome

    async def inspect(self, job_id: str) -> Outcome:
        """--dry-run: what ``move`` would do, changing nothing."""
        holder = await self.redis.get(IN_PROGRESS_PREFIX + job_id)
        if holder is not None and holder != CLAIM:
            return Outcome(job_id, "running", "an arq worker is running it: would be left to arq")
        outcome, _ = await self._read(job_id)
        if outcome.kind == "moved" and holder is None and await self._held_by_pool(job_id):
            return Outcome(job_id, "failed", HELD_BY_POOL)
        return outcome

    async def _held_by_pool(self, job_id: str) -> bool:
        """pool holds a job under this id (queued, deferred, running or its result kept): it would refuse it."""
        job = Job(job_id, self.pool, _queue_name=self.pool.default_queue_name)
        return await job.status() != JobStatus.not_found

    async def _read(self, job_id: str) -> tuple[Outcome, JobSpec | None]:
        """The job as pool's JobSpec, or why it cannot be moved."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(JOB_PREFIX + job_id)
            pipe.get(RETRY_PREFIX + job_id)
            pipe.zscore(self.arq_queue, job_id)
            pipe.pttl(JOB_PREFIX + job_id)
            pipe.zscore(ABORT_SET, job_id)
            payload, retries, score, ttl_ms, abort_asked = await pipe.execute()
        if score is None:
            return Outcome(job_id, "gone", "no longer in arq's queue"), None
        if abort_asked is not None:  # moved, it would run in pool: arq's worker drops it at pickup instead
            return Outcome(job_id, "aborted", "arq was asked to abort it (arq:abort): left to arq"), None
        if payload is None:
            return Outcome(job_id, "failed", "its arq:job key has expired: left to arq (which drops it)"), None
        if looks_pickled(payload) and not self.pickle_allowed:
            return Outcome(job_id, "failed", "cannot decode: pickled (needs --serializer pickle)"), None
        try:
            data = self.deserializer(payload)
            function, args, kwargs = data["f"], tuple(data["a"]), dict(data["k"])
            enqueue_try = int(data.get("t") or 0)
        except Exception as exc:
            return Outcome(job_id, "failed", f"cannot decode: {type(exc).__name__}: {exc}"), None
        if self.functions is not None and function not in self.functions:
            return Outcome(job_id, "failed", f"pool's settings have no function {function!r}: left in arq"), None
        due_ms = int(score)
        # arq's next try: the tries used (arq:retry) + 1, or the _job_try it was enqueued with if larger
        job_try = max(int(retries or 0) + 1, enqueue_try, 1)
        try:
            spec = self._spec(job_id, function, args, kwargs, due_ms, job_try, ttl_ms)
        except Exception as exc:
            return Outcome(job_id, "failed", f"cannot re-encode for pool: {type(exc).__name__}: {exc}"), None
        deferred = due_ms > now_ms()
        when = f", due {datetime.fromtimestamp(due_ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC" if deferred else ""
        detail = f"{function}() try {job_try}{when}"
        return Outcome(job_id, "moved", detail, deferred=deferred), spec

    def _spec(
        self,
        job_id: str,
        function: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        due_ms: int,
        job_try: int,
        ttl_ms: int,
    ) -> JobSpec:
        """pool's job for arq's: arguments apart from the options (a kwarg named like an option stays a kwarg),
        due at arq's score, expiring when arq's job key would have."""
        pool = self.pool
        defaults = EnqueueDefaults(
            queue_name=pool.default_queue_name,
            serializer=pool.job_serializer,
            max_payload_bytes=pool.max_payload_bytes,
            expires_extra_ms=pool.expires_extra_ms,
        )
        spec = prepare_job(
            function,
            args,
            kwargs,
            defaults,
            job_id=job_id,
            defer_until=datetime.fromtimestamp(due_ms / 1000, UTC),
            expires=ttl_ms / 1000 if ttl_ms > 0 else None,
            job_try=job_try,
        )
        partitions = pool.partitions(spec.queue_name)
        if partitions > 1:
            spec.partition = partition_of(spec.job_id, partitions)
        return spec


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
