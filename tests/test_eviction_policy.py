"""A Redis whose maxmemory-policy may evict keys loses jobs without a trace (the stream itself can go), so
workers and the supervisor refuse it with one line and exit 1, unless the settings opt out with
``allow_eviction = True`` (then they warn); a Redis that will not say its policy (CONFIG refused) is warned
about and used."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pool.storage.eviction import EvictionPolicyError
from tests.redis_server import RedisServer
from tests.supervisor_utils import run_pool
from tests.worker_utils import make_worker, running_worker

SETTINGS = """
from pool import RedisSettings

async def add(ctx, a, b):
    return a + b

class WorkerSettings:
    functions = [add]
    burst = True
    allow_eviction = {allow}
"""


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


@pytest.fixture
def lru_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory(config={"maxmemory-policy": "allkeys-lru"})


def _lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def _app(tmp_path: Path, allow: bool) -> Path:
    (tmp_path / "evictapp.py").write_text(SETTINGS.format(allow=allow))
    return tmp_path


def test_a_worker_refuses_a_redis_that_evicts_keys_with_one_line(lru_server: RedisServer, tmp_path: Path) -> None:
    proc = run_pool("worker", "evictapp.WorkerSettings", "--redis", lru_server.url, cwd=_app(tmp_path, False))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [line for line in _lines(proc) if "maxmemory-policy" in line]
    assert "'allkeys-lru'" in line and "noeviction" in line and "allow_eviction" in line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not [line for line in _lines(proc) if "Starting worker" in line]


def test_the_supervisor_refuses_a_redis_that_evicts_keys_before_forking(
    lru_server: RedisServer, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pool.pid"
    app = _app(tmp_path, False)
    proc = run_pool("start", "--procs", "1", "--pidfile", str(pidfile), "--redis", lru_server.url,
                    "evictapp.WorkerSettings", cwd=app, timeout=15)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len([line for line in _lines(proc) if "maxmemory-policy 'allkeys-lru'" in line]) == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not [line for line in _lines(proc) if "Starting worker" in line]


def test_the_opt_out_runs_on_an_evicting_redis_with_a_warning(lru_server: RedisServer, tmp_path: Path) -> None:
    proc = run_pool("worker", "evictapp.WorkerSettings", "--redis", lru_server.url, cwd=_app(tmp_path, True))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line for line in _lines(proc) if "WILL BE LOST" in line]


async def test_a_worker_in_process_raises_on_an_evicting_redis(lru_server: RedisServer) -> None:
    with pytest.raises(EvictionPolicyError, match="allkeys-lru"):
        await asyncio.wait_for(make_worker(lru_server.url, functions=[add], burst=True).main(), 10)


async def test_a_worker_starts_quietly_on_noeviction(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pool")
    async with running_worker(redis_url, functions=[add]):
        pass
    assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]


async def test_a_redis_that_refuses_config_get_is_warned_about_and_used(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory(config={"maxmemory-policy": "allkeys-lru"})
    admin = server.client()
    try:  # a user like a managed Redis gives: everything but CONFIG
        admin.acl_setuser("app", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"],
                          commands=["+@all", "-config"])  # fmt: skip
    finally:
        admin.close()
    caplog.set_level(logging.WARNING, logger="pool")
    url = server.url.replace("redis://", "redis://app:secret@")
    async with running_worker(url, functions=[add]):
        pass
    assert [r for r in caplog.records if "could not read Redis's maxmemory-policy" in r.getMessage()]
