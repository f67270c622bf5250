"""One health entry per supervisor (per host): the aggregate, each child, the queue's depth, cron leadership.

Unlike arq's single key that every worker overwrites, each supervisor writes its own key with a TTL of
twice the interval plus a second, indexed by expiry in a sorted set so readers (``pool health``) find the live
ones. A supervisor that dies simply stops refreshing its key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from typing import Any

import redis

from pool.keys import CONSUMER_GROUP, QueueKeys
from pool.scripts import WRITE_HEALTH

logger = logging.getLogger("pool.supervisor")

COUNTERS = ("complete", "failed", "retried", "ongoing")
STUCK_AFTER_S = 5.0  # a child whose heartbeat to the parent is older than this is reported stuck


def supervisor_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def queue_depth(client: redis.Redis, keys: QueueKeys) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for lane in keys.lanes:
        pipe.xlen(lane)
    pipe.zcard(keys.deferred)
    pipe.smembers(keys.parked_functions)
    *lengths, deferred, parked_functions = pipe.execute()
    parked = sum(int(client.llen(keys.parked(f.decode()))) for f in parked_functions)
    running = 0
    for lane, length in zip(keys.lanes, lengths, strict=True):
        if length:
            with contextlib.suppress(redis.ResponseError):  # no group yet: nothing delivered
                running += int(client.xpending(lane, CONSUMER_GROUP)["pending"])
    ready = max(sum(lengths) - running, 0)
    return {"ready": ready, "running": running, "deferred": int(deferred), "parked": parked}


def build_entry(status: dict[str, Any], queue: dict[str, int], cron_leader: bool) -> dict[str, Any]:
    children = status["children"]
    totals = {name: sum(int(c.get(name, 0)) for c in children) for name in (*COUNTERS, "rss")}
    return {
        "id": supervisor_id(),
        "host": socket.gethostname(),
        "pid": status["pid"],
        "settings": status["settings"],
        "started": status["started"],
        "updated": time.time(),
        "procs": status["procs"],
        "cron_leader": cron_leader,
        "queue": queue,
        "totals": totals,
        "children": children,
    }


def write(client: redis.Redis, keys: QueueKeys, entry: dict[str, Any], interval_s: float) -> None:
    """The entry for twice the interval plus a second, on Redis's clock (see WRITE_HEALTH): a supervisor
    whose host clock is off is still seen while it writes, and goes stale when it stops."""
    ttl_ms = int((interval_s * 2 + 1) * 1000)
    script = client.register_script(WRITE_HEALTH)
    script(keys=[keys.supervisor_health(entry["id"]), keys.supervisors], args=[entry["id"], json.dumps(entry), ttl_ms])


def remove(client: redis.Redis, keys: QueueKeys) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.delete(keys.supervisor_health(supervisor_id()))
    pipe.zrem(keys.supervisors, supervisor_id())
    pipe.execute()
