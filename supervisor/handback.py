"""Handing a dead child's jobs back to the queue at once, from the (synchronous) parent.

The parent knows each child's consumer name, so when a child dies its pending jobs go back onto the stream
immediately instead of waiting for live workers' idle-time reclaim. If Redis is unreachable right now, nothing
is lost: the reclaim picks them up a few heartbeats later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from pool.storage.sync import SyncQueue

logger = logging.getLogger("pool.supervisor")


def hand_back(queue: SyncQueue, consumer: str, on_error: Callable[[], None] | None = None) -> int:
    """Put ``consumer``'s pending jobs back on the stream; returns how many (0 if Redis is unreachable, after
    calling ``on_error``: the metrics count it)."""
    try:
        return queue.hand_back(consumer)
    except redis.ResponseError as exc:
        logger.warning("could not hand back jobs of %s: %s", consumer, exc)
    except (redis.RedisError, OSError) as exc:
        logger.warning("could not hand back jobs of %s now (%s); they will be reclaimed", consumer, exc)
    if on_error is not None:
        on_error()
    return 0
