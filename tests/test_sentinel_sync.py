"""The supervisor's sync client (pool/storage/sync.py) and `pool start` behind a real Sentinel set.

Needs the ``sentinel_set`` fixture (tests/sentinel_set.py: a master, a replica and Sentinels on free ports),
with ``.settings(**kw)`` (RedisSettings for the set), ``.url`` (its redis+sentinel:// URL), ``.master_address()``
and ``.failover()`` (returns the new master's address). The module is skipped while tests/sentinel_set.py is
absent. Tests that need no Sentinel (URLs, a silent Sentinel, the CLI's errors) are in tests/test_sentinel_url.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pool import RedisSettings, create_pool
from pool.storage.keys import QueueKeys
from pool.storage.sync import SyncQueue
from tests.helpers import wait_for_sync
from tests.supervisor_utils import Supervisor, supervisors
from tests.test_cli import SETTINGS

pytest.importorskip("tests.sentinel_set", reason="the Sentinel set fixture (tests/sentinel_set.py) is not there")

# A reply (1 s connect, 2 s read) or a Sentinel (0.5 s, 1 s each): no call of the sync client may take longer.
CALL_LIMIT_S = 3.5


def direct(address: tuple[str, int], db: int = 0) -> redis.Redis:
    """A plain client of one node, to check what the Sentinel-backed client did."""
    host, port = address
    return redis.Redis(host=host, port=port, db=db, socket_timeout=2, decode_responses=True)


@pytest.fixture
def sync_queue(sentinel_set: Any) -> Iterator[SyncQueue]:
    queue = SyncQueue.connect(sentinel_set.settings(database=2), "default")
    yield queue
    queue.close()


def test_the_sync_client_reaches_the_master_through_the_sentinels(sentinel_set: Any, sync_queue: SyncQueue) -> None:
    sync_queue.ping()
    assert sync_queue.ensure_group() >= 0
    sync_queue.client.set("written-through-sentinel", "yes")
    master = direct(sentinel_set.master_address(), db=2)
    try:
        assert master.get("written-through-sentinel") == "yes"  # on the master, in the settings' database
        assert master.exists(QueueKeys("default").stream)
        assert master.info("replication")["role"] == "master"
    finally:
        master.close()


def test_the_sentinel_url_reaches_the_same_master(sentinel_set: Any) -> None:
    settings = RedisSettings.from_dsn(sentinel_set.url)
    assert settings.sentinel and settings.host == sentinel_set.settings().host
    queue = SyncQueue.connect(settings, "default")
    try:
        queue.client.set("via-url", "1")
    finally:
        queue.close()
    master = direct(sentinel_set.master_address())
    try:
        assert master.get("via-url") == "1"
    finally:
        master.close()


def test_after_a_failover_the_sync_client_writes_to_the_new_master_within_the_check_interval(
    sentinel_set: Any,
) -> None:
    """The supervisor's loop keeps turning through a promotion: each call fails fast or succeeds, and once the
    Sentinels name the new master, writes land there within sentinel_check_interval, not when the Sentinels get
    round to demoting the old master (about ten seconds later, while it still takes writes that are then lost)."""
    queue = SyncQueue.connect(sentinel_set.settings(database=2, sentinel_check_interval=0.5), "default")
    try:
        queue.client.set("written", 0)  # a connection to the old master, kept open in the pool
        new = sentinel_set.failover()
        master = direct(new, db=2)
        tries = 0
        slowest = 0.0

        def write_lands_on_the_new_master() -> bool:
            nonlocal tries, slowest
            tries += 1
            started = time.monotonic()
            try:
                queue.client.set("written", tries)
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                return False
            finally:
                slowest = max(slowest, time.monotonic() - started)
            return master.get("written") == str(tries)

        try:
            wait_for_sync(write_lands_on_the_new_master, timeout=4, interval=0.05, message="a write on the new master")
            assert master.info("replication")["role"] == "master"
        finally:
            master.close()
        assert slowest < CALL_LIMIT_S, slowest
    finally:
        queue.close()


async def test_pool_start_serves_jobs_behind_sentinel(sentinel_set: Any, tmp_path: Path) -> None:
    """`pool start --redis redis+sentinel://...`: the supervisor (sync client) and its forked workers (async
    client) reach the master through the Sentinels; the log names the target as describe() does."""
    with supervisors() as started:
        sup = Supervisor(tmp_path, "sentinel", sentinel_set.url, SETTINGS, "--procs", "1")
        started.append(sup)
        sup.wait_ready(1, timeout=30)
        client = await create_pool(sentinel_set.settings())
        try:
            job = await client.enqueue_job("add", 2, 3)
            assert job is not None
            assert await job.result(timeout=15) == 5
        finally:
            await client.aclose()
        assert f"redis {RedisSettings.from_dsn(sentinel_set.url).describe()}" in sup.log
