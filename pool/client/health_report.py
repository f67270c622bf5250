"""Reading the supervisors' health entries for ``pool health`` (the supervisor writes them)."""

from __future__ import annotations

import time
from typing import Any

from ..redis.settings import RedisSettings
from ..storage.queue import RedisQueue
from .connections import create_pool


async def read_entries(settings: RedisSettings, queue_name: str) -> list[dict[str, Any]]:
    pool = await create_pool(settings)
    try:
        return await RedisQueue(pool, queue_name).read_supervisor_health()
    finally:
        await pool.aclose()


def healthy(entries: list[dict[str, Any]]) -> bool:
    """At least one live supervisor, and no worker stuck (its event loop stopped heartbeating)."""
    return bool(entries) and not any(c.get("stuck") for e in entries for c in e.get("children", []))


def format_report(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no live supervisor found for this queue"
    now = time.time()
    lines = []
    for e in entries:
        q, t = e["queue"], e["totals"]
        lines.append(
            f"supervisor {e['id']} [{e['settings']}] up {_ago(now - e['started'])}"
            f"{' cron-leader' if e.get('cron_leader') else ''}: queue ready={q['ready']} running={q['running']} "
            f"deferred={q['deferred']}; complete={t['complete']} failed={t['failed']} retried={t['retried']} "
            f"ongoing={t['ongoing']}"
        )
        for c in e["children"]:
            state = "STUCK" if c.get("stuck") else c["state"]
            lines.append(
                f"  worker {c['slot']} pid={c['pid']} {state} rss={c.get('rss', 0) / 1048576:.1f}MB "
                f"cpu={c.get('cpu', 0):.0f}% complete={c.get('complete', 0)} failed={c.get('failed', 0)} "
                f"retried={c.get('retried', 0)} ongoing={c.get('ongoing', 0)}"
            )
    return "\n".join(lines)


def _ago(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )
