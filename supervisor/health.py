"""One health entry per supervisor (per host): the aggregate, each child, the queue's depth, cron leadership.

What goes in the entry is decided here; reading the queue's depth and writing the entry are the storage
layer's (pool/storage/sync.py's ``SyncQueue``, the same ops the workers run).

Unlike arq's single key that every worker overwrites, each supervisor writes its own key with a TTL of
twice the interval plus a second, indexed by expiry in a sorted set so readers (``pool health``) find the live
ones. A supervisor that dies simply stops refreshing its key.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from pool.storage.sync import SyncQueue

logger = logging.getLogger("pool.supervisor")

COUNTERS = ("complete", "failed", "retried", "ongoing")
STUCK_AFTER_S = 5.0  # a child whose heartbeat to the parent is older than this is reported stuck


def supervisor_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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


def write(queue: SyncQueue, entry: dict[str, Any], interval_s: float) -> None:
    """The entry for twice the interval plus a second, on Redis's clock (see WRITE_HEALTH): a supervisor
    whose host clock is off is still seen while it writes, and goes stale when it stops."""
    queue.write_supervisor_health(entry["id"], json.dumps(entry), int((interval_s * 2 + 1) * 1000))


def remove(queue: SyncQueue) -> None:
    queue.clear_supervisor_health(supervisor_id())
