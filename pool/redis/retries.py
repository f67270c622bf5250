"""What the worker (and ``create_pool``) retry, in one place: errors after which Redis may well run the command
if asked again shortly. A write the worker gave up would make its job run again (its entry stays pending and is
reclaimed), so the writes a job depends on are retried until Redis answers; the job stays pending meanwhile, so a
worker stopped while retrying loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    ConnectionError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

logger = logging.getLogger("pool.worker")

T = TypeVar("T")

# Replies saying Redis did not run the command for now: BUSY (another client's script runs past
# busy-reply-threshold), LOADING (a restart reading its data), TRYAGAIN, MASTERDOWN, CLUSTERDOWN (a replica or a
# cluster settling), NOREPLICAS (a master refusing writes while too few replicas follow it: min-replicas-to-write).
# redis-py maps some to classes of their own, not BUSY; in a pipeline it prefixes the reply with the command's
# place, hence the search rather than a prefix match.
_TRANSIENT_REPLY = re.compile(
    r"(?:^|of pipeline caused error: \W*)(?:BUSY|LOADING|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|NOREPLICAS) "
)
# (BusyLoadingError is a ConnectionError, MasterDownError a ClusterDownError). ClusterError: redis-py's cluster
# client gave up after too many MOVED/ASK/TRYAGAIN replies ("TTL exhausted"), as while a slot migrates: the
# command was refused each time, and the queue's scripts are all safe to send again.
_TRANSIENT_ERRORS = (ConnectionError, TimeoutError, OSError, TryAgainError, ClusterDownError, ClusterError)


def transient(exc: BaseException) -> bool:
    """Whether Redis may well run the command if asked again shortly: the connection was lost (a restart), or
    Redis refused it for now (see _TRANSIENT_REPLY). The one definition of what the worker retries."""
    if isinstance(exc, _TRANSIENT_ERRORS):
        return True
    return isinstance(exc, ResponseError) and _TRANSIENT_REPLY.search(str(exc)) is not None


async def retrying(call: Callable[[], Awaitable[T]], what: str, also: tuple[type[BaseException], ...] = ()) -> T:
    """Run ``call`` until Redis answers: ``transient`` errors (a restart, Redis loading its data or busy running
    another client's script) are retried with backoff, other errors raised. The job concerned stays pending
    meanwhile, so stopping the worker instead loses nothing; and a write given up here would make its job run
    again, so retrying is what keeps a job from running twice. ``also``: more errors to retry (a result not yet
    confirmed by replicas, say)."""
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not (transient(exc) or isinstance(exc, also)):
                raise
            logger.warning("%s failed (%s), retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
