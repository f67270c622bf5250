"""One health entry per supervisor (per host): the aggregate, each child, the queue's depth, cron leadership.

What goes in the entry is decided here; reading the queue's depth and writing the entry are the storage
layer's (pool/storage/sync.py's ``SyncQueue``, the same ops the workers run).

Unlike arq's single key that every worker overwrites, each supervisor writes its own key with a TTL of
twice the interval plus a second, indexed by expiry in a sorted set so readers (``pool health``) find the live
ones. A supervisor that dies simply stops refreshing its key.

The entry is built from the same snapshot as the status file (``pool status``), and written again as soon as a
worker's state changes, so both tell the same story. It carries the time it was written by Redis's clock and
its interval: a reader tells how old it is (on that one clock) and calls it stale well before the TTL removes it
(``pool health --max-age``). Every child has every counter from the start (0 before its first report).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any
from uuid import uuid4

from pool.storage import ops
from pool.storage.sync import SyncQueue

logger = logging.getLogger("pool.supervisor")

COUNTERS = ("complete", "failed", "retried", "ongoing")
STUCK_AFTER_S = 5.0  # a child whose heartbeat to the parent is older than this is reported stuck


def new_supervisor_id() -> str:
    """``host:pid:random``: containers often share a hostname and a pid (1), so those alone may collide."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


def zero_counters() -> dict[str, int]:
    return {**dict.fromkeys(COUNTERS, 0), "last_job": 0}


def build_entry(
    supervisor_id: str,
    status: dict[str, Any],
    queue: dict[str, int],
    cron_leader: bool,
    interval_s: float,
    written_ms: int,
) -> dict[str, Any]:
    children = [{**zero_counters(), **c} for c in status["children"]]
    totals = {name: sum(int(c.get(name, 0)) for c in children) for name in (*COUNTERS, "rss")}
    return {
        "id": supervisor_id,
        "host": socket.gethostname(),
        "pid": status["pid"],
        "settings": status["settings"],
        "started": status["started"],
        "updated": time.time(),
        "written_ms": written_ms,  # by Redis's clock: readers measure the entry's age on it
        "interval": interval_s,
        "procs": status["procs"],
        "cron_leader": cron_leader,
        "queue": queue,
        "totals": totals,
        "children": children,
    }


def redis_now_ms(queue: SyncQueue) -> int:
    return queue.run(ops.redis_now_ms())


def write(queue: SyncQueue, entry: dict[str, Any], interval_s: float) -> None:
    """The entry for twice the interval plus a second, on Redis's clock (see WRITE_HEALTH): a supervisor
    whose host clock is off is still seen while it writes, and goes stale when it stops."""
    queue.write_supervisor_health(entry["id"], json.dumps(entry), int((interval_s * 2 + 1) * 1000))


def remove(queue: SyncQueue, supervisor_id: str) -> None:
    queue.clear_supervisor_health(supervisor_id)
