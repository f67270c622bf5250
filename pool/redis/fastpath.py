"""A short path to Redis for the hot calls: the queue's scripts (ENQUEUE, one job or the batches of a bulk
enqueue; the worker's FETCH, START and COMPLETE) and the auto-pipelines of jobs' own commands.

redis-py's generic command path costs more than the call itself: a checkout from the blocking connection pool
(a lock, a condition, a health-check read), a retry wrapper, callback dispatch, the release; a pipeline adds a
command stack and its bookkeeping. On this project's 2-core machine, 3,000 sequential EVALSHA of a trivial
script in one process (redis-py 5.3.1) cost ~200 µs of CPU each through the blocking pool, ~165 through a
plain pool and ~70 on a connection the caller holds. A ``FastPath`` holds a few connections made with the client
pool's own settings (TLS, auth, database...) and sends straight on one of them: the commands of one call are
written back to back and their replies read after, in order.

Anything unusual goes back to the standard path (``None``), which loads scripts and retries as configured:
every fast-path connection busy, a NOSCRIPT reply (the script did not run), a connection error. Scripts are all
safe to run twice (ENQUEUE recognises a replay of its own call by its nonce, the others by their acks), so
the caller replays every call; for a pipeline the caller resends only the commands whose replies it did not
get, through redis-py's pipeline, as redis-py's own retry of a pipeline would (once even when the client's
retries are off: a command that ran but whose reply was lost may run twice). A connection that saw an error or
a cancellation is closed, never reused: it may still hold unread replies.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

hiredis_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:  # hiredis (a dependency) packs commands in C; redis-py's asyncio connections pack them in Python
    from hiredis import pack_command as hiredis_pack_command
except ImportError:  # pragma: no cover - a hiredis older than 2.1
    hiredis_pack_command = None

MAX_FAST_PATH_CONNECTIONS = 4  # more concurrent callers than this take the standard path

ScriptCall = tuple[Sequence[Any], Sequence[Any]]  # (keys, args)
Command = tuple[tuple[Any, ...], dict[str, Any]]  # (args, options) as execute_command takes them

_LOST = (ConnectionError, TimeoutError, OSError)


class FastPath:
    def __init__(self, connection_pool: Any) -> None:
        self._pool = connection_pool
        self._idle: list[Any] = []
        self._in_use: set[Any] = set()
        self._busy = 0
        self._closed = False
        self._callbacks: dict[Any, Any] = {}  # command name -> the client's response callback (None: none)

    async def run_scripts(
        self, script: AsyncScript, calls: Iterable[ScriptCall], wait: Sequence[Any] = ()
    ) -> list[Any] | None:
        """Each call's reply, in order; None when the caller must take the standard path instead. ``wait``
        (WAIT's arguments, see pool/redis/replication.py) is sent after the calls on the same connection, and
        its reply comes last."""
        connection = self._checkout()
        if connection is None:
            return None
        clean = False
        try:
            sent = 0
            for keys, args in calls:
                packed = _pack(connection, ("EVALSHA", script.sha, len(keys), *keys, *args))
                await connection.send_packed_command(packed, check_health=False)
                sent += 1
            if wait:
                await connection.send_packed_command(_pack(connection, tuple(wait)), check_health=False)
                sent += 1
            replies = [await connection.read_response() for _ in range(sent)]
            clean = True
            return replies
        except (NoScriptError, *_LOST):
            return None
        finally:
            await self._checkin(connection, clean)

    async def run_pipeline(self, client: Any, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` as one pipeline; the replies read, in order, each one a value or that command's
        own error (an error reply, arguments redis-py refuses to send, a callback that failed: nothing else is
        affected). Fewer than all when the fast path was busy (none) or the connection was lost: the caller sends
        the rest the standard way. ``client`` parses each reply as its own command would be (its callbacks)."""
        replies: list[Any] = []
        connection = self._checkout()
        if connection is None:
            return replies
        clean = False
        try:
            packed: list[bytes] = []
            refused: dict[int, Exception] = {}  # commands not sent: their packing error is their reply
            for index, (args, _) in enumerate(commands):
                try:
                    packed.append(_pack(connection, args))
                except Exception as exc:
                    refused[index] = exc
            await connection.send_packed_command(b"".join(packed), check_health=False)
            for index, (args, options) in enumerate(commands):
                if index in refused:
                    replies.append(refused[index])
                    continue
                try:
                    replies.append(await self._reply(client, connection, args[0], options))
                except ResponseError as exc:  # that command's own error; the connection is fine
                    replies.append(exc)
            clean = True
        except _LOST:
            pass
        except Exception as exc:  # a reply that cannot be parsed: the connection is out of step, the rest fail
            replies += [exc] * (len(commands) - len(replies))
        finally:
            await self._checkin(connection, clean)
        return replies

    async def _reply(self, client: Any, connection: Any, name: Any, options: dict[str, Any]) -> Any:
        """What ``client.parse_response`` returns, without its per-reply lookups for the common case (no
        decoding or empty-reply options): the command's callback is looked up once per name (a fast path belongs to
        one client, whose callbacks the worker never changes). A callback's error is returned, not raised: the
        reply was read in full, the connection is in step."""
        if NEVER_DECODE in options or EMPTY_RESPONSE in options:
            return await client.parse_response(connection, name, **options)
        response = await connection.read_response()
        try:
            callback = self._callbacks[name]
        except KeyError:
            callback = self._callbacks[name] = client.response_callbacks.get(name)
        if callback is None:
            return response
        try:
            if options:  # "keys" is for redis-py's client-side cache, not the callback
                result = callback(response, **{key: value for key, value in options.items() if key != "keys"})
            else:
                result = callback(response)
            return await result if inspect.isawaitable(result) else result
        except Exception as exc:
            return exc

    def _checkout(self) -> Any:
        """An idle fast-path connection (or a new one); None when all are busy or the fast path is closed."""
        if self._busy >= MAX_FAST_PATH_CONNECTIONS or self._closed:
            return None
        self._busy += 1
        connection = self._idle.pop() if self._idle else self._pool.make_connection()
        self._in_use.add(connection)
        return connection

    async def _checkin(self, connection: Any, clean: bool) -> None:
        """Put back after a clean call; closed after an error or a cancellation (it may hold unread replies),
        or when the fast path was closed meanwhile."""
        self._busy -= 1
        self._in_use.discard(connection)
        if clean and not self._closed and not getattr(connection, "_pool_dropped", False):
            self._idle.append(connection)
        else:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)

    async def drop_connections(self) -> None:
        """Close every connection, idle and busy (the master moved: see pool/redis/sentinel.py). A busy call's
        read fails, so its caller replays it on the standard path, to the new master; the fast path goes on."""
        idle, self._idle = self._idle, []
        for connection in (*idle, *self._in_use):
            connection._pool_dropped = True  # never back to the idle list, even if its call ends cleanly
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)

    async def close(self) -> None:
        """Close the idle connections; busy ones close when their call ends. Later calls take the standard path."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.disconnect()


def _pack(connection: Any, args: tuple[Any, ...]) -> bytes:
    """One command in Redis's protocol: by hiredis (a sixth of redis-py's cost for a short command) when its
    output is the same as redis-py's: UTF-8 text, a one-word command name, and arguments it knows (str, bytes,
    int, float); anything else (a bool, None: redis-py's own error) goes to redis-py's packer."""
    encoder = connection.encoder
    if (
        hiredis_pack_command is not None
        and encoder.encoding == "utf-8"
        and encoder.encoding_errors == "strict"
        and _one_word(args[0])
    ):
        try:
            return hiredis_pack_command(args)
        except TypeError:
            pass
    return b"".join(connection.pack_command(*args))


def _one_word(name: Any) -> bool:
    """redis-py splits a command name like 'CONFIG GET' at any whitespace; hiredis would send it as one."""
    return len(name.split(None, 1)) == 1 if isinstance(name, (str, bytes)) else False
