"""Running a storage op (see ops.py) on a real client: ``run`` for redis.asyncio, ``run_sync`` for redis-py.

A batch of one request goes as one command; a larger batch as one non-transactional pipeline. Error replies
come back to the op as exception objects (a pipeline's ``raise_on_error=False``, and the same for a lone
command), so each op decides once, for both drivers, which errors it raises and which it handles. Connection
errors and timeouts are not replies: they propagate to the caller.
"""

from __future__ import annotations

from typing import Any, TypeVar

from redis.exceptions import MovedError, ResponseError

from ..redis.cluster_client import run_with_wait
from .ops import Command, Op, Request, ScriptCall
from .scripts import Scripts

T = TypeVar("T")

_SCRIPTS_ATTR = "_pool_scripts"


def scripts_for(redis: Any) -> Scripts:
    """Scripts are registered once per client (async or sync: both have ``register_script``) and cached on it."""
    scripts: Scripts | None = getattr(redis, _SCRIPTS_ATTR, None)
    if scripts is None:
        scripts = Scripts(redis)
        setattr(redis, _SCRIPTS_ATTR, scripts)
    return scripts


async def run(redis: Any, op: Op[T]) -> T:
    """Drive ``op`` on an async client; returns its result."""
    try:
        batch = next(op)
        while True:
            batch = op.send(await _execute(redis, batch))
    except StopIteration as stop:
        result: T = stop.value
        return result


def run_sync(client: Any, op: Op[T]) -> T:
    """Drive ``op`` on a sync client; returns its result."""
    try:
        batch = next(op)
        while True:
            batch = op.send(_execute_sync(client, batch))
    except StopIteration as stop:
        result: T = stop.value
        return result


def on_cluster(client: Any) -> bool:
    """Whether ``client`` is one of redis-py's Redis Cluster clients (async or sync)."""
    return hasattr(client, "get_node_from_key")


def _wait_after_scripts(batch: list[Request]) -> tuple[list[ScriptCall], Command] | None:
    """A durable batch (ops.enqueue with ``wait_replicas``): calls of one script, then WAIT; else None."""
    *calls, last = batch
    if not calls or not isinstance(last, Command) or last.method != "execute_command":
        return None
    if str(last.args[0]).upper() != "WAIT":
        return None
    scripts = [call for call in calls if isinstance(call, ScriptCall) and call.name == batch[0].name]  # type: ignore[union-attr]
    return (scripts, last) if len(scripts) == len(calls) else None


async def _execute(redis: Any, batch: list[Request]) -> list[Any]:
    if on_cluster(redis):
        durable = _wait_after_scripts(batch)
        if durable is not None:  # WAIT on the connection of the writes, at their node
            calls, wait = durable
            script = getattr(scripts_for(redis), calls[0].name)
            done, confirmed = await run_with_wait(redis, script, [(c.keys, c.args) for c in calls], wait.args)
            return [*done, confirmed]
        return [await _execute_one_on_cluster(redis, request) for request in batch]
    if len(batch) == 1:
        request = batch[0]
        try:
            if isinstance(request, ScriptCall):
                return [await getattr(scripts_for(redis), request.name)(keys=request.keys, args=request.args)]
            return [await getattr(redis, request.method)(*request.args, **dict(request.options))]
        except ResponseError as exc:
            return [exc]
    async with redis.pipeline(transaction=False) as pipe:
        _queue_batch(pipe, scripts_for(redis), batch)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


async def _execute_one_on_cluster(redis: Any, request: Request) -> Any:
    """One request on a cluster client, in turn (a batch's requests may name keys of different queues, so of
    different nodes; the cluster pipeline also cannot load scripts). SCAN goes to the node that serves the
    pattern's hash tag, the queue's node, rather than to every node."""
    try:
        if isinstance(request, ScriptCall):
            return await getattr(scripts_for(redis), request.name)(keys=request.keys, args=request.args)
        if request.method == "scan":
            node = redis.get_node_from_key(dict(request.options)["match"])
            return _node_scan_reply(await redis.scan(*request.args, **dict(request.options), target_nodes=node), node)
        return await getattr(redis, request.method)(*request.args, **dict(request.options))
    except ResponseError as exc:
        return exc


def _node_scan_reply(reply: Any, node: Any) -> tuple[int, list[Any]]:
    """redis-py's cluster SCAN answers ({node name: cursor}, keys): as a single node's (cursor, keys)."""
    cursors, keys = reply
    return int(cursors[node.name]), keys


def _execute_one_on_cluster_sync(client: Any, request: Request) -> Any:
    try:
        if isinstance(request, ScriptCall):
            return getattr(scripts_for(client), request.name)(keys=request.keys, args=request.args)
        if request.method == "scan":
            node = client.get_node_from_key(dict(request.options)["match"])
            return _node_scan_reply(client.scan(*request.args, **dict(request.options), target_nodes=node), node)
        return getattr(client, request.method)(*request.args, **dict(request.options))
    except ResponseError as exc:
        return exc


def _execute_sync(client: Any, batch: list[Request]) -> list[Any]:
    if on_cluster(client):
        if _wait_after_scripts(batch) is not None:
            return _with_wait_on_cluster_sync(client, batch)
        return [_execute_one_on_cluster_sync(client, request) for request in batch]
    if len(batch) == 1:
        request = batch[0]
        try:
            if isinstance(request, ScriptCall):
                return [getattr(scripts_for(client), request.name)(keys=request.keys, args=request.args)]
            return [getattr(client, request.method)(*request.args, **dict(request.options))]
        except ResponseError as exc:
            return [exc]
    with client.pipeline(transaction=False) as pipe:
        _queue_batch(pipe, scripts_for(client), batch)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies


def _with_wait_on_cluster_sync(client: Any, batch: list[Request]) -> list[Any]:
    """A durable batch on redis-py's sync cluster client: the scripts and WAIT in one pipeline of the node that
    serves the first key's slot (one connection). A redirection (the slot moved) rereads the slot map and is
    raised: the caller's turn fails and is tried again, as for any refused write."""
    first = batch[0]
    assert isinstance(first, ScriptCall)
    node = client.get_node_from_key(first.keys[0])
    with client.get_redis_connection(node).pipeline(transaction=False) as pipe:
        _queue_batch(pipe, scripts_for(client), batch)
        replies: list[Any] = pipe.execute(raise_on_error=False)
    if any(isinstance(reply, MovedError) for reply in replies):
        client.nodes_manager.initialize()
    return replies


def _queue_batch(pipe: Any, scripts: Scripts, batch: list[Request]) -> None:
    """Queue a batch on a pipeline (sync or async: queuing is synchronous on both). A script goes as EVALSHA;
    the pipeline loads it first if Redis lacks it."""
    for request in batch:
        if isinstance(request, Command):
            getattr(pipe, request.method)(*request.args, **dict(request.options))
        else:
            script = getattr(scripts, request.name)
            pipe.scripts.add(script)
            pipe.evalsha(script.sha, len(request.keys), *request.keys, *request.args)
