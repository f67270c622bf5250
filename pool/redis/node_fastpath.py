"""The fast path on Redis Cluster: each script call sent straight to the node that serves its slot.

Every key of a queue (of a partition, for a partitioned queue) shares one hash tag, so a call's keys are all in one
slot and a partition's hot-path traffic (ENQUEUE, FETCH, COMPLETE) all goes to one node. Through redis-py's cluster
client each call pays its generic command path (slot lookup, a checkout from the node's connections, retry and
redirection handling, a response callback): more CPU than the call itself, and its calls are never pipelined.
``NodeFastPaths`` keeps one ``FastPath`` (pool/redis/fastpath.py: its own connections, calls written back to back,
replies read after) per node, its connections made with the cluster client's settings for that node, and looks the
node up in the client's slot map at every call, so calls follow the map as it changes.

Redis answers a call whose slot it does not serve, or serves only in part, with a redirection before running any
of it (it checks the keys a call declares first): MOVED (the slot has a new owner), ASK (the slot is migrating and
a declared key is already on the importing node), TRYAGAIN, CLUSTERDOWN. Each sends the calls back to the standard
path (None: the cluster client, which follows them): on MOVED the slot map is patched first, so the fall-back goes
straight to the new owner and the next call here too; on ASK the cluster client sends ASKING and the call to the
importing node, for that call only, which is what ASK means. As on a single Redis, the caller replays every call of
a fall-back (the scripts are all safe to run twice), and a connection error or NOSCRIPT falls back too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from .fastpath import FastPath, ScriptCall

_NOT_RUN = (AskError, TryAgainError, ClusterDownError)  # refused before running: the cluster client follows


class NodeConnections:
    """What ``FastPath`` needs of a connection pool (``make_connection``), for one cluster node: connections made
    as redis-py makes the node's own (its settings, no retry of their own: the fall-back is the retry)."""

    def __init__(self, node: Any) -> None:
        self._node = node

    def make_connection(self) -> Any:
        kwargs = dict(self._node.connection_kwargs)
        kwargs["retry"] = Retry(NoBackoff(), 0, supported_errors=(RedisConnectionError,))
        return self._node.connection_class(**kwargs)


class NodeFastPaths:
    """One ``FastPath`` per node of a cluster client, each call routed by its first key's slot."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._paths: dict[str, FastPath] = {}

    def node_of(self, keys: Sequence[Any]) -> Any:
        """The node serving the slot of ``keys`` (their first: a call's keys share one slot), by the client's slot
        map; None when the map has no node for it (the standard path learns the map again)."""
        if not keys:
            return None
        try:
            return self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(keys[0]))
        except Exception:  # SlotNotCoveredError, a map being rebuilt
            return None

    def _path(self, node: Any) -> FastPath:
        path = self._paths.get(node.name)
        if path is None:
            path = self._paths[node.name] = FastPath(NodeConnections(node))
        return path

    async def run_scripts(self, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any] | None:
        """The replies of ``calls`` (all for one node: see ``node_of``), or None when the caller must send them
        the standard way (busy or closed fast path, a lost connection, NOSCRIPT, a redirection)."""
        node = self.node_of(calls[0][0]) if calls else None
        if node is None:
            return None
        try:
            return await self._path(node).run_scripts(script, calls)
        except MovedError as exc:  # the slot has a new owner: patch the map, so calls go there from now on
            with contextlib.suppress(Exception):
                await self._cluster.nodes_manager.move_slot(exc)
            return None
        except _NOT_RUN:
            return None

    def nodes_in_use(self) -> list[str]:
        """The nodes (host:port) whose fast path holds a connection whose last call went through cleanly."""
        return [name for name, path in self._paths.items() if path.idle_connections]

    async def close(self) -> None:
        """Close every node's connections (busy ones when their call ends). As redis-py's cluster client, which
        closes its nodes' connections to learn the cluster again (after CLUSTERDOWN, say) and reconnects at its
        next call, a later call opens new ones."""
        paths, self._paths = list(self._paths.values()), {}
        for path in paths:
            await path.close()
