"""Cron across processes: one leader enqueues each tick exactly once, leader failover included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.helpers import wait_for_sync
from tests.supervisor_utils import Supervisor, pool_env, supervisors

APP = """
from pool import cron

async def tick(ctx):
    await ctx['redis'].rpush('ticks', ctx['job_id'].split(':')[-1])

class WorkerSettings:
    functions = []
    cron_jobs = [cron(tick, name='tick', second=set(range(60)), microsecond=0)]
    heartbeat_interval = 0.3
"""


def ticks(client: redis.Redis) -> list[int]:
    return [int(t) // 1000 for t in client.lrange("ticks", 0, -1)]


def test_every_second_once_across_supervisors_and_a_lone_worker_with_leader_failover(
    tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "cronapp.py").write_text(APP)
    client = redis.Redis.from_url(redis_url)
    with supervisors() as started:
        for name in ("a", "b"):
            started.append(Supervisor(tmp_path, name, redis_url, "cronapp.WorkerSettings", "--procs", "2"))
        lone_log = tmp_path / "lone.log"
        with lone_log.open("wb") as out:
            lone = subprocess.Popen(
                [sys.executable, "-m", "pool", "worker", "--redis", redis_url, "cronapp.WorkerSettings"],
                cwd=tmp_path,
                env=pool_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        logs = {"a": lambda: started[0].log, "b": lambda: started[1].log, "lone": lone_log.read_text}
        pids = {"a": started[0].process.pid, "b": started[1].process.pid, "lone": lone.pid}
        try:
            for sup in started:
                sup.wait_ready(2)
            leader = wait_for_sync(
                lambda: next((name for name, log in logs.items() if "cron leader" in log()), None),
                10,
                message="a cron leader",
            )
            wait_for_sync(lambda: len(ticks(client)) >= 5, 15, message="5 ticks")
            os.kill(pids[leader], signal.SIGKILL)  # the leader dies without releasing the lock
            killed_at = time.time()
            wait_for_sync(
                lambda: any("cron leader" in log() for name, log in logs.items() if name != leader),
                15,
                message="another process takes over",
            )
            wait_for_sync(lambda: len(set(ticks(client))) >= 20, 30, message="20 seconds of ticks")
            assert max(ticks(client)) >= killed_at + 4, "too few ticks after the failover"
            observed = ticks(client)
        finally:
            lone.kill()
            lone.wait(5)
    assert len(observed) == len(set(observed)), f"a tick ran twice: {sorted(observed)}"
    expected = set(range(min(observed), max(observed) + 1))
    assert set(observed) == expected, f"ticks skipped: {sorted(expected - set(observed))}"
