"""Shared fixtures: private Redis servers (never the machine's Redis on 6379).

- ``redis_server``          one private server for the whole session.
- ``redis_url``             that server's URL, FLUSHALLed before each test.
- ``redis_server_factory``  start extra private servers (to kill, restart, or with a password);
                            each is stopped and its directory removed at teardown.
- ``redis``, ``pool``        a ``PoolRedis`` client (``create_pool``) of ``redis_url`` (two names, one fixture).
- ``spawn_worker``          ``spawn_worker(*extra, settings=...)`` runs ``pool worker`` as a process (killed at
                            teardown): a ``tests.worker_utils.WorkerProcess``.
- ``sentinel_set``          a fresh ``tests.sentinel_set.SentinelSet`` (master, replica, three sentinels) per test:
                            for tests that fail over or kill.
- ``sentinel_set_factory``  ``sentinel_set_factory(**kwargs)`` starts a ``SentinelSet(**kwargs)`` (passwords, extra
                            data-node config); each is closed at teardown.
- ``shared_sentinel_set``   one ``SentinelSet`` for the whole session, for tests that neither fail over nor kill
                            (nor flush: use keys of your own).
- ``redis_cluster``         a fresh ``tests.redis_cluster.ClusterSet`` (three masters) per test: for tests that
                            reshard or kill.
- ``redis_cluster_factory`` ``redis_cluster_factory(**kwargs)`` starts a ``ClusterSet(**kwargs)`` (password,
                            replicas, ...); each is closed at teardown.
- ``shared_redis_cluster``  one ``ClusterSet`` for the whole session, for tests that neither reshard nor kill
                            (nor flush: use keys of your own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pool import PoolRedis, RedisSettings, create_pool
from tests.redis_cluster import ClusterSet
from tests.redis_server import RedisServer
from tests.sentinel_set import SentinelSet
from tests.worker_utils import WorkerProcess


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if not redis_server.running:  # a test stopped or killed the shared one: bring it back
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """``redis_server_factory(**kwargs)`` starts a ``RedisServer(**kwargs)`` and returns it."""
    servers: list[RedisServer] = []

    def factory(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        servers.append(server)
        return server.start()

    yield factory
    for server in reversed(servers):
        server.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[PoolRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


@pytest.fixture
def pool(redis: PoolRedis) -> PoolRedis:
    return redis


@pytest.fixture
def spawn_worker(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(*extra: str, settings: str) -> WorkerProcess:
        worker = WorkerProcess(redis_url, tmp_path / f"worker-{len(workers)}.log", *extra, settings=settings)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.popen.poll() is None:
            worker.popen.kill()
        worker.popen.wait(10)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    with SentinelSet() as sentinels:
        yield sentinels


@pytest.fixture
def sentinel_set_factory() -> Iterator[Callable[..., SentinelSet]]:
    """``sentinel_set_factory(**kwargs)`` starts a ``SentinelSet(**kwargs)`` and returns it."""
    sets: list[SentinelSet] = []

    def factory(**kwargs: Any) -> SentinelSet:
        sentinels = SentinelSet(**kwargs)
        sets.append(sentinels)
        return sentinels.start()

    yield factory
    for sentinels in reversed(sets):
        sentinels.close()


@pytest.fixture(scope="session")
def shared_sentinel_set() -> Iterator[SentinelSet]:
    with SentinelSet() as sentinels:
        yield sentinels


@pytest.fixture
def redis_cluster() -> Iterator[ClusterSet]:
    with ClusterSet() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_factory() -> Iterator[Callable[..., ClusterSet]]:
    """``redis_cluster_factory(**kwargs)`` starts a ``ClusterSet(**kwargs)`` and returns it."""
    clusters: list[ClusterSet] = []

    def factory(**kwargs: Any) -> ClusterSet:
        cluster = ClusterSet(**kwargs)
        clusters.append(cluster)
        return cluster.start()

    yield factory
    for cluster in reversed(clusters):
        cluster.close()


@pytest.fixture(scope="session")
def shared_redis_cluster() -> Iterator[ClusterSet]:
    with ClusterSet() as cluster:
        yield cluster
