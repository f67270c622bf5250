"""Tests of the Sentinel set fixture itself (tests/sentinel_set.py), checked with redis-py directly.

Each failover or kill takes one to three seconds; the tests that make them start a set of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_server import RedisServer
from tests.sentinel_set import Address, SentinelSet, SentinelSetError


@contextlib.contextmanager
def sentinel_client(sentinels: SentinelSet) -> Iterator[redis.sentinel.Sentinel]:
    """redis-py's own view through the sentinels (closed afterwards; ``Sentinel.close`` is redis-py 6+ only)."""
    client = sentinels.sentinel()
    try:
        yield client
    finally:
        for connection in client.sentinels:
            connection.close()


@contextlib.contextmanager
def node_client(node: RedisServer) -> Iterator[redis.Redis]:
    client = node.client(decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def role(node: RedisServer) -> list[Any]:
    with node_client(node) as client:
        reply: list[Any] = client.execute_command("ROLE")
        return reply


def address(node: RedisServer) -> Address:
    return (node.host, node.port)


def test_sentinels_name_the_first_node_master_and_see_the_whole_set(shared_sentinel_set: SentinelSet) -> None:
    sentinels = shared_sentinel_set
    master, replica = sentinels.master_node(), sentinels.replica_node()
    assert [master, replica] == sentinels.nodes
    assert role(master)[0] == "master"
    assert role(replica)[:3] == ["slave", master.host, master.port]

    with sentinel_client(sentinels) as client:
        assert client.discover_master(sentinels.service) == sentinels.master_address() == address(master)
        assert client.discover_slaves(sentinels.service) == [address(replica)]
        for connection in client.sentinels:  # each sentinel knows the two others
            assert len(connection.execute_command("SENTINEL", "SENTINELS", sentinels.service)) == 2
        writer = client.master_for(sentinels.service, socket_timeout=2)
        try:
            writer.set("fixture:shared", "written through the sentinels")
        finally:
            writer.close()
    with node_client(master) as client:
        assert client.get("fixture:shared") == "written through the sentinels"


def test_url_and_settings_name_the_sentinels_and_the_service(shared_sentinel_set: SentinelSet) -> None:
    sentinels = shared_sentinel_set
    hosts = ",".join(f"127.0.0.1:{port}" for _, port in sentinels.sentinel_addresses)
    assert sentinels.service == "mymaster"
    assert sentinels.url == f"redis+sentinel://{hosts}/mymaster/0"

    settings = sentinels.settings(conn_timeout=2)
    assert settings.sentinel is True
    assert settings.host == sentinels.sentinel_addresses
    assert settings.sentinel_master == "mymaster"
    assert settings.password is None and settings.sentinel_password is None
    assert settings.conn_timeout == 2


def test_restart_old_without_a_kill_is_an_error(shared_sentinel_set: SentinelSet) -> None:
    with pytest.raises(SentinelSetError, match="kill_master"):
        shared_sentinel_set.restart_old()


def test_failover_swaps_master_and_replica_and_the_synced_data_is_on_the_new_master(
    sentinel_set: SentinelSet,
) -> None:
    old_master, old_replica = sentinel_set.master_node(), sentinel_set.replica_node()
    with node_client(old_master) as client:
        client.mset({f"fixture:key:{n}": n for n in range(100)})
    sentinel_set.wait_replicas_in_sync()

    new_address = sentinel_set.failover(timeout=15)

    assert new_address == address(old_replica)
    assert role(old_replica)[0] == "master"
    with sentinel_client(sentinel_set) as client:
        assert client.discover_master(sentinel_set.service) == new_address
    with node_client(old_replica) as client:
        assert client.mget([f"fixture:key:{n}" for n in range(100)]) == [str(n) for n in range(100)]

    # The sentinels demote the old master: it replicates from the new one.
    sentinel_set.wait_replicas_in_sync(timeout=15)
    assert role(old_master)[:3] == ["slave", old_replica.host, old_replica.port]


def test_kill_master_promotes_the_replica_and_restart_old_brings_the_old_master_back_as_its_replica(
    sentinel_set: SentinelSet,
) -> None:
    old_master, old_replica = sentinel_set.master_node(), sentinel_set.replica_node()
    with node_client(old_master) as client:
        client.set("fixture:before-kill", "kept")
    sentinel_set.wait_replicas_in_sync()

    new_address = sentinel_set.kill_master(timeout=15)

    assert new_address == address(old_replica) == sentinel_set.master_address()
    assert not old_master.running
    assert role(old_replica)[0] == "master"
    with node_client(old_replica) as client:
        assert client.get("fixture:before-kill") == "kept"
        client.set("fixture:after-kill", "replicated")

    # Back as a master (an empty one: no persistence), demoted by the sentinels, synced from the new master.
    assert sentinel_set.restart_old(timeout=15) == address(old_master)
    assert role(old_master)[:3] == ["slave", old_replica.host, old_replica.port]
    with node_client(old_master) as client:
        assert client.get("fixture:after-kill") == "replicated"

    # The set can fail over again: back to the first node.
    assert sentinel_set.failover(timeout=15) == address(old_master)
    assert role(old_master)[0] == "master"


def test_restart_old_as_replica_starts_the_killed_node_replicating_from_the_new_master(
    sentinel_set: SentinelSet,
) -> None:
    old_master, old_replica = sentinel_set.master_node(), sentinel_set.replica_node()
    sentinel_set.kill_master(timeout=15)

    assert sentinel_set.restart_old(as_replica=True, timeout=15) == address(old_master)
    assert old_master.config["replicaof"] == f"127.0.0.1 {old_replica.port}"
    assert role(old_master)[:3] == ["slave", old_replica.host, old_replica.port]
    sentinel_set.wait_replicas_in_sync()


def test_passwords_guard_the_nodes_and_the_sentinels(sentinel_set_factory: Callable[..., SentinelSet]) -> None:
    password, sentinel_password = 'data "pw"/@x', "sentinel pw:1"  # spaces, quotes, URL characters
    sentinels = sentinel_set_factory(
        service="queue-main",
        password=password,
        sentinel_password=sentinel_password,
        data_config={"min-replicas-to-write": "1"},
    )
    hosts = ",".join(f"127.0.0.1:{port}" for _, port in sentinels.sentinel_addresses)
    assert sentinels.url == (
        f"redis+sentinel://:data%20%22pw%22%2F%40x@{hosts}/queue-main/0?sentinel_password=sentinel%20pw%3A1"
    )
    settings = sentinels.settings()
    assert (settings.password, settings.sentinel_password) == (password, sentinel_password)
    assert settings.sentinel_master == "queue-main"
    assert password not in repr(sentinels) and sentinel_password not in repr(sentinels)

    for server in [*sentinels.sentinels, sentinels.master_node()]:
        anonymous = redis.Redis(host=server.host, port=server.port, retry=Retry(NoBackoff(), 0))
        try:
            with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
                anonymous.ping()
        finally:
            anonymous.close()

    with sentinel_client(sentinels) as client:
        writer = client.master_for("queue-main", socket_timeout=2)
        try:
            writer.set("fixture:guarded", "yes")
            assert writer.config_get("min-replicas-to-write")["min-replicas-to-write"] == "1"
        finally:
            writer.close()
    sentinels.wait_replicas_in_sync()
    with node_client(sentinels.replica_node()) as client:
        assert client.get("fixture:guarded") == "yes"


def test_a_failed_wait_shows_the_sentinels_logs(sentinel_set: SentinelSet) -> None:
    # No failover completes in 10 ms: the error carries what the sentinels logged meanwhile.
    with pytest.raises(SentinelSetError) as error:
        sentinel_set.failover(timeout=0.01)
    message = str(error.value)
    assert "not met within" in message
    assert message.count("redis.log") == 3
    assert "Executing user requested FAILOVER of 'mymaster'" in message


def test_close_stops_every_process_and_removes_the_directory() -> None:
    sentinels = SentinelSet().start()
    directory = sentinels.directory
    pids = [server.pid for server in [*sentinels.nodes, *sentinels.sentinels]]
    assert len(pids) == 5 and all(pids)

    sentinels.close()
    sentinels.close()  # idempotent

    assert not directory.exists()
    assert not any(psutil.pid_exists(pid) for pid in pids if pid is not None)
    with pytest.raises(SentinelSetError, match="closed"):
        sentinels.start()
