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
"""

from __future__ import annotations

import contextvars
from typing import Any

from redis.asyncio.cluster import ClusterNode, ClusterPipeline, PipelineCommand, RedisCluster

# Set while this task runs a command or a pipeline of the client: an aclose() then is redis-py asking for a
# topology refresh, not its user closing the client.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("pool_cluster_in_call", default=False)


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
