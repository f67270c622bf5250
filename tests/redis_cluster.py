"""A private Redis Cluster for tests: masters (three by default), optionally replicas, on free ports.

Every node is a :class:`tests.redis_server.RedisServer` (the binary :func:`find_redis_server` returns, a free
port of 127.0.0.1, a directory of its own holding its config, its ``nodes.conf`` and its log ``redis.log``).
Nothing outlives the test run (PR_SET_PDEATHSIG) and every wait is on a condition with a deadline; a wait that
runs out raises :class:`ClusterSetError` with the tails of the nodes' logs.

The cluster is built with commands, as ``redis-cli --cluster create`` would build it, without depending on
redis-cli: each master takes an even share of the 16384 slots (CLUSTER ADDSLOTSRANGE) and a config epoch of
its own (CLUSTER SET-CONFIG-EPOCH, so no epoch collision has to be resolved), every node meets every other
(CLUSTER MEET, naming the bus port: each node's bus port is a free port of its own, not port + 10000, which
may be past 65535), the replicas follow their masters (CLUSTER REPLICATE), and :meth:`ClusterSet.wait_ok`
waits until every node says ``cluster_state:ok``, knows every node, and draws the same slot map.

Usage::

    with ClusterSet(masters=3, replicas=0, password=None) as cluster:
        client = cluster.client()                       # redis-py's sync RedisCluster (the caller closes it)
        cluster.url                                     # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,.../0
        node = cluster.node_for_key("{user:1}:jobs")    # the RedisServer serving that key's slot now
        cluster.migrate_slot(slot, other_node)          # a live resharding of one slot, as redis-cli does it
        cluster.begin_migration(slot, other_node)       # ... or step by step: the slot stays half-migrated
        cluster.migrate_batch(slot, batch=10)           #     (MIGRATING on the source, IMPORTING on the
        cluster.finish_migration(slot)                  #     target) between these calls
        cluster.wait_replicas_in_sync()                 # before a kill: nothing lost to replication lag
        cluster.kill_node(node); cluster.restart_node(node); cluster.wait_ok()

Timing (measured on a 2-core machine): a cluster starts in ~2.1 s, almost all of it Redis's own wait (a
master that has just started calls the cluster ok only 2 s after its start); migrate_slot moves a slot of
1000 keys in ~0.05 s; with ``cluster-node-timeout`` 2000 ms (the default here) a killed master's replica
takes over ~3.2 s after the kill, and the killed node restarted rejoins as its replica in ~1 s.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from pool import RedisSettings
from tests.helpers import wait_for_sync
from tests.redis_server import HOST, RedisServer, RedisServerError, conf_value, find_redis_server, free_port

__all__ = ["SLOTS", "Address", "ClusterSet", "ClusterSetError", "NodeView"]

Address = tuple[str, int]
T = TypeVar("T")

SLOTS = 16384
PROBE_TIMEOUT = 1.0
POLL_INTERVAL = 0.05
# MIGRATE's own timeout (ms) and the socket timeout of the connection that sends it: a batch of keys may take
# longer than a probe.
MIGRATE_TIMEOUT_MS = 5000
WORK_TIMEOUT = MIGRATE_TIMEOUT_MS / 1000 + 5
# Flags of a node the cluster does not (yet, or any more) count as a healthy member.
BAD_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})
START_ATTEMPTS = 5


class ClusterSetError(RuntimeError):
    """The cluster could not be started, a resharding failed, or a wait ran out."""


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES: how the asked node sees the node ``node_id``."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    link_connected: bool
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


def parse_cluster_nodes(text: str) -> dict[str, NodeView]:
    """CLUSTER NODES as ``{node id: NodeView}``; the ``[slot->-id]`` / ``[slot-<-id]`` migration marks are left
    out (they show only on the node that has them)."""
    views: dict[str, NodeView] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        node_id, address, flags, master, _ping, _pong, _epoch, link, *slot_fields = fields
        port = int(address.split("@", 1)[0].rsplit(":", 1)[1] or 0)
        slots = []
        for item in slot_fields:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        views[node_id] = NodeView(
            node_id=node_id,
            port=port,
            flags=frozenset(flags.split(",")),
            master_id=None if master == "-" else master,
            link_connected=link == "connected",
            slots=tuple(sorted(slots)),
        )
    return views


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The 16384 slots cut into ``masters`` contiguous ranges whose sizes differ by one at most."""
    bounds = [number * SLOTS // masters for number in range(masters + 1)]
    return [(bounds[number], bounds[number + 1] - 1) for number in range(masters)]


class ClusterSet:
    """A Redis Cluster of ``masters`` masters, each with ``replicas`` replicas.

    :param masters: how many masters share the slots (3 at least: a cluster needs a majority of masters to
        fail a node over).
    :param replicas: replicas per master.
    :param password: ``requirepass`` and ``masterauth`` on every node; MIGRATE then sends ``AUTH``.
    :param node_timeout_ms: ``cluster-node-timeout``: how long a silent node takes to be seen failing.
    :param node_config: extra ``redis.conf`` directives for every node.
    :param timeout: the default deadline of every wait, in seconds.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas: int = 0,
        password: str | None = None,
        node_timeout_ms: int = 2000,
        node_config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if masters < 1 or replicas < 0:
            raise ValueError(f"a cluster needs at least one master and no negative replicas, not {masters}/{replicas}")
        self.master_count = masters
        self.replicas_per_master = replicas
        self.password = password
        self.node_timeout_ms = node_timeout_ms
        self.node_config = dict(node_config or {})
        self.timeout = timeout
        self.binary = find_redis_server()
        self._dir: Path | None = None
        self._nodes: list[RedisServer] = []
        self._ids: dict[int, str] = {}  # port → node id (kept in nodes.conf: the same after a restart)
        self._migrations: dict[int, tuple[RedisServer, RedisServer]] = {}  # slot → (source, target)
        self._clients: dict[tuple[int, float, bool], redis.Redis] = {}
        self._closed = False

    # ---------------------------------------------------------------- properties

    @property
    def nodes(self) -> list[RedisServer]:
        """Every node, masters first (in slot order), then the replicas, as started (roles change on failover:
        see :meth:`masters`)."""
        return list(self._nodes)

    @property
    def startup_nodes(self) -> list[Address]:
        """``[(host, port), ...]`` of every node."""
        self._require_started()
        return [(HOST, node.port) for node in self._nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://[:password@]127.0.0.1:p1,127.0.0.1:p2,.../0`` (every node, masters first)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"{host}:{port}" for host, port in self.startup_nodes)
        return f"redis+cluster://{auth}{hosts}/0"

    @property
    def directory(self) -> Path:
        """The cluster's temporary directory: one subdirectory (config, nodes.conf, ``redis.log``) per node."""
        if self._dir is None:
            raise ClusterSetError("the cluster has not been started yet")
        return self._dir

    def settings(self, **kwargs: Any) -> RedisSettings:
        """pool's settings for this cluster (``cluster=True``, every node a startup node); ``kwargs`` set other
        fields."""
        kwargs.setdefault("cluster", True)
        kwargs.setdefault("password", self.password)
        return RedisSettings(host=self.startup_nodes, **kwargs)

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """redis-py's sync ``RedisCluster`` for this cluster (the caller closes it); kwargs go to it."""
        kwargs.setdefault("password", self.password)
        startup = [redis.cluster.ClusterNode(host, port) for host, port in self.startup_nodes]
        return redis.cluster.RedisCluster(startup_nodes=startup, **kwargs)

    def node_id(self, node: RedisServer) -> str:
        """The cluster's id of ``node`` (CLUSTER MYID)."""
        try:
            return self._ids[node.port]
        except KeyError:
            raise ClusterSetError(f"{node!r} is not a node of this cluster") from None

    def masters(self) -> list[RedisServer]:
        """The nodes that are masters serving slots now, as a running node sees it, in slot order."""
        views = self._view()
        owners = sorted((view.slots[0][0], view.node_id) for view in views.values() if view.is_master and view.slots)
        return [self._node_by_id(node_id) for _, node_id in owners]

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        """The nodes that replicate ``master`` now, as a running node sees it."""
        master_id = self.node_id(master)
        return [
            self._node_by_id(view.node_id)
            for view in self._view().values()
            if not view.is_master and view.master_id == master_id
        ]

    def keyslot(self, key: str | bytes) -> int:
        """The hash slot of ``key`` (CLUSTER KEYSLOT, asked of a running node)."""
        return int(self._client(self._any_running()).execute_command("CLUSTER", "KEYSLOT", key))

    def node_for_slot(self, slot: int) -> RedisServer:
        """The master that owns ``slot`` now (during a migration: still the source)."""
        if not 0 <= slot < SLOTS:
            raise ValueError(f"a slot is a number from 0 to {SLOTS - 1}, not {slot}")
        for view in self._view().values():
            if view.is_master and any(first <= slot <= last for first, last in view.slots):
                return self._node_by_id(view.node_id)
        raise ClusterSetError(f"no master owns slot {slot}")

    def node_for_key(self, key: str | bytes) -> RedisServer:
        """The master that serves ``key``'s slot now."""
        return self.node_for_slot(self.keyslot(key))

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> ClusterSet:
        """Start the nodes, build the cluster, and return once every node agrees it is whole. Returns self."""
        if self._closed:
            raise ClusterSetError("the cluster was closed")
        if self._dir is not None:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="pool-cluster-"))
        try:
            masters = [self._start_node(f"master-{number}") for number in range(1, self.master_count + 1)]
            replicas = [
                (master, self._start_node(f"replica-{number}-{copy}"))
                for number, master in enumerate(masters, start=1)
                for copy in range(1, self.replicas_per_master + 1)
            ]
            for node in self._nodes:
                self._ids[node.port] = str(self._client(node).execute_command("CLUSTER", "MYID"))
            for epoch, (master, (first, last)) in enumerate(
                zip(masters, slot_ranges(len(masters)), strict=True), start=1
            ):
                self._client(master).execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                self._client(master).execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            # Every pair meets: waiting for gossip to introduce the nodes to each other takes seconds.
            for number, node in enumerate(self._nodes):
                for other in self._nodes[number + 1 :]:
                    self._client(node).execute_command("CLUSTER", "MEET", HOST, other.port, self._bus_port(other))
            self._wait(self._all_known, "every node knowing every other node")
            for master, replica in replicas:
                self._client(replica).execute_command("CLUSTER", "REPLICATE", self.node_id(master))
            self.wait_ok()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every node and remove the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._drop_clients()
        try:
            for node in self._nodes:
                with contextlib.suppress(RedisServerError, OSError):
                    # SIGKILL: nothing is kept, and a master's SHUTDOWN would wait for its replicas first.
                    node.kill()
                    node.close()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ClusterSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = [node.port for node in self._nodes]
        shape = f"masters={self.master_count} replicas={self.replicas_per_master}"
        return f"<ClusterSet {shape} ports={ports} dir={self._dir}>"

    # ---------------------------------------------------------------- waiting

    def wait_ok(self, timeout: float | None = None) -> None:
        """Wait until the running nodes make a whole cluster.

        Every running node says ``cluster_state:ok``, knows every node, sees no running node failing or in
        handshake, and draws the same slot map, which covers the 16384 slots with running masters only; the
        running nodes agree on who is a master and whom each replica follows; every running replica follows a
        running master and its replication link is up. A killed node counts only by
        being known: a killed master's slots must have passed to its replica.
        """
        self._require_started()
        self._wait(self._whole, "a whole cluster: state ok, every node known, one slot map", timeout)

    def wait_replicas_in_sync(self, timeout: float | None = None) -> None:
        """Wait until every running replica has every write its master had when asked (replication is
        asynchronous: a master killed right after a write may otherwise take it along)."""
        self._require_started()
        self._wait(self._replicas_in_sync, "every replica in sync with its master", timeout)

    # ---------------------------------------------------------------- resharding

    def migrate_slot(
        self,
        slot: int,
        to_node: RedisServer,
        *,
        batch: int = 10,
        pause_between_batches: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Move ``slot`` and its keys to the master ``to_node``, live, as ``redis-cli --cluster reshard`` does.

        :meth:`begin_migration`, then :meth:`migrate_batch` until the slot is empty (calling
        ``pause_between_batches()`` after every batch that moved keys), then :meth:`finish_migration`.
        Returns how many keys moved.
        """
        self.begin_migration(slot, to_node)
        moved = 0
        while True:
            count = self.migrate_batch(slot, batch=batch)
            if count == 0:
                break
            moved += count
            if pause_between_batches is not None:
                pause_between_batches()
        self.finish_migration(slot, timeout=timeout)
        return moved

    def begin_migration(self, slot: int, to_node: RedisServer) -> RedisServer:
        """Mark ``slot`` IMPORTING on ``to_node``, then MIGRATING on its owner; return the owner (the source).

        From here the source answers ASK for a key of the slot it no longer holds, and the target serves such a
        key only after ASKING; the slot stays so until :meth:`finish_migration`."""
        if slot in self._migrations:
            raise ClusterSetError(f"slot {slot} is already being migrated")
        source = self.node_for_slot(slot)
        if source is to_node:
            raise ClusterSetError(f"slot {slot} is already served by {HOST}:{to_node.port}")
        self._client(to_node).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        self._client(source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(to_node))
        self._migrations[slot] = (source, to_node)
        return source

    def migrate_batch(self, slot: int, *, batch: int = 10) -> int:
        """MIGRATE up to ``batch`` keys of ``slot`` from the source to the target; return how many moved (0: the
        source holds no key of the slot any more).

        ``REPLACE``: a key the target holds too was written there during the migration, and the source's copy
        is the one clients were served (the source answers for every key it still has)."""
        source, target = self._migration(slot)
        if batch < 1:
            raise ValueError(f"batch must be 1 or more, not {batch}")
        work = self._client(source, WORK_TIMEOUT, decode=False)
        keys: list[bytes] = work.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
        if not keys:
            return 0
        auth: tuple[str, ...] = ("AUTH", self.password) if self.password is not None else ()
        work.execute_command("MIGRATE", HOST, target.port, "", 0, MIGRATE_TIMEOUT_MS, "REPLACE", *auth, "KEYS", *keys)
        return len(keys)

    def finish_migration(self, slot: int, timeout: float | None = None) -> None:
        """Move the keys left, then CLUSTER SETSLOT ``slot`` NODE target on the target, the source and every
        other master; wait until every running node names the target the slot's owner."""
        source, target = self._migration(slot)
        while self.migrate_batch(slot, batch=100):
            pass
        target_id = self.node_id(target)
        others = [node for node in self.masters() if node not in (source, target) and node.running]
        for node in [target, source, *others]:
            self._client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        del self._migrations[slot]
        self._wait(
            lambda: self._slot_settled(slot, target_id),
            f"every node naming {HOST}:{target.port} the owner of slot {slot}",
            timeout,
        )

    # ---------------------------------------------------------------- failures

    def kill_node(self, node: RedisServer) -> None:
        """SIGKILL ``node``, as a crash would (its data is lost: persistence is off; nodes.conf stays)."""
        self.node_id(node)
        self._drop_clients(node)
        node.kill()

    def restart_node(self, node: RedisServer, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start ``node`` again on its port and directory (it rejoins with the id in its nodes.conf); with
        ``wait``, return once :meth:`wait_ok` holds."""
        self.node_id(node)
        self._drop_clients(node)
        node.start()
        if wait:
            self.wait_ok(timeout)

    # ---------------------------------------------------------------- conditions

    def _running(self) -> list[RedisServer]:
        return [node for node in self._nodes if node.running]

    def _all_known(self) -> bool:
        """Every node lists every node, none in handshake or without an address."""
        ids = set(self._ids.values())
        for node in self._nodes:
            views = self._views_of(node)
            if set(views) != ids or any(view.flags & BAD_FLAGS for view in views.values()):
                return False
        return True

    def _whole(self) -> bool:
        running = self._running()
        running_ids = {self.node_id(node) for node in running}
        all_ids = set(self._ids.values())
        maps = []
        roles = []
        for node in running:
            client = self._client(node)
            if "cluster_state:ok" not in str(client.execute_command("CLUSTER", "INFO")):
                return False
            views = self._views_of(node)
            if set(views) != all_ids:
                return False
            for view in views.values():
                if view.node_id in running_ids and (view.flags & BAD_FLAGS or not view.link_connected):
                    return False
            owned = sorted(
                (first, last, view.node_id) for view in views.values() if view.is_master for first, last in view.slots
            )
            if not _covers_all(owned) or any(owner not in running_ids for _, _, owner in owned):
                return False
            maps.append(owned)
            roles.append(
                {
                    view.node_id: (view.is_master, view.master_id)
                    for view in views.values()
                    if view.node_id in running_ids
                }
            )
            me = views[self.node_id(node)]
            if not me.is_master:
                if me.master_id not in running_ids:
                    return False
                if client.info("replication").get("master_link_status") != "up":
                    return False
        return all(owned == maps[0] for owned in maps) and all(role == roles[0] for role in roles)

    def _replicas_in_sync(self) -> bool:
        views = self._view()
        for node in self._running():
            me = views[self.node_id(node)]
            if me.is_master:
                continue
            if me.master_id is None:
                return False
            master = self._node_by_id(me.master_id)
            master_offset = int(self._client(master).info("replication")["master_repl_offset"])
            info = self._client(node).info("replication")
            if info.get("master_link_status") != "up" or int(info.get("slave_repl_offset", -1)) < master_offset:
                return False
        return True

    def _slot_settled(self, slot: int, owner_id: str) -> bool:
        for node in self._running():
            views = self._views_of(node)
            owners = [view.node_id for view in views.values() if view.is_master and _has_slot(view, slot)]
            if owners != [owner_id]:
                return False
        return True

    # ---------------------------------------------------------------- helpers

    def _start_node(self, name: str) -> RedisServer:
        assert self._dir is not None
        directory = self._dir / name
        config = {
            "cluster-enabled": "yes",
            "cluster-config-file": conf_value(str(directory / "nodes.conf")),
            "cluster-node-timeout": str(self.node_timeout_ms),
            "cluster-require-full-coverage": "yes",
            # Replicas stay with the master they were given: a test knows which node replicates which.
            "cluster-allow-replica-migration": "no",
            "appendonly": "no",
            "repl-diskless-sync-delay": "0",  # Redis 7's default waits 5 s before a full sync
        }
        if self.password is not None:
            config["masterauth"] = conf_value(self.password)
        config.update(self.node_config)
        node = RedisServer(password=self.password, config=config, directory=directory, binary=self.binary)
        self._nodes.append(node)
        # The bus port is a free port of its own; if it is taken by the time redis binds it, pick both again.
        for attempt in range(START_ATTEMPTS):
            node.config["cluster-port"] = str(free_port())
            try:
                return node.start()
            except RedisServerError as exc:
                if "Address already in use" not in str(exc) or attempt == START_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _bus_port(self, node: RedisServer) -> int:
        return int(node.config["cluster-port"])

    def _migration(self, slot: int) -> tuple[RedisServer, RedisServer]:
        try:
            return self._migrations[slot]
        except KeyError:
            raise ClusterSetError(f"slot {slot} is not being migrated: call begin_migration() first") from None

    def _view(self) -> dict[str, NodeView]:
        return self._views_of(self._any_running())

    def _views_of(self, node: RedisServer) -> dict[str, NodeView]:
        return parse_cluster_nodes(str(self._client(node).execute_command("CLUSTER", "NODES")))

    def _any_running(self) -> RedisServer:
        self._require_started()
        for node in self._nodes:
            if node.running:
                return node
        raise ClusterSetError("no node of the cluster is running")

    def _node_by_id(self, node_id: str) -> RedisServer:
        for node in self._nodes:
            if self._ids.get(node.port) == node_id:
                return node
        raise ClusterSetError(f"the cluster names node {node_id}, which is not one of this set")

    def _wait(self, predicate: Callable[[], T], what: str, timeout: float | None = None) -> T:
        """``wait_for_sync`` with connection errors counted as "not yet" and the nodes' logs on a timeout."""
        last_error: list[str] = []

        def attempt() -> T | None:
            try:
                return predicate()
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError, KeyError) as exc:
                last_error[:] = [f"{type(exc).__name__}: {exc}"]
                return None

        try:
            return wait_for_sync(  # type: ignore[return-value]
                attempt,
                timeout=max(self.timeout if timeout is None else timeout, 0.0),
                interval=POLL_INTERVAL,
                message=what,
            )
        except AssertionError as exc:
            detail = f" (last error: {last_error[0]})" if last_error else ""
            raise ClusterSetError(f"{exc}{detail}\n{self._logs()}") from None

    def _logs(self, lines: int = 15) -> str:
        parts = [f"--- node {node.port} ({node.log_path}):\n{node.log_tail(lines)}" for node in self._nodes]
        return "\n".join(parts) or "(no node started)"

    def _client(self, node: RedisServer, timeout: float = PROBE_TIMEOUT, *, decode: bool = True) -> redis.Redis:
        # No retries: a dead node fails the probe at once and the caller's wait polls again (the broken
        # connection is dropped, the next command opens a new one). Kept per port, closed by close().
        key = (node.port, timeout, decode)
        client = self._clients.get(key)
        if client is None:
            client = redis.Redis(
                host=HOST,
                port=node.port,
                password=self.password,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=decode,
            )
            self._clients[key] = client
        return client

    def _drop_clients(self, node: RedisServer | None = None) -> None:
        for key in [key for key in self._clients if node is None or key[0] == node.port]:
            with contextlib.suppress(redis.RedisError, OSError):
                self._clients.pop(key).close()

    def _require_started(self) -> None:
        if self._dir is None or not self._nodes:
            raise ClusterSetError("the cluster has not been started yet")


def _has_slot(view: NodeView, slot: int) -> bool:
    return any(first <= slot <= last for first, last in view.slots)


def _covers_all(owned: list[tuple[int, int, str]]) -> bool:
    """The sorted ranges run from slot 0 to slot 16383 without a gap or an overlap."""
    expected = 0
    for first, last, _owner in owned:
        if first != expected:
            return False
        expected = last + 1
    return expected == SLOTS
