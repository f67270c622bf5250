"""`pool health`: one entry per supervisor with each child's counters; unhealthy when none is live."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from pool import RedisSettings, create_pool
from tests.helpers import wait_for_sync
from tests.supervisor_utils import Supervisor, run_pool, supervisors

APP = """
async def work(ctx, i):
    return i

class WorkerSettings:
    functions = [work]
"""


async def enqueue_and_wait(redis_url: str, count: int) -> None:
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        jobs = [await redis.enqueue_job("work", i) for i in range(count)]
        for job in jobs:
            assert job is not None
            await job.result(timeout=10)
    finally:
        await redis.aclose()


def health(tmp_path: Path, redis_url: str, *args: str) -> tuple[int, str]:
    proc = run_pool("health", "--redis", redis_url, *args, "healthapp.WorkerSettings", cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def test_health_reports_every_child_and_goes_unhealthy_when_supervisors_are_gone(
    tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "healthapp.py").write_text(APP)
    assert health(tmp_path, redis_url)[0] == 1  # nobody running yet
    with supervisors() as started:
        sup = Supervisor(
            tmp_path, "h", redis_url, "healthapp.WorkerSettings", "--procs", "4", "--health-interval", "0.3"
        )
        started.append(sup)
        sup.wait_ready(4)
        asyncio.run(enqueue_and_wait(redis_url, 40))

        def totals_caught_up() -> dict | None:
            code, out = health(tmp_path, redis_url, "--json")
            entries = json.loads(out)
            return entries[0] if code == 0 and entries and entries[0]["totals"]["complete"] == 40 else None

        entry = wait_for_sync(totals_caught_up, 10, interval=0.2, message="health shows 40 completed jobs")
        children = entry["children"]
        assert len(children) == 4
        assert sum(c["complete"] for c in children) == 40
        assert all({"pid", "rss", "complete", "failed", "retried", "ongoing"} <= c.keys() for c in children)
        assert {c["pid"] for c in children} == {p.pid for p in sup.children()}
        code, text = health(tmp_path, redis_url)
        assert code == 0 and text.count("worker ") == 4 and "complete=40" in text

        stop = run_pool("stop", "--pidfile", str(sup.pidfile), cwd=tmp_path)
        assert stop.returncode == 0, stop.stderr
        assert health(tmp_path, redis_url)[0] == 1  # a clean stop removes its entry at once

        crashed = Supervisor(
            tmp_path, "k", redis_url, "healthapp.WorkerSettings", "--procs", "1", "--health-interval", "0.3"
        )
        started.append(crashed)
        crashed.wait_ready(1)
        wait_for_sync(lambda: health(tmp_path, redis_url)[0] == 0, 10, interval=0.2, message="healthy again")
        crashed.process.send_signal(signal.SIGKILL)  # no clean-up: the entry must expire by itself
        wait_for_sync(lambda: health(tmp_path, redis_url)[0] == 1, 10, interval=0.2, message="entry expired")
