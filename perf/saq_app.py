"""The benchmark's jobs for saq: ``saq perf.saq_app.settings`` (saq's documented CLI).

Tuning: ``concurrency=100`` (as for every library); everything else is saq's default (``dequeue_timeout=0``:
blocking BLMOVE, the queue's ``max_concurrent_ops=20``; the CLI logs at WARNING, so no per-job lines).
saq creates its event loop with ``asyncio.new_event_loop()``: the uvloop policy installed below makes it a
uvloop loop. Jobs use the queue's own client (``ctx['worker'].queue.redis``); saq passes job arguments as
keyword arguments.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from saq import Queue

from perf import common

common.install_uvloop_policy()


def _redis(ctx: dict[str, Any]) -> Any:
    return ctx["worker"].queue.redis


async def noop(ctx: dict[str, Any]) -> None:
    await common.count(_redis(ctx))


async def sleepy(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(common.SLEEP_S)
    await common.count(_redis(ctx))


async def pickup(ctx: dict[str, Any], *, enqueued_at: float) -> None:
    await _redis(ctx).rpush(common.LATENCY, time.time() - enqueued_at)


async def echo(ctx: dict[str, Any], *, value: int) -> int:
    await common.count(_redis(ctx))
    return value


async def startup(ctx: dict[str, Any]) -> None:
    await common.ready(_redis(ctx))


settings = {
    "queue": Queue.from_url(common.redis_url()),
    "functions": [noop, sleepy, pickup, echo],
    "concurrency": common.CONCURRENCY,
    "startup": startup,
}
