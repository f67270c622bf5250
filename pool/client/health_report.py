"""Reading the supervisors' health entries for ``pool health`` (the supervisor writes them).

Each entry says when it was written, by Redis's clock, and how often it is written (its interval). The reader
asks Redis for the time too, so an entry's age is measured on that one clock, whatever the hosts' clocks say,
and an entry older than the max age (default: its interval + 2 s) is stale: its supervisor stopped writing (it
died, or hangs). Stale entries are shown as such and do not count as healthy; Redis removes them when their TTL
(twice the interval plus a second) runs out.
"""

from __future__ import annotations

import time
from typing import Any

from ..redis.settings import RedisSettings
from ..storage import ops
from ..storage.drivers import run
from ..storage.queue import RedisQueue
from .connections import create_pool

STALE_MARGIN_S = 2.0  # an entry is stale once it is this much older than its interval (unless --max-age says)
COUNTERS = ("complete", "failed", "retried", "ongoing")


async def read_entries(
    settings: RedisSettings, queue_name: str, max_age_s: float | None = None
) -> list[dict[str, Any]]:
    """Every supervisor's entry, each with ``age`` (seconds, by Redis's clock) and ``stale`` added, and every
    counter present in each child."""
    pool = await create_pool(settings)
    try:
        return await entries_of(pool, queue_name, max_age_s)
    finally:
        await pool.aclose()


async def entries_of(redis: Any, queue_name: str, max_age_s: float | None = None) -> list[dict[str, Any]]:
    """``read_entries`` on a client already open (the dashboard's)."""
    entries = await RedisQueue(redis, queue_name).read_supervisor_health()
    now_ms = await run(redis, ops.redis_now_ms())
    return [judge(entry, now_ms, max_age_s) for entry in entries]


async def worker_lines(redis: Any, queue_name: str) -> list[str]:
    """The health lines of the queue's live workers (each worker's counters, arq's format)."""
    return await RedisQueue(redis, queue_name).read_health()


def judge(entry: dict[str, Any], now_ms: int, max_age_s: float | None) -> dict[str, Any]:
    written_ms = entry.get("written_ms")
    age = max(now_ms - written_ms, 0) / 1000 if isinstance(written_ms, int) else None
    limit = max_age_s if max_age_s is not None else float(entry.get("interval") or 5.0) + STALE_MARGIN_S
    children = [{**dict.fromkeys(COUNTERS, 0), **c} for c in entry.get("children", [])]
    return {**entry, "children": children, "age": age, "stale": age is not None and age > limit}


def healthy(entries: list[dict[str, Any]]) -> bool:
    """At least one live supervisor whose entry is fresh, and no worker stuck (its event loop stopped
    heartbeating) in a fresh entry."""
    fresh = [e for e in entries if not e.get("stale")]
    return bool(fresh) and not any(c.get("stuck") for e in fresh for c in e.get("children", []))


def format_report(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no live supervisor found for this queue"
    now = time.time()
    lines = []
    for e in entries:
        q, t = e["queue"], e["totals"]
        age = e.get("age")
        written = f", written {age:.1f}s ago" if age is not None else ""
        stale = " STALE (no longer written: the supervisor died or hangs)" if e.get("stale") else ""
        lines.append(
            f"supervisor {e['id']} [{e['settings']}] up {_ago(now - e['started'])}{written}{stale}"
            f"{' cron-leader' if e.get('cron_leader') else ''}: queue ready={q['ready']} running={q['running']} "
            f"deferred={q['deferred']}; complete={t['complete']} failed={t['failed']} retried={t['retried']} "
            f"ongoing={t['ongoing']}"
        )
        for c in e["children"]:
            state = "STUCK" if c.get("stuck") else c["state"]
            lines.append(
                f"  worker {c['slot']} pid={c['pid']} {state} rss={c.get('rss', 0) / 1048576:.1f}MB "
                f"cpu={c.get('cpu', 0):.0f}% complete={c['complete']} failed={c['failed']} "
                f"retried={c['retried']} ongoing={c['ongoing']}"
            )
    return "\n".join(lines)


def _ago(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )
