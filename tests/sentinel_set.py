"""A private Redis Sentinel set for tests: a master, its replica and three sentinels.

Every process is a :class:`tests.redis_server.RedisServer` (the binary :func:`find_redis_server` returns, a
free port of 127.0.0.1, a directory of its own holding its config and its log ``redis.log``); the sentinels
are the same binary run with ``--sentinel``. Nothing outlives the test run (PR_SET_PDEATHSIG) and every wait
is on a condition with a deadline; a wait that runs out raises :class:`SentinelSetError` with the tail of the
sentinels' logs.

Usage::

    with SentinelSet() as sentinels:
        settings = sentinels.settings()                 # pool.RedisSettings(sentinel=True, host=[...])
        master = sentinels.master_address()             # ("127.0.0.1", port), as the sentinels see it
        sentinels.wait_replicas_in_sync()               # before a failover: nothing lost to plain lag
        new_master = sentinels.failover()               # SENTINEL FAILOVER: master and replica swap
        new_master = sentinels.kill_master()            # SIGKILL the master: the sentinels promote the replica
        sentinels.restart_old()                         # the killed node comes back, as a replica

Timing. The sentinels' own timers are shortened with ``SENTINEL DEBUG`` (Redis 7.0+): PING every 200 ms,
INFO every 500 ms, hello messages every 500 ms (Redis's defaults: 1 s, 10 s, 2 s). The failover logic is
Redis's own, only its pace changes: a failover takes about a second, a kill two to three, and a demoted master
that is alive becomes a replica ~2 s later instead of ~10 s. The PING period matters for correctness too: with
``down-after-milliseconds`` 1000 and the default 1 s PING, a sentinel that has just switched to a new master
sends its first PING at the very moment it would call that master down, and now and then does (a spurious
second failover). Where ``SENTINEL DEBUG`` is missing, ``down-after-milliseconds`` is raised to 2000 instead.

Before each failover (:meth:`SentinelSet.failover`, :meth:`SentinelSet.kill_master`) the set waits until
every sentinel has seen the roles as they are: a sentinel that still thinks the previous master is one would
otherwise demote the replica being promoted, and the failover would be aborted.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from pool import RedisSettings
from tests.helpers import wait_for_sync
from tests.redis_server import HOST, RedisServer, RedisServerError, conf_value, find_redis_server

__all__ = ["Address", "SentinelSet", "SentinelSetError"]

Address = tuple[str, int]
T = TypeVar("T")

QUORUM = 2
SENTINELS = 3
PROBE_TIMEOUT = 1.0
POLL_INTERVAL = 0.05
# SENTINEL DEBUG timers in milliseconds (see the module docstring). publish-period also sets how long a sentinel
# waits before it demotes a master that came back (4 periods); a short tilt-period keeps a stall of the machine
# (over 2 s between two timer ticks puts a sentinel in TILT mode, where it fails nothing over) from costing 30 s.
SENTINEL_TIMERS = {"ping-period": "200", "info-period": "500", "publish-period": "500", "tilt-period": "5000"}
# Without SENTINEL DEBUG: the least down-after-milliseconds that is clear of the default 1 s PING period.
SAFE_DOWN_AFTER_MS = 2000


class SentinelSetError(RuntimeError):
    """The Sentinel set could not be started, or a failover did not happen in time."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: Any) -> dict[str, str]:
    """SENTINEL MASTER or one entry of SENTINEL REPLICAS as ``{field: text}``: redis-py parses some of these
    replies into dicts (typed values) and leaves others flat (``[key, value, key, value, ...]``)."""
    if isinstance(reply, dict):
        return {_text(key): _text(value) for key, value in reply.items()}
    items = [_text(item) for item in reply]
    return dict(zip(items[::2], items[1::2], strict=True))


class SentinelSet:
    """One master, one replica and three sentinels watching them as ``service``.

    :param service: the name the sentinels monitor the master under.
    :param password: ``requirepass`` and ``masterauth`` on both data nodes, ``sentinel auth-pass`` on the
        sentinels.
    :param sentinel_password: ``requirepass`` on the sentinels themselves (and ``sentinel sentinel-pass``, so
        they can talk to each other).
    :param data_config: extra ``redis.conf`` directives for both data nodes, e.g.
        ``{"min-replicas-to-write": "1"}``.
    :param down_after_ms: ``sentinel down-after-milliseconds``: how long a silent master takes to be seen down.
    :param failover_timeout_ms: ``sentinel failover-timeout``: how long a failover may take before the sentinels
        abort it; after an aborted attempt a sentinel waits twice this long before it tries that master again.
    :param fast_timers: shorten the sentinels' timers with ``SENTINEL DEBUG`` (module docstring).
    :param timeout: the default deadline of every wait, in seconds.
    """

    def __init__(
        self,
        *,
        service: str = "mymaster",
        password: str | None = None,
        sentinel_password: str | None = None,
        data_config: Mapping[str, str] | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        fast_timers: bool = True,
        timeout: float = 30.0,
    ) -> None:
        if not service or any(char.isspace() or char in "/?#" for char in service):
            raise ValueError(f"the service name must be one word without / ? #, not {service!r}")
        self._service = service
        self.password = password
        self.sentinel_password = sentinel_password
        self.data_config = dict(data_config or {})
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.fast_timers = fast_timers
        self.timeout = timeout
        self.binary = find_redis_server()
        self._dir: Path | None = None
        self._nodes: list[RedisServer] = []
        self._sentinels: list[RedisServer] = []
        self._killed: RedisServer | None = None
        self._clients: dict[int, redis.Redis] = {}
        self._closed = False

    # ---------------------------------------------------------------- properties

    @property
    def service(self) -> str:
        """The name the sentinels know the master by (``sentinel_master`` in pool's settings)."""
        return self._service

    @property
    def sentinel_addresses(self) -> list[Address]:
        """``[(host, port), ...]`` of the three sentinels."""
        self._require_started()
        return [(HOST, sentinel.port) for sentinel in self._sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://[:password@]host:port,host:port,host:port/<service>/0[?sentinel_password=...]``."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        query = f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        return f"redis+sentinel://{auth}{hosts}/{quote(self._service, safe='')}/0{query}"

    @property
    def directory(self) -> Path:
        """The set's temporary directory: one subdirectory (config and ``redis.log``) per server."""
        if self._dir is None:
            raise SentinelSetError("the Sentinel set has not been started yet")
        return self._dir

    @property
    def nodes(self) -> list[RedisServer]:
        """The two data nodes (either may be the master: see :meth:`master_node`)."""
        return list(self._nodes)

    @property
    def sentinels(self) -> list[RedisServer]:
        return list(self._sentinels)

    def settings(self, **kwargs: Any) -> RedisSettings:
        """pool's settings for this set (through the sentinels); ``kwargs`` set other fields."""
        return RedisSettings(
            host=self.sentinel_addresses,
            sentinel=True,
            sentinel_master=self._service,
            password=self.password,
            sentinel_password=self.sentinel_password,
            **kwargs,
        )

    def sentinel(self, **connection_kwargs: Any) -> redis.sentinel.Sentinel:
        """A redis-py ``Sentinel`` for this set (``.master_for(set.service)``); kwargs go to the data nodes.

        The caller closes its connections to the sentinels (``for s in sentinel.sentinels: s.close()``)."""
        connection_kwargs.setdefault("password", self.password)
        return redis.sentinel.Sentinel(
            self.sentinel_addresses,
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": PROBE_TIMEOUT},
            **connection_kwargs,
        )

    def master_address(self) -> Address:
        """The master's address as a sentinel answers SENTINEL GET-MASTER-ADDR-BY-NAME (the first that answers)."""
        self._require_started()
        errors = []
        for sentinel in self._sentinels:
            try:
                return self._sentinel_master_addr(sentinel)
            except (redis.RedisError, OSError, SentinelSetError) as exc:
                errors.append(f"{sentinel.port}: {exc}")
        raise SentinelSetError(f"no sentinel named the master of {self._service}: {'; '.join(errors)}")

    def master_node(self) -> RedisServer:
        """The data node the sentinels name as master."""
        return self._node_at(self.master_address())

    def replica_node(self) -> RedisServer:
        """The data node the sentinels do not name as master."""
        return self._other(self.master_node())

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> SentinelSet:
        """Start the nodes and the sentinels; return once a failover could happen right away. Returns self."""
        if self._closed:
            raise SentinelSetError("the Sentinel set was closed")
        if self._dir is not None:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="pool-sentinel-"))
        try:
            master = self._start_node("node-a", replica_of=None)
            replica = self._start_node("node-b", replica_of=master)
            self._wait(lambda: self._in_sync(master, replica), "the replica in sync with the master")
            for number in range(1, SENTINELS + 1):
                self._start_sentinel(number, master)
            self._wait(
                lambda: self._sentinels_ready(master, replica),
                "every sentinel seeing the master, the replica and the two other sentinels",
            )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the sentinels, then the nodes, and remove the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients.values():
            with contextlib.suppress(redis.RedisError, OSError):
                client.close()
        self._clients.clear()
        try:
            for server in [*self._sentinels, *self._nodes]:  # sentinels first: no failover while nodes stop
                with contextlib.suppress(RedisServerError, OSError):
                    server.close()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SentinelSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = [node.port for node in self._nodes] + [sentinel.port for sentinel in self._sentinels]
        return f"<SentinelSet {self._service} ports={ports} dir={self._dir}>"

    # ---------------------------------------------------------------- failures

    def wait_replicas_in_sync(self, timeout: float | None = None) -> None:
        """Wait until the master's replica is connected and has every write the master had when it was asked."""
        master = self.master_node()
        replica = self._other(master)
        self._wait(lambda: self._in_sync(master, replica), "the replica in sync with the master", timeout)

    def failover(self, timeout: float | None = None) -> Address:
        """SENTINEL FAILOVER: the replica becomes the master. Returns the new master's address.

        First waits until every sentinel agrees on the roles (so a previous failover, or a demotion, is over).
        Returns once every sentinel names the new master and it answers ROLE as a master. The old master is
        demoted by the sentinels ~2 s later (:meth:`wait_replicas_in_sync` waits for it). A sentinel that
        answers INPROG (a failover under way) or NOGOODSLAVE (no replica it trusts yet) is asked again until
        the deadline.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        master = self.master_node()
        self._wait(
            lambda: self._sentinels_ready(master, self._other(master)),
            "every sentinel agreeing on the master and trusting the replica before the failover",
            deadline - time.monotonic(),
        )
        old: list[RedisServer] = []

        def ask() -> bool:
            current = self.master_node()
            try:
                self._sentinel_client(self._sentinels[0]).execute_command("SENTINEL", "FAILOVER", self._service)
            except redis.ResponseError as exc:
                if str(exc).startswith(("INPROG", "NOGOODSLAVE")):
                    return False
                raise
            old.append(current)
            return True

        self._wait(ask, "a sentinel accepting SENTINEL FAILOVER", deadline - time.monotonic())
        return self._wait_promoted(self._other(old[0]), deadline)

    def kill_master(self, timeout: float | None = None) -> Address:
        """SIGKILL the master; wait until the sentinels have promoted the replica. Returns its address."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        master = self.master_node()
        replica = self._other(master)
        # A replica the sentinels do not trust yet would make them abort the failover and wait to try again.
        self._wait(
            lambda: self._sentinels_ready(master, replica),
            "every sentinel agreeing on the master and trusting the replica before the kill",
            deadline - time.monotonic(),
        )
        master.kill()
        self._killed = master
        return self._wait_promoted(replica, deadline)

    def restart_old(self, *, as_replica: bool = False, timeout: float | None = None) -> Address:
        """Start the node :meth:`kill_master` killed again, on its port; return its address.

        By default it comes back as it was, a master (empty: persistence is off), and the sentinels turn it into
        a replica of the new master, as after a real crash. With ``as_replica=True`` it starts as a replica of the
        current master. Either way this returns once it replicates from the current master and every sentinel
        trusts it, so the set can fail over again.
        """
        node = self._killed
        if node is None:
            raise SentinelSetError("no node was killed: call kill_master() first")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        master = self.master_node()
        if as_replica:
            node.config["replicaof"] = f"{HOST} {master.port}"
        else:
            node.config.pop("replicaof", None)
        node.start()
        self._killed = None
        self._wait(
            lambda: self._in_sync(master, node),
            "the restarted node replicating from the new master",
            deadline - time.monotonic(),
        )
        self._wait(
            lambda: self._sentinels_ready(master, node),
            "every sentinel trusting the restarted node as a replica",
            deadline - time.monotonic(),
        )
        return (HOST, node.port)

    # ---------------------------------------------------------------- starting

    def _start_node(self, name: str, replica_of: RedisServer | None) -> RedisServer:
        config = {"repl-diskless-sync-delay": "0"}  # Redis 7's default waits 5 s before a full sync
        if self.password is not None:
            config["masterauth"] = conf_value(self.password)  # for either node: each may become a replica
        config.update(self.data_config)
        if replica_of is not None:
            config["replicaof"] = f"{HOST} {replica_of.port}"
        node = RedisServer(password=self.password, config=config, directory=self.directory / name, binary=self.binary)
        self._nodes.append(node)
        return node.start()

    def _start_sentinel(self, number: int, master: RedisServer) -> RedisServer:
        service = self._service
        config = {
            "sentinel resolve-hostnames": "no",
            "sentinel monitor": f"{service} {HOST} {master.port} {QUORUM}",
            "sentinel down-after-milliseconds": f"{service} {self.down_after_ms}",
            "sentinel failover-timeout": f"{service} {self.failover_timeout_ms}",
            "sentinel parallel-syncs": f"{service} 1",
        }
        if self.password is not None:
            config["sentinel auth-pass"] = f"{service} {conf_value(self.password)}"
        if self.sentinel_password is not None:
            config["sentinel sentinel-pass"] = conf_value(self.sentinel_password)
        sentinel = RedisServer(
            password=self.sentinel_password,
            config=config,
            args=("--sentinel",),
            directory=self.directory / f"sentinel-{number}",
            binary=self.binary,
        )
        self._sentinels.append(sentinel)
        sentinel.start()
        fast = False
        if self.fast_timers:
            timers = [word for item in SENTINEL_TIMERS.items() for word in item]
            with contextlib.suppress(redis.ResponseError):  # no SENTINEL DEBUG before Redis 7.0
                self._sentinel_client(sentinel).execute_command("SENTINEL", "DEBUG", *timers)
                fast = True
        if not fast and self.down_after_ms < SAFE_DOWN_AFTER_MS:
            self._sentinel_client(sentinel).execute_command(
                "SENTINEL", "SET", self._service, "down-after-milliseconds", str(SAFE_DOWN_AFTER_MS)
            )
        return sentinel

    # ---------------------------------------------------------------- conditions

    def _in_sync(self, master: RedisServer, replica: RedisServer) -> bool:
        """The master lists the replica online, and the replica has all the master had written when asked."""
        master_info = self._info(master)
        if master_info.get("role") != "master" or int(master_info.get("connected_slaves", 0)) < 1:
            return False
        listed = [
            value
            for key, value in master_info.items()
            if key.startswith("slave") and isinstance(value, dict) and int(value.get("port", 0)) == replica.port
        ]
        if not listed or listed[0].get("state") != "online":
            return False
        replica_info = self._info(replica)
        return (
            replica_info.get("role") == "slave"
            and int(replica_info.get("master_port", 0)) == master.port
            and replica_info.get("master_link_status") == "up"
            and int(replica_info.get("slave_repl_offset", -1)) >= int(master_info["master_repl_offset"])
        )

    def _sentinels_ready(self, master: RedisServer, replica: RedisServer) -> bool:
        """Every sentinel names ``master``, sees the other two sentinels, and trusts ``replica`` as its replica.

        "Trusts": the sentinel's own last INFO of each node reported the role it has (no demotion pending), the
        replica's link to the master is up, and neither node is down in its eyes."""
        for sentinel in self._sentinels:
            client = self._sentinel_client(sentinel)
            state = _pairs(client.execute_command("SENTINEL", "MASTER", self._service))
            if (
                int(state["port"]) != master.port
                or state["flags"] != "master"
                or state.get("role-reported") != "master"
                or int(state["num-other-sentinels"]) != SENTINELS - 1
                or int(state["num-slaves"]) != 1
            ):
                return False
            replicas = [_pairs(item) for item in client.execute_command("SENTINEL", "REPLICAS", self._service)]
            if not any(
                int(item["port"]) == replica.port
                and item["flags"] == "slave"
                and item.get("role-reported") == "slave"
                and item.get("master-link-status") == "ok"
                and int(item.get("master-port", 0)) == master.port
                for item in replicas
            ):
                return False
        return True

    def _wait_promoted(self, node: RedisServer, deadline: float) -> Address:
        """Wait until every sentinel names ``node`` as the master and ``node`` answers ROLE as one."""
        address = (HOST, node.port)

        def promoted() -> bool:
            if any(self._sentinel_master_addr(sentinel) != address for sentinel in self._sentinels):
                return False
            role = self._probe(node).execute_command("ROLE")
            return _text(role[0]) == "master"

        self._wait(promoted, f"every sentinel naming {HOST}:{node.port} the master", deadline - time.monotonic())
        return address

    # ---------------------------------------------------------------- helpers

    def _wait(self, predicate: Callable[[], T], what: str, timeout: float | None = None) -> T:
        """``wait_for_sync`` with connection errors counted as "not yet" and the sentinels' logs on a timeout."""
        last_error: list[str] = []

        def attempt() -> T | None:
            try:
                return predicate()
            except (redis.ConnectionError, redis.TimeoutError, OSError, KeyError, ValueError) as exc:
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
            raise SentinelSetError(f"{exc}{detail}\n{self._sentinel_logs()}") from None

    def _sentinel_logs(self, lines: int = 15) -> str:
        parts = [
            f"--- sentinel {sentinel.port} ({sentinel.log_path}):\n{sentinel.log_tail(lines)}"
            for sentinel in self._sentinels
        ]
        return "\n".join(parts) or "(no sentinel started)"

    def _sentinel_master_addr(self, sentinel: RedisServer) -> Address:
        reply = self._sentinel_client(sentinel).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self._service)
        if not reply:
            raise SentinelSetError(f"sentinel {sentinel.port} does not know {self._service}")
        return (_text(reply[0]), int(reply[1]))

    def _node_at(self, address: Address) -> RedisServer:
        for node in self._nodes:
            if (HOST, node.port) == address:
                return node
        raise SentinelSetError(f"the sentinels name {address[0]}:{address[1]}, which is not a node of this set")

    def _other(self, node: RedisServer) -> RedisServer:
        return next(other for other in self._nodes if other is not node)

    def _info(self, node: RedisServer) -> dict[str, Any]:
        info: dict[str, Any] = self._probe(node).info("replication")
        return info

    def _probe(self, server: RedisServer) -> redis.Redis:
        return self._client(server, server.password)

    def _sentinel_client(self, sentinel: RedisServer) -> redis.Redis:
        return self._client(sentinel, self.sentinel_password)

    def _client(self, server: RedisServer, password: str | None) -> redis.Redis:
        # No retries: a dead server fails the probe at once and the caller's wait polls again (the broken
        # connection is dropped, the next command opens a new one). Kept per port, closed by close().
        client = self._clients.get(server.port)
        if client is None:
            client = redis.Redis(
                host=HOST,
                port=server.port,
                password=password,
                socket_timeout=PROBE_TIMEOUT,
                socket_connect_timeout=PROBE_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
            self._clients[server.port] = client
        return client

    def _require_started(self) -> None:
        if self._dir is None or not self._sentinels:
            raise SentinelSetError("the Sentinel set has not been started yet")
