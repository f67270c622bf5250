"""Batches result writes: jobs finishing while a write is in flight share the next write.

The first completion is written at once (no added latency when idle); under load, completions pile up during
one round trip and go out together in the next, so a busy worker pays one round trip per batch, not per job.
A failed write (Redis restarting) is retried with backoff: the results are kept in memory until written, and
the jobs stay in the pending list meanwhile, so a crash here loses nothing (they run again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..redis.replication import NotReplicated
from ..redis.retries import retrying
from ..storage.queue import Completion, RedisQueue, complete_partitions


class CompletionBatcher:
    def __init__(self, queues: Sequence[RedisQueue], consumer: str = "", max_batch: int = 500) -> None:
        self._queues = queues  # one per partition of the queue
        self._consumer = consumer  # the worker whose jobs these are: see RedisQueue.complete
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
        # NotReplicated: the results are on the master but not yet on enough replicas (a failover under way, or a
        # replica down). Writing them again is safe (COMPLETE knows its own acks) and, once the client follows the
        # new master, makes them durable there; given up, the jobs would run again.
        # one COMPLETE per partition with results (each its own slot on a cluster), sent together
        if len(self._queues) == 1:
            parts = [(self._queues[0], batch)]
        else:
            by_partition: dict[int, list[Completion]] = {}
            for completion in batch:
                by_partition.setdefault(completion.partition, []).append(completion)
            parts = [(self._queues[partition], part) for partition, part in sorted(by_partition.items())]
        await retrying(
            lambda: complete_partitions(parts, self._consumer), f"writing {len(batch)} results", also=(NotReplicated,)
        )


def _fail(items: list[tuple[Completion, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(exc)
