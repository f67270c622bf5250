"""How long a blocking command (XREADGROUP/XREAD ... BLOCK) may block on a client's connections.

redis-py applies the connection's ``socket_timeout`` (5 s by default in redis-py 8, none in older releases) to
every read, blocking commands included: a BLOCK that outlasts it is torn down as a ``TimeoutError``, retried
(``Retry``) and in the end raised, while Redis was only doing as asked. So every blocking call of the queue
blocks in chunks shorter than the socket timeout, by a margin that covers the round trip and a busy event loop.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

from redis.asyncio.connection import Connection

MAX_MARGIN_S = 1.0  # a block ends this much before the socket timeout (half of it for timeouts under 2 s)


def block_limit_s(redis: Any) -> float:
    """The longest one blocking command may block on ``redis``'s connections (inf: no socket timeout)."""
    timeout = socket_timeout(redis)
    if timeout is None:
        return math.inf
    return float(timeout) - min(MAX_MARGIN_S, float(timeout) / 2)


def capped_block_ms(redis: Any, wanted_ms: int) -> int:
    """``wanted_ms``, or less when ``redis``'s socket timeout would cut a block that long short."""
    limit = block_limit_s(redis)
    return wanted_ms if math.isinf(limit) else min(wanted_ms, block_ms(limit))


def block_ms(seconds: float) -> int:
    """BLOCK's argument for a wait of ``seconds``: at least 1 ms, since BLOCK 0 would mean forever."""
    return max(int(seconds * 1000), 1)


def socket_timeout(redis: Any) -> float | None:
    """The read timeout of the connections ``redis``'s pool makes: the one it was given, else the default of
    its connection class (read from the class, so this follows the installed redis-py)."""
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if "socket_timeout" in kwargs:
        timeout: float | None = kwargs["socket_timeout"]
        return timeout
    return _default_socket_timeout(getattr(pool, "connection_class", Connection))


@functools.cache
def _default_socket_timeout(connection_class: type) -> float | None:
    for cls in connection_class.__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get("socket_timeout")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            default: float | None = parameter.default
            return default
    return None
