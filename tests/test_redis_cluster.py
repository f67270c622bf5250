"""Tests of the Redis Cluster fixture itself (tests/redis_cluster.py), checked with redis-py directly.

A cluster starts in a little over 2 s (a master that has just started waits 2 s before it calls the cluster
ok); the tests that neither reshard nor kill share one, and use keys of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import AskError, MovedError
from redis.retry import Retry

from pool import RedisSettings
from tests.redis_cluster import SLOTS, ClusterSet, ClusterSetError
from tests.redis_server import RedisServer


@contextlib.contextmanager
def cluster_client(cluster: ClusterSet) -> Iterator[redis.cluster.RedisCluster]:
    client = cluster.client(decode_responses=True)
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def node_client(node: RedisServer) -> Iterator[redis.Redis]:
    """A plain client of one node: it sees MOVED and ASK as errors instead of following them."""
    client = node.client(decode_responses=True, retry=Retry(NoBackoff(), 0))
    try:
        yield client
    finally:
        client.close()


def tags_on_every_master(cluster: ClusterSet, prefix: str) -> dict[int, str]:
    """``{master port: hash tag}``: one tag whose slot each master serves."""
    masters = {node.port for node in cluster.masters()}
    found: dict[int, str] = {}
    for number in range(1000):
        tag = f"{prefix}:{number}"
        found.setdefault(cluster.node_for_key("{" + tag + "}").port, tag)
        if set(found) == masters:
            return found
    raise AssertionError(f"no tag found for some master: {found}")


def other_master(cluster: ClusterSet, node: RedisServer) -> RedisServer:
    return next(master for master in cluster.masters() if master is not node)


def slot_owners(node: RedisServer) -> list[tuple[int, int, int]]:
    """CLUSTER SLOTS of one node as ``[(first, last, master port), ...]``."""
    with node_client(node) as client:
        reply: list[Any] = client.execute_command("CLUSTER", "SLOTS")
    return sorted((int(entry[0]), int(entry[1]), int(entry[2][1])) for entry in reply)


def count_in_slot(node: RedisServer, slot: int) -> int:
    with node_client(node) as client:
        return int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))


def test_every_node_sees_the_same_three_masters_sharing_all_slots(shared_redis_cluster: ClusterSet) -> None:
    cluster = shared_redis_cluster
    assert len(cluster.nodes) == 3
    assert cluster.masters() == cluster.nodes
    for node in cluster.nodes:
        with node_client(node) as client:
            info = client.execute_command("CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert "cluster_known_nodes:3" in info and "cluster_size:3" in info
        assert f"cluster_slots_assigned:{SLOTS}" in info and "cluster_slots_fail:0" in info
    maps = [slot_owners(node) for node in cluster.nodes]
    assert maps[0] == [(0, 5460, cluster.nodes[0].port), (5461, 10921, cluster.nodes[1].port),
                       (10922, 16383, cluster.nodes[2].port)]  # fmt: skip
    assert maps[1] == maps[0] and maps[2] == maps[0]

    with cluster_client(cluster) as client:
        assert sorted(node.port for node in client.get_primaries()) == sorted(node.port for node in cluster.nodes)
        assert client.get_replicas() == []


def test_keys_with_different_hash_tags_land_on_different_masters_and_each_master_serves_its_own(
    shared_redis_cluster: ClusterSet,
) -> None:
    cluster = shared_redis_cluster
    tags = tags_on_every_master(cluster, "fixture:tags")
    assert len(tags) == 3 and len(set(tags.values())) == 3

    with cluster_client(cluster) as client:
        for port, tag in tags.items():
            key = "{" + tag + "}:value"
            assert client.keyslot(key) == cluster.keyslot(key)
            client.set(key, f"served by {port}")
            client.set("{" + tag + "}:sibling", "same slot")  # one tag, one slot, one master
            assert cluster.node_for_key("{" + tag + "}:sibling").port == port
    for node in cluster.nodes:
        tag = tags[node.port]
        with node_client(node) as direct:
            assert direct.get("{" + tag + "}:value") == f"served by {node.port}"
            assert direct.get("{" + tag + "}:sibling") == "same slot"
            other = next(other_tag for port, other_tag in tags.items() if port != node.port)
            with pytest.raises(MovedError):  # the others' keys are not here
                direct.get("{" + other + "}:value")


def test_url_and_startup_nodes_name_every_node(shared_redis_cluster: ClusterSet) -> None:
    cluster = shared_redis_cluster
    ports = [node.port for node in cluster.nodes]
    assert cluster.startup_nodes == [("127.0.0.1", port) for port in ports]
    assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports) + "/0"
    assert str(cluster.nodes[0].port) in repr(cluster)


@pytest.mark.skipif(
    "cluster" not in {field.name for field in dataclasses.fields(RedisSettings)},
    reason="RedisSettings has no cluster field yet",
)
def test_settings_name_every_node_as_a_cluster(shared_redis_cluster: ClusterSet) -> None:
    settings = shared_redis_cluster.settings(conn_timeout=2)
    assert vars(settings)["cluster"] is True  # read so whether or not the field is typed yet
    assert settings.host == shared_redis_cluster.startup_nodes
    assert settings.password is None
    assert settings.conn_timeout == 2


def test_migrate_slot_moves_the_slot_and_its_keys_with_their_values(redis_cluster: ClusterSet) -> None:
    cluster = redis_cluster
    slot = cluster.keyslot("{fixture:migrate}")
    source = cluster.node_for_slot(slot)
    target = other_master(cluster, source)
    values = {f"{{fixture:migrate}}:{n}": f"value {n} " + "x" * (n % 50) for n in range(1000)}
    pauses: list[int] = []

    with cluster_client(cluster) as client:
        client.mset_nonatomic(values)
        client.hset("{fixture:migrate}:hash", mapping={"a": "1", "b": "2"})  # not only strings
        assert count_in_slot(source, slot) == 1001

        moved = cluster.migrate_slot(
            slot, target, batch=100, pause_between_batches=lambda: pauses.append(count_in_slot(target, slot))
        )

        assert moved == 1001
        assert pauses == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1001]  # called after each batch
        assert cluster.node_for_slot(slot) is target
        assert count_in_slot(target, slot) == 1001 and count_in_slot(source, slot) == 0
        for node in cluster.nodes:
            owners = [port for first, last, port in slot_owners(node) if first <= slot <= last]
            assert owners == [target.port]
        # The client still has the old slot map: it follows MOVED to the target.
        keys = list(values)
        assert client.mget_nonatomic(keys) == [values[key] for key in keys]
        assert client.hgetall("{fixture:migrate}:hash") == {"a": "1", "b": "2"}
        client.set("{fixture:migrate}:after", "written to the new owner")
    with node_client(target) as direct:
        assert direct.get("{fixture:migrate}:after") == "written to the new owner"
    cluster.wait_ok()


def test_a_half_migrated_slot_answers_ask_for_a_moved_key_and_serves_the_others(redis_cluster: ClusterSet) -> None:
    cluster = redis_cluster
    slot = cluster.keyslot("{fixture:half}")
    keys = [f"{{fixture:half}}:{n}" for n in range(30)]
    with cluster_client(cluster) as client:
        client.mset_nonatomic({key: f"v{key}" for key in keys})
    with pytest.raises(ClusterSetError, match="begin_migration"):
        cluster.migrate_batch(slot)
    source = cluster.node_for_slot(slot)
    target = other_master(cluster, source)

    assert cluster.begin_migration(slot, target) is source
    assert cluster.migrate_batch(slot, batch=10) == 10

    assert cluster.node_for_slot(slot) is source  # the source owns the slot until the migration ends
    assert (count_in_slot(source, slot), count_in_slot(target, slot)) == (20, 10)
    with node_client(target) as direct:
        moved = direct.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    staying = next(key for key in keys if key not in moved)
    with node_client(source) as direct:
        with pytest.raises(AskError) as ask:
            direct.get(moved[0])
        assert type(ask.value) is AskError
        assert (ask.value.slot_id, ask.value.host, ask.value.port) == (slot, "127.0.0.1", target.port)
        assert direct.get(staying) == f"v{staying}"
    with node_client(target) as direct:
        with pytest.raises(MovedError) as redirect:  # without ASKING the target sends the client back
            direct.get(moved[0])
        assert redirect.value.port == source.port
        pipe = direct.pipeline(transaction=False)  # ASKING holds for the next command on its connection
        pipe.execute_command("ASKING")
        pipe.get(moved[0])
        assert pipe.execute() == [True, f"v{moved[0]}"]
    with cluster_client(cluster) as client:  # redis-py follows ASK for the moved keys
        assert [client.get(key) for key in keys] == [f"v{key}" for key in keys]
        client.set("{fixture:half}:new", "created during the migration")  # a new key goes to the target
    assert count_in_slot(target, slot) == 11

    cluster.finish_migration(slot)  # moves the 20 left

    assert cluster.node_for_slot(slot) is target
    assert (count_in_slot(source, slot), count_in_slot(target, slot)) == (0, 31)
    with cluster_client(cluster) as client:
        assert client.get("{fixture:half}:new") == "created during the migration"
        assert [client.get(key) for key in keys] == [f"v{key}" for key in keys]


def test_password_guards_every_node_and_replicas_follow_their_masters(
    redis_cluster_factory: Callable[..., ClusterSet],
) -> None:
    password = 'cluster "pw"/@x'  # a space, quotes, URL characters
    cluster = redis_cluster_factory(password=password, replicas=1)
    assert len(cluster.nodes) == 6
    hosts = ",".join(f"127.0.0.1:{port}" for _, port in cluster.startup_nodes)
    assert cluster.url == f"redis+cluster://:cluster%20%22pw%22%2F%40x@{hosts}/0"
    assert password not in repr(cluster)
    for node in cluster.nodes:
        anonymous = redis.Redis(host=node.host, port=node.port, retry=Retry(NoBackoff(), 0))
        try:
            with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
                anonymous.ping()
        finally:
            anonymous.close()
    masters = cluster.masters()
    assert masters == cluster.nodes[:3]
    assert [cluster.replicas_of(master) for master in masters] == [[node] for node in cluster.nodes[3:]]

    key = "{fixture:guarded}:key"
    with cluster_client(cluster) as client:
        client.set(key, "yes")
        cluster.wait_replicas_in_sync()
        replica = cluster.replicas_of(cluster.node_for_key(key))[0]
        with node_client(replica) as direct:
            pipe = direct.pipeline(transaction=False)
            pipe.execute_command("READONLY")
            pipe.get(key)
            assert pipe.execute() == [True, "yes"]

        # MIGRATE authenticates to the target.
        slot = cluster.keyslot(key)
        target = other_master(cluster, cluster.node_for_slot(slot))
        assert cluster.migrate_slot(slot, target) == 1
        assert cluster.node_for_key(key) is target
        assert client.get(key) == "yes"


def test_a_killed_master_is_replaced_by_its_replica_and_comes_back_as_its_replica(
    redis_cluster_factory: Callable[..., ClusterSet],
) -> None:
    cluster = redis_cluster_factory(replicas=1)
    key = "{fixture:failover}:key"
    master = cluster.node_for_key(key)
    (replica,) = cluster.replicas_of(master)
    with cluster_client(cluster) as client:
        client.set(key, "kept")
        cluster.wait_replicas_in_sync()

        cluster.kill_node(master)
        cluster.wait_ok(timeout=15)

        assert not master.running
        assert cluster.node_for_key(key) is replica
        assert client.get(key) == "kept"

        cluster.restart_node(master, timeout=15)

        assert cluster.node_for_key(key) is replica
        assert cluster.replicas_of(replica) == [master]
        client.set(key, "after the restart")
        cluster.wait_replicas_in_sync()
    with node_client(master) as direct:
        pipe = direct.pipeline(transaction=False)
        pipe.execute_command("READONLY")
        pipe.get(key)
        assert pipe.execute() == [True, "after the restart"]


def test_a_killed_master_without_replica_fails_the_wait_with_the_logs_and_restarts_empty(
    redis_cluster: ClusterSet,
) -> None:
    cluster = redis_cluster
    key = "{fixture:crash}:key"
    with cluster_client(cluster) as client:
        client.set(key, "lost with the crash")
    master = cluster.node_for_key(key)

    cluster.kill_node(master)
    with pytest.raises(ClusterSetError) as error:  # its slots have no running owner
        cluster.wait_ok(timeout=0.3)
    message = str(error.value)
    assert "not met within" in message
    assert message.count("redis.log") == 3

    cluster.restart_node(master, timeout=15)  # back on its port, with its id and its slots; empty

    assert master.running
    assert cluster.node_for_key(key) is master
    with cluster_client(cluster) as client:
        assert client.get(key) is None
        client.set(key, "written again")
    with node_client(master) as direct:
        assert direct.get(key) == "written again"


def test_close_stops_every_node_and_removes_the_directory() -> None:
    cluster = ClusterSet(replicas=1).start()
    directory = cluster.directory
    pids = [node.pid for node in cluster.nodes]
    assert len(pids) == 6 and all(pids)
    assert all((directory / name / "nodes.conf").is_file() for name in ("master-1", "replica-3-1"))

    cluster.close()
    cluster.close()  # idempotent

    assert not directory.exists()
    assert not any(psutil.pid_exists(pid) for pid in pids if pid is not None)
    with pytest.raises(ClusterSetError, match="closed"):
        cluster.start()
