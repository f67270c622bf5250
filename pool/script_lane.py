"""A short path for the queue's hot scripts: ENQUEUE (one job, or the batches of a bulk enqueue) and the
worker's FETCH, START and COMPLETE.

redis-py's generic command path costs more than the call itself: a checkout from the blocking connection pool
(a lock, a condition, a health-check read), a retry wrapper, callback dispatch, the release. On this project's
2-core machine, 3,000 sequential EVALSHA of a trivial script in one process (redis-py 5.3.1) cost ~200 µs of
CPU each through the blocking pool, ~165 through a plain pool and ~70 on a connection the caller holds.
A ``ScriptLane`` holds a few connections made with the client pool's own settings (TLS, auth, database...) and
sends the script straight on one of them; the calls of one batch are written back to back and their replies
read after, in order.

Anything unusual goes back to the standard path (``None``), which loads scripts and retries as configured: a
NOSCRIPT reply (the script did not run), a connection error (every queue script is safe to run twice: ENQUEUE
recognises a replay of its own call by its nonce, the others by their acks), or every lane connection busy.
A connection that saw an error or a cancellation is closed, never reused: it may still hold unread replies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

MAX_LANE_CONNECTIONS = 4  # more concurrent callers than this take the standard path

ScriptCall = tuple[Sequence[Any], Sequence[Any]]  # (keys, args)


class ScriptLane:
    def __init__(self, connection_pool: Any) -> None:
        self._pool = connection_pool
        self._idle: list[Any] = []
        self._busy = 0

    async def run(self, script: AsyncScript, calls: Iterable[ScriptCall]) -> list[Any] | None:
        """Each call's reply, in order; None when the caller must take the standard path instead."""
        if self._busy >= MAX_LANE_CONNECTIONS:
            return None
        connection = self._idle.pop() if self._idle else self._pool.make_connection()
        self._busy += 1
        reusable = False
        try:
            sent = 0
            for keys, args in calls:
                packed = connection.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
                await connection.send_packed_command(packed, check_health=False)
                sent += 1
            replies = [await connection.read_response() for _ in range(sent)]
            reusable = True
            return replies
        except (NoScriptError, ConnectionError, TimeoutError, OSError):
            return None
        finally:
            self._busy -= 1
            if reusable:
                self._idle.append(connection)
            else:
                with contextlib.suppress(Exception):
                    await connection.disconnect(nowait=True)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.disconnect()
