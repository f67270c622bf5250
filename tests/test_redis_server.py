"""Tests of the test helpers themselves: the private RedisServer, the fixtures and wait_for."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.helpers import wait_for, wait_for_sync
from tests.redis_server import FORBIDDEN_PORTS, RedisServer, find_redis_server


def test_binary_is_found() -> None:
    path = find_redis_server()
    assert os.path.isabs(path)
    assert os.access(path, os.X_OK)


def test_session_server_answers_ping(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.running
    assert redis_server.port != 6379
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        # persistence is off by default
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("save")["save"] == ""
    finally:
        client.close()


@pytest.mark.parametrize("attempt", [1, 2])
def test_redis_url_is_flushed_before_each_test(redis_url: str, attempt: int) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0  # whichever of the two runs second sees the other's key gone
        client.set("left-behind", attempt)
    finally:
        client.close()


def test_unix_socket(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(unix_socket=True)
    assert server.unix_socket is not None and os.path.exists(server.unix_socket)
    client = redis.Redis.from_url(server.unix_url)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_restart_keeps_port_and_persisted_data(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(persistence=True, appendfsync="always")
    port, url = server.port, server.url
    client = redis.Redis.from_url(url)
    try:
        client.set("k", "graceful")
        server.restart()
        assert (server.port, server.url) == (port, url)
        assert client.get("k") == b"graceful"  # redis-py reconnects

        client.set("k", "crash")
        old_pid = server.pid
        server.restart(hard=True)  # SIGKILL: appendfsync=always keeps the write
        assert server.pid != old_pid
        assert server.port == port
        assert client.get("k") == b"crash"
    finally:
        client.close()


def test_kill_and_stop(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    server.kill()
    assert not server.running
    assert not server.ping()
    server.start()
    assert server.ping()
    server.stop()
    assert not server.running
    server.stop()  # idempotent


def test_without_persistence_restart_loses_data(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    client = server.client()
    try:
        client.set("k", "v")
        server.restart()
        assert client.get("k") is None
    finally:
        client.close()


def test_password_server_rejects_unauthenticated(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(password="s3cret/pw")
    assert server.url == f"redis://:s3cret%2Fpw@127.0.0.1:{server.port}/0"

    # No retries: redis-py retries AuthenticationError (a ConnectionError) with backoff by default.
    anonymous = redis.Redis(host="127.0.0.1", port=server.port, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            anonymous.ping()
    finally:
        anonymous.close()

    authenticated = redis.Redis.from_url(server.url)
    try:
        assert authenticated.ping() is True
    finally:
        authenticated.close()


def test_context_manager_removes_its_directory() -> None:
    with RedisServer() as server:
        directory = server.directory
        assert server.ping()
        assert directory.is_dir()
    assert not server.running
    assert not directory.exists()


def test_the_shared_redis_port_is_refused() -> None:
    for shared_port in FORBIDDEN_PORTS:  # the machine's own Redis: tests must never use it
        with pytest.raises(ValueError):
            RedisServer(port=shared_port)


async def test_wait_for_sync_and_async_predicates() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, event.set)
    assert await wait_for(event.is_set) is True

    async def value() -> int:
        return 42

    assert await wait_for(value) == 42

    with pytest.raises(AssertionError, match="never true"):
        await wait_for(lambda: False, timeout=0.05, message="never true")


def test_wait_for_sync() -> None:
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    assert wait_for_sync(third_time) is True
    assert len(calls) == 3
    with pytest.raises(AssertionError, match="not met within"):
        wait_for_sync(lambda: 0, timeout=0.02)
