"""`pool health`: one entry per supervisor with each child's counters; unhealthy when none is live."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
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


def health_json(tmp_path: Path, redis_url: str, *args: str) -> tuple[int, list[dict]]:
    code, out = health(tmp_path, redis_url, "--json", *args)
    return code, json.loads(out)


def test_every_child_has_every_counter_from_the_first_entry(tmp_path: Path, redis_url: str) -> None:
    """The first entry is written before any worker reported: its children have every counter, 0."""
    (tmp_path / "healthapp.py").write_text(APP)
    with supervisors() as started:
        sup = Supervisor(tmp_path, "h", redis_url, "healthapp.WorkerSettings", "--procs", "2")
        started.append(sup)
        _, entries = wait_for_sync(
            lambda: (found := health_json(tmp_path, redis_url))[1] and found, 10, interval=0.05, message="an entry"
        )
        (entry,) = entries
        assert len(entry["children"]) == 2
        for child in entry["children"]:
            assert {"complete": 0, "failed": 0, "retried": 0, "ongoing": 0}.items() <= child.items(), child


def status_states(tmp_path: Path, pidfile: Path) -> dict[int, str]:
    proc = run_pool("status", "--pidfile", str(pidfile), cwd=tmp_path)
    return {int(m[1]): m[2] for m in re.finditer(r"^\s*\d+\s+(\d+)\s+(\w+)\s", proc.stdout, re.M)}


def test_health_says_ready_as_soon_as_status_does(tmp_path: Path, redis_url: str) -> None:
    """A state change is written at once, not at the next --health-interval (30 s here): once `pool status`
    shows both workers ready, `pool health` does too, with their memory."""
    (tmp_path / "healthapp.py").write_text(APP)
    with supervisors() as started:
        sup = Supervisor(
            tmp_path, "h", redis_url, "healthapp.WorkerSettings", "--procs", "2", "--health-interval", "30"
        )
        started.append(sup)
        states = wait_for_sync(
            lambda: (found := status_states(tmp_path, sup.pidfile)) and set(found.values()) == {"ready"} and found,
            20,
            interval=0.05,
            message="pool status: both ready",
        )

        def health_agrees() -> bool:
            code, entries = health_json(tmp_path, redis_url)
            children = entries[0]["children"] if entries else []
            return (
                code == 0 and {c["pid"]: c["state"] for c in children} == states and all(c["rss"] > 0 for c in children)
            )

        wait_for_sync(health_agrees, 2, interval=0.05, message="pool health: both ready, with their memory")


def test_a_killed_supervisor_is_stale_within_max_age_before_its_entry_expires(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "healthapp.py").write_text(APP)
    with supervisors() as started:
        sup = Supervisor(tmp_path, "h", redis_url, "healthapp.WorkerSettings", "--procs", "1", "--health-interval", "2")
        started.append(sup)
        sup.wait_ready(1)
        wait_for_sync(lambda: health_json(tmp_path, redis_url)[0] == 0, 10, interval=0.1, message="healthy")
        sup.process.send_signal(signal.SIGKILL)
        # the entry lives 5 s (2 x 2 + 1) after its last write; read with a max age of 3 s it is stale sooner:
        # found stale while the entry still exists, so by its age and not by its expiry
        code, entries = wait_for_sync(
            lambda: (found := health_json(tmp_path, redis_url, "--max-age", "3"))[0] == 1 and found,
            10,
            interval=0.1,
            message="unhealthy after the kill",
        )
        (entry,) = entries  # still there: judged by its age, not by its expiry
        assert entry["stale"] and entry["age"] > 3
        code, text = health(tmp_path, redis_url, "--max-age", "3")
        assert code == 1 and "STALE" in text


def test_supervisor_ids_differ_beyond_host_and_pid(tmp_path: Path, redis_url: str) -> None:
    """Containers share hostnames and pids (often pid 1): the id carries a random part too."""
    (tmp_path / "healthapp.py").write_text(APP)
    with supervisors() as started:
        for name in ("a", "b"):
            sup = Supervisor(tmp_path, name, redis_url, "healthapp.WorkerSettings", "--procs", "1")
            started.append(sup)
            sup.wait_ready(1)
        entries = wait_for_sync(
            lambda: len(found := health_json(tmp_path, redis_url)[1]) == 2 and found, 10, message="two entries"
        )
        for entry in entries:
            host_and_pid = f"{socket.gethostname()}:{entry['pid']}"
            assert re.fullmatch(re.escape(host_and_pid) + r":[0-9a-f]{8}", entry["id"]), entry["id"]
