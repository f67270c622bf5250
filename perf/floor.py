"""The floor: the least Python + redis-py can do per job with the Redis work pool does, in one process.

``python -m perf.floor`` (env as for the apps). A raw loop on uvloop with redis-py + hiredis, no queue library:
XREADGROUP COUNT 100 (blocking) -> one task per entry doing the same INCR as every benchmark job -> one
pipeline of XACK + XDEL + SET result (with a TTL) for the batch. No job hash, no payload decoding, no timeouts,
no retries, no health: what is left when every feature is taken away. pool's target is a fraction of this.

``python -m perf.floor pipelined``: the same, but the batch's INCRs go out in one pipeline instead of one task
(and one round trip on its own connection) each: what a client that batched the commands its jobs issue in one
event-loop turn could reach. Not the floor of the issue, a hint of the next one.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from perf import common

STREAM = "floor:stream"
GROUP = "floor"
RESULT_TTL_MS = 3_600_000
RESULT = b"\xc0"  # msgpack None, the size of a noop's result


async def enqueue(redis: aioredis.Redis, total: int, batch: int = 1000) -> None:
    """Pre-enqueue ``total`` entries (not timed): XADD in pipelines."""
    for start in range(0, total, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, total)):
                pipe.xadd(STREAM, {"id": f"job{i}"})
            await pipe.execute()


async def run_pipelined(redis: aioredis.Redis, entries: list[Any]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for _ in entries:
            pipe.incr(common.DONE)
        counts = await pipe.execute()
    for done in counts:  # the stamps, as common.count() does them
        if done == 1:
            await redis.set(common.START, repr(time.time()))
        if done == common.TOTAL:
            await redis.set(common.END, repr(time.time()))


async def main(pipelined: bool) -> None:
    redis = aioredis.Redis.from_url(common.redis_url(), max_connections=None)
    consumer = f"floor-{os.getpid()}"
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    await common.ready(redis)
    while True:
        reply: Any = await redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=common.CONCURRENCY, block=5000)
        if not reply:
            continue
        entries = reply[0][1]
        if pipelined:
            await run_pipelined(redis, entries)
        else:
            await asyncio.gather(*(common.count(redis) for _ in entries))
        async with redis.pipeline(transaction=False) as pipe:
            for entry_id, fields in entries:
                pipe.xack(STREAM, GROUP, entry_id)
                pipe.xdel(STREAM, entry_id)
                pipe.set(b"floor:result:" + fields[b"id"], RESULT, px=RESULT_TTL_MS)
            await pipe.execute()


if __name__ == "__main__":
    import sys

    import uvloop

    uvloop.run(
        main(pipelined=sys.argv[1:] == ["pipelined"])
    )  # stopped by SIGTERM (its default action: nothing to clean up)
