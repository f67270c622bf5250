"""Send the Redis commands that concurrent jobs issue in one event-loop turn as one pipeline.

A worker runs up to ``max_jobs`` jobs at once, and most of them talk to Redis through ``ctx['redis']``. Sent
one by one, each command costs a connection checkout, a write and a read: 100-200 µs of CPU in redis-py, more
than the rest of a short job. Queued instead, the commands of one loop turn leave together at the end of the
turn in a single non-transactional pipeline, and each caller gets its own reply (or its own error) back: the
same results in the same order, at a fraction of the CPU (perf/ and docs/performance.md have the figures).
ioredis calls this auto-pipelining.

Blocking commands (BLPOP, XREAD ... BLOCK, WAIT, ...) and transaction commands bypass the queue: one of them
would hold up everything pipelined behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisClusterException

MAX_PIPELINE = 1000  # commands per pipeline; a larger turn is split

_BLOCKING = frozenset(
    {
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH",
        "UNWATCH",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
        "CLIENT",
        "SELECT",
        "AUTH",
        "HELLO",
        "RESET",
        "QUIT",
    }
)


def must_bypass(args: tuple[Any, ...]) -> bool:
    """True for commands that block or change the connection's state: they never join a pipeline.

    Arguments are matched as str or bytes alike (redis-py's xread() sends ``b"BLOCK"``), and a name redis-py
    sends as one argument with its subcommand ("CLIENT SETNAME") by its first word. Bypassing a command that
    did not need it only costs it a connection of its own; pipelining one that blocks stalls every command
    queued with it."""
    name = _upper(args[0]) or ""
    if name in _BLOCKING:
        return True
    if name in ("XREAD", "XREADGROUP"):
        return any(_upper(arg) == "BLOCK" for arg in args[1:])
    if " " in name:
        return name.split(None, 1)[0] in _BLOCKING
    return False


def _upper(arg: Any) -> str | None:
    """A command word in upper case; None for an argument that is not text (a number)."""
    if isinstance(arg, str):
        return arg.upper()
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg).decode("utf-8", "replace").upper()
    return None


class AutoPipeline:
    """Collects commands during a loop turn and sends them as pipelines of ``client``'s connection pool."""

    def __init__(self, client: Any, alone: Callable[..., Awaitable[Any]] | None = None) -> None:
        self._client = client  # a redis.asyncio.Redis (or RedisCluster); its pipeline() does the sending
        # a cluster client's own path for one command (not this queue's): see _send
        self._alone = alone
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Future[None]] = set()  # strong references: the loop keeps only weak ones

    def submit(self, args: tuple[Any, ...], options: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, options, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        self._flush_scheduled = False
        task = asyncio.ensure_future(self._send_in_order(queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_in_order(self, queued: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        """Larger turns go out as consecutive pipelines, one after the other, so commands keep their order."""
        try:
            for start in range(0, len(queued), MAX_PIPELINE):
                await self._send(queued[start : start + MAX_PIPELINE])
        finally:  # cancelled (the loop is closing): nobody may wait forever for a reply that will not come
            for _, _, future in queued:
                if not future.done():
                    future.cancel()

    async def _send(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        """On the client's fast path when it has one (pool/redis/fastpath.py); the commands it got no reply for (all of
        them when it is busy) go through redis-py's pipeline, with its retries."""
        fast_path = getattr(self._client, "fast_path", None)
        replies = [] if fast_path is None else await fast_path.run_pipeline(self._client, [(a, o) for a, o, _ in batch])
        if len(replies) < len(batch):
            pipe = self._client.pipeline(transaction=False)
            for args, options, _ in batch[len(replies) :]:
                pipe.execute_command(*args, **options)
            try:
                replies += await pipe.execute(raise_on_error=False)
            except RedisClusterException:
                if self._alone is None:
                    raise
                # a cluster pipeline found no node for a command, before sending any: each goes on its own, so
                # only that command gets its error
                rest = batch[len(replies) :]
                replies += [await _reply_alone(self._alone, args, options) for args, options, _ in rest]
            except BaseException as exc:  # the connection failed: every command sent with it failed too
                replies += [exc] * (len(batch) - len(replies))
                if not isinstance(exc, Exception):
                    _settle(batch, replies)
                    raise
        _settle(batch, replies)


async def _reply_alone(alone: Callable[..., Awaitable[Any]], args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """One command sent on its own: its reply, or its own error."""
    try:
        return await alone(*args, **options)
    except Exception as exc:
        return exc


def _settle(batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]], replies: list[Any]) -> None:
    """Each caller gets its own reply, or its own error."""
    for (_, _, future), reply in zip(batch, replies, strict=True):
        if future.done():  # its caller was cancelled meanwhile
            continue
        if isinstance(reply, BaseException):
            future.set_exception(reply)
        else:
            future.set_result(reply)
