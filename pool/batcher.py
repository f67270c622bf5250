"""Batches result writes: jobs finishing while a write is in flight share the next write.

The first completion is written at once (no added latency when idle); under load, completions pile up during
one round trip and go out together in the next, so a busy worker pays one round trip per batch, not per job.
A failed write (Redis restarting) is retried with backoff: the results are kept in memory until written, and
the jobs stay in the pending list meanwhile, so a crash here loses nothing (they run again).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ClusterDownError, ConnectionError, ResponseError, TimeoutError, TryAgainError

from .queue import Completion, RedisQueue

logger = logging.getLogger("pool.worker")

T = TypeVar("T")


class CompletionBatcher:
    def __init__(self, queue: RedisQueue, max_batch: int = 500) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._pending: list[tuple[Completion, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, completion: Completion) -> None:
        """Returns once the result is in Redis and the job acked."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        # Not shielded: a cancelled caller cancels only its own future, the writer task writes the result anyway
        await future

    async def drain(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await self._write_with_retry([completion for completion, _ in batch])
                except asyncio.CancelledError:
                    _fail(batch + self._pending, asyncio.CancelledError())
                    self._pending = []
                    raise
                except Exception as exc:  # a script error: those jobs stay pending and run again
                    _fail(batch, exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writer = None

    async def _write_with_retry(self, batch: list[Completion]) -> None:
        await retrying(lambda: self._queue.complete(batch), f"writing {len(batch)} results")


# Replies saying Redis did not run the command for now: BUSY (another client's script runs past
# busy-reply-threshold), LOADING (a restart reading its data), TRYAGAIN, MASTERDOWN, CLUSTERDOWN (a replica or a
# cluster settling). redis-py maps some to classes of their own, not BUSY; in a pipeline it prefixes the reply with
# the command's place, hence the search rather than a prefix match.
_TRANSIENT_REPLY = re.compile(r"(?:^|of pipeline caused error: \W*)(?:BUSY|LOADING|TRYAGAIN|MASTERDOWN|CLUSTERDOWN) ")
_TRANSIENT_ERRORS = (ConnectionError, TimeoutError, OSError, TryAgainError, ClusterDownError)  # BusyLoadingError,
# MasterDownError are subclasses


def transient(exc: BaseException) -> bool:
    """Whether Redis may well run the command if asked again shortly: the connection was lost (a restart), or
    Redis refused it for now (see _TRANSIENT_REPLY). The one definition of what the worker retries."""
    if isinstance(exc, _TRANSIENT_ERRORS):
        return True
    return isinstance(exc, ResponseError) and _TRANSIENT_REPLY.search(str(exc)) is not None


async def retrying(call: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``call`` until Redis answers: ``transient`` errors (a restart, Redis loading its data or busy running
    another client's script) are retried with backoff, other errors raised. The job concerned stays pending
    meanwhile, so stopping the worker instead loses nothing; and a write given up here would make its job run
    again, so retrying is what keeps a job from running twice."""
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc):
                raise
            logger.warning("%s failed (%s), retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _fail(items: list[tuple[Completion, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(exc)
