"""The app the chaos run (tests/chaos/run.py) runs under ``pool start``.

``work(ctx, index, kind, ms)`` is one job:

1. ``RPUSH chaos:starts "<job_id> <try> <nonce>"`` as it starts, so every attempt is counted, even one killed
   mid-job (the nonce is new for each attempt: a command that redis-py replays after a lost reply shows up as
   the same nonce twice, a second execution as a second nonce);
2. ``sleep(ms)``: the work (0-200 ms);
3. in one MULTI/EXEC, its side effect (``HINCRBY chaos:effects <job_id> 1``) together with the record of this
   execution (``RPUSH chaos:execs "<job_id> <try> <nonce>"``): an execution is recorded if and only if its
   side effect happened;
4. by ``kind``: ``ok`` returns ``index``; ``retry`` raises ``Retry`` on its first execution (the one whose
   HINCRBY returned 1) and returns ``index`` after; ``fail`` raises ``DesignedFailure`` (not retried);
   ``interrupt`` (a poison job) raises ``KeyboardInterrupt``, which must fail that job, not stop its worker.

Poison jobs of kind ``deep`` never run ``work``: the run replaces their payload with ``deep_payload(index)``,
a value nested so deep that msgpack's decoder would crash a worker that decoded it unchecked; they must fail
with the reason.

A Redis error inside a job (Redis is restarting) becomes ``Retry(defer=0.5)``: the app's own retry policy, as a
real app would have. The cron job ``tick`` runs every second and records itself in the same way under its job id
``tick:<tick_ms>``. ``pure(ctx, index, ms)`` records its start only, then sleeps and returns ``index``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import msgpack
from redis.exceptions import RedisError

from pool import Retry, cron

STARTS = "chaos:starts"
EXECS = "chaos:execs"
EFFECTS = "chaos:effects"
MAX_TRIES = 5
CRON_NAME = "tick"


class DesignedFailure(RuntimeError):
    """Raised by jobs of kind ``fail``: their final result must be this failure."""


async def _run_once(ctx: dict[str, Any], seconds: float) -> int:
    """Steps 1-3 above; returns how many times this job's side effect has now happened."""
    redis = ctx["redis"]
    job_id, job_try, nonce = ctx["job_id"], ctx["job_try"], uuid4().hex[:12]
    await redis.rpush(STARTS, f"{job_id} {job_try} {nonce}")
    if seconds:
        await asyncio.sleep(seconds)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(EFFECTS, job_id, 1)
        pipe.rpush(EXECS, f"{job_id} {job_try} {nonce}")
        count, _ = await pipe.execute()
    return int(count)


async def work(ctx: dict[str, Any], index: int, kind: str, ms: int) -> int:
    try:
        count = await _run_once(ctx, ms / 1000)
    except (RedisError, OSError) as exc:
        raise Retry(defer=0.5) from exc
    if kind == "retry" and count == 1:
        raise Retry(defer=0.1)
    if kind == "fail":
        raise DesignedFailure(f"designed failure {index}")
    if kind == "interrupt":
        raise KeyboardInterrupt(f"poison {index}")
    return index


def deep_payload(index: int, enqueue_ms: int, depth: int = 250) -> bytes:
    """The payload of ``work(<an exception wrapping an exception ... depth deep>)``, built by hand as pool's
    exception extension (type 1) so that no encoder's depth check stops it: what a producer without pool's
    checks could write. msgpack's C decoder, unchecked, segfaults at ~200 levels."""
    data = msgpack.packb(["builtins", "ValueError", msgpack.packb([f"poison {index}"]), "leaf"])
    for _ in range(depth):
        data = msgpack.packb(["builtins", "ValueError", msgpack.packb([msgpack.ExtType(1, data)]), "wrapper"])
    job = {"f": "work", "a": [index, "deep", 0, msgpack.ExtType(1, data)], "k": {}, "et": enqueue_ms}
    return bytes(msgpack.packb(job, use_bin_type=True))


async def pure(ctx: dict[str, Any], index: int, ms: int) -> int:
    """Records its start, then works without touching Redis: a result that is due while Redis is down can only
    reach Redis through the worker's retried result write (tests/test_faults.py)."""
    await ctx["redis"].rpush(STARTS, f"{ctx['job_id']} {ctx['job_try']} {uuid4().hex[:12]}")
    await asyncio.sleep(ms / 1000)
    return index


async def tick(ctx: dict[str, Any]) -> None:
    try:
        await _run_once(ctx, 0)
    except (RedisError, OSError) as exc:
        raise Retry(defer=0.2) from exc


class WorkerSettings:
    functions = [work, pure]
    cron_jobs = [cron(tick, name=CRON_NAME, second=set(range(60)), microsecond=0, max_tries=MAX_TRIES)]
    max_tries = MAX_TRIES
    max_jobs = 10
    keep_result = 3600


class FaultSettings:
    """tests/test_faults.py: the same jobs, no cron, a 0.5 s heartbeat."""

    functions = [work, pure]
    max_tries = MAX_TRIES
    max_jobs = 10
    heartbeat_interval = 0.5


class CronSettings:
    """tests/test_faults.py: only the cron job."""

    functions: list[Any] = []
    cron_jobs = [cron(tick, name=CRON_NAME, second=set(range(60)), microsecond=0, max_tries=MAX_TRIES)]
