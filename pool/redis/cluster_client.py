"""redis-py's asyncio cluster client, made to survive a live resharding under concurrent use.

Two faults of redis-py's ``redis.asyncio.RedisCluster`` (8.1, and the versions before it) left a busy client
refused, or its caller crashed, while a slot moved between masters:

- **ASKING on another connection.** On an ``ASK`` reply the client sends ``ASKING`` to the target node as a
  command of its own (a connection taken from the node's pool and given back), then the redirected command on
  the connection it takes next. With more than one free connection to that node those are two connections:
  the command arrives without ASKING, the target (the slot is only IMPORTING there) answers ``MOVED`` back to
  the source, which answers ``ASK`` again, until the client gives up (``ClusterError: TTL exhausted``, 16 tries).
  So while a queue's slot migrated, every call whose keys had already moved was refused, however often retried.
  Here ASKING and the command go out in one write on one connection (``_AskTarget``), as Redis requires.
- **A "refresh" that closes every connection.** Every fifth ``MOVED`` (``reinitialize_steps``), on
  ``CLUSTERDOWN`` and when a pipeline meets a connection error, redis-py calls ``aclose()`` to make the next
  command reread the topology. That disconnects every connection of every node, including those other tasks are
  using at that moment: their commands fail with errors redis-py does not expect (``AttributeError: 'NoneType'
  object has no attribute 'writelines'`` from a connection closed between its connect and its write), which no
  retry covers, and a worker loop that meets one stops the worker. Here, called from inside a command or a
  pipeline, ``aclose()`` only marks the topology for a reread (the next command runs CLUSTER SLOTS); redis-py's
  reread then reconnects each node's connections lazily, each when its user gives it back. ``aclose()`` called
  from outside (closing the client) closes it as before.

It also sends the durability option's WAIT where it means something on a cluster (``run_with_wait``): on the
connection that carried the writes, to the node that took them (the master of their keys' slot); redis-py would
send a keyless WAIT to any node, whose answer says nothing of the writes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, ClusterPipeline, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, ClusterError, MovedError, NoScriptError, TryAgainError

# As redis-py's own RedisClusterRequestTTL: how many redirections or refusals a call follows before giving up.
_REDIRECTIONS = 16

# Set while this task runs a command or a pipeline of the client: an aclose() then is redis-py asking for a
# topology refresh, not its user closing the client.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("pool_cluster_in_call", default=False)


def refreshing() -> bool:
    """Whether an ``aclose()`` now is redis-py asking for a topology refresh (called from inside one of the
    client's commands or pipelines) rather than its user closing the client."""
    return _IN_CALL.get()


class _AskTarget:
    """The node an ``ASK`` reply names, as redis-py's ``_execute_command`` uses it for the redirected command: the
    ``ASKING`` it sends first is held back and goes in the same write as that command, on the same connection
    (``ClusterNode.execute_pipeline``). Everything else is the node's."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node
        self._asking = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if args == ("ASKING",) and not kwargs:
            self._asking = True
            return True
        if not self._asking:
            return await self._node.execute_command(*args, **kwargs)
        self._asking = False
        kwargs.pop("asking", None)  # (redis-py 8's flag for the one command it sends ASKING with itself)
        asking, command = PipelineCommand(0, "ASKING"), PipelineCommand(1, *args, **kwargs)
        await self._node.execute_pipeline([asking, command])
        if isinstance(command.result, BaseException):
            raise command.result
        return command.result


class _RefreshingPipeline(ClusterPipeline):
    """A cluster pipeline whose retry's ``aclose()`` is a topology refresh (see the module's docstring)."""

    async def execute(self, *args: Any, **kwargs: Any) -> list[Any]:
        token = _IN_CALL.set(True)
        try:
            return await super().execute(*args, **kwargs)
        finally:
            _IN_CALL.reset(token)


class ReshardingSafeCluster(RedisCluster):
    """``RedisCluster`` with ASKING sent on the redirected command's connection and refreshes that close
    nothing in use (see the module's docstring)."""

    async def _execute_command(self, target_node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        token = _IN_CALL.set(True)
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        finally:
            _IN_CALL.reset(token)

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        node = super().get_node(host, port, node_name)
        if node is None or not _IN_CALL.get():
            return node
        # inside _execute_command, redis-py asks for a node by name only to follow an ASK reply
        return _AskTarget(node)  # type: ignore[return-value]  # (quacks as the node)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction or shard_hint:
            return super().pipeline(transaction, shard_hint)
        return _RefreshingPipeline(self)  # type: ignore[abstract]  # (as redis-py builds its own)

    async def aclose(self) -> None:
        if _IN_CALL.get():
            # redis-py wants the topology read again: the next command runs CLUSTER SLOTS first, and the nodes'
            # connections are reconnected lazily (NodesManager.set_nodes marks them), none closed under its user
            self._initialize = True
            return
        await super().aclose()


async def run_with_wait(
    cluster: RedisCluster,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    wait: Sequence[Any],
) -> tuple[list[Any], int]:
    """Run ``calls`` ((keys, args) of ``script``), each followed on its node's connection by ``wait`` (WAIT N
    timeout); the replies in order, and the fewest replicas any node confirmed. Calls are grouped by the node of
    their first key's slot; each group and its WAIT go in one write on one connection of that node, following
    MOVED (the slot map updated, the calls grouped again) and ASK (ASKING before each call), loading the script
    where it is missing, waiting out TRYAGAIN. The queue's scripts are all safe to send again, which a group
    retried after a refusal may do. A reply that is an error (a script's) is raised."""
    replies: list[Any] = [None] * len(calls)
    confirmed: list[int] = []
    todo = list(range(len(calls)))
    for _ in range(_REDIRECTIONS):
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for index in todo:
            node = _node_of(cluster, calls[index][0][0])
            groups.setdefault(node.name, (node, []))[1].append(index)
        todo = []
        for node, indexes in groups.values():
            done = await _on_node(cluster, node, script, [calls[i] for i in indexes], wait)
            if done is None:  # MOVED: the slot map is updated, these calls go again where it now says
                todo += indexes
                continue
            for index, reply in zip(indexes, done[0], strict=True):
                replies[index] = reply
            confirmed.append(done[1])
        if not todo:
            return replies, min(confirmed)
    raise ClusterError("TTL exhausted.")


def _node_of(cluster: RedisCluster, key: Any) -> ClusterNode:
    node = cluster.get_node_from_key(key)
    if node is None:
        raise ClusterError(f"no node serves the slot of {key!r}")
    return node


async def _on_node(
    cluster: RedisCluster,
    node: ClusterNode,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    wait: Sequence[Any],
) -> tuple[list[Any], int] | None:
    """The replies of ``calls`` on ``node`` (or where it redirects them) and WAIT's count; None after MOVED."""
    asking = False
    for _ in range(_REDIRECTIONS):
        commands: list[PipelineCommand] = []
        for keys, args in calls:
            if asking:
                commands.append(PipelineCommand(len(commands), "ASKING"))
            commands.append(PipelineCommand(len(commands), "EVALSHA", script.sha, len(keys), *keys, *args))
        commands.append(PipelineCommand(len(commands), *wait))
        await node.execute_pipeline(commands)
        results = [command.result for command in commands if command.args[0] != "ASKING"]
        refused = next((result for result in results[:-1] if isinstance(result, BaseException)), None)
        if refused is None:
            if isinstance(results[-1], BaseException):
                raise results[-1]
            return results[:-1], int(results[-1])
        asking = False
        if isinstance(refused, NoScriptError):
            await cluster.script_load(script.script)  # (on every master)
        elif isinstance(refused, MovedError):
            await cluster.nodes_manager.move_slot(refused)
            return None
        elif isinstance(refused, AskError):
            target = cluster.nodes_manager.get_node(refused.host, refused.port)
            if target is None:
                raise refused
            node, asking = target, True
        elif isinstance(refused, TryAgainError):
            await asyncio.sleep(0.05)
        else:
            raise refused
    raise ClusterError("TTL exhausted.")
