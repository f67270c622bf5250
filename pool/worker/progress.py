"""``ctx['job']``: the running job's own handle, through which it reports progress and a little metadata.

``await ctx['job'].update(progress=0.4, meta={'step': 'upload'})`` records both in the job's hash (one script
call, pool/storage/lua/progress.lua); ``Job.progress()``, ``Job.info()`` and ``pool job ID`` read them, and the
worker keeps the last values in the job's result.

Writes are coalesced: at most one is in flight per job; updates made meanwhile replace each other, and the last
one is written when the write in flight returns. So a job reporting in a tight loop costs one round trip at a
time, not one per call, and the value in Redis is never older than the last completed write. ``update`` returns
once its value (or a later one) is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..storage.progress import JobProgress, progress_record
from ..storage.queue import RedisQueue
from ..storage.serializers import Serializer
from ..utils import ms_to_datetime, now_ms

__all__ = ["RunningJob"]


class RunningJob:
    """The job running in this worker (``ctx['job']``): ``job_id`` and ``update``."""

    __slots__ = ("_mark", "_pending", "_queue", "_record", "_serializer", "_writer", "job_id")

    def __init__(self, job_id: str, queue: RedisQueue | None, mark: str, serializer: Serializer | None) -> None:
        self.job_id = job_id
        self._queue = queue  # the job's partition; None only outside a worker (nothing is written then)
        self._mark = mark  # this run's mark in the job hash (consumer and entry): the script writes only under it
        self._serializer = serializer
        self._record: dict[str, Any] | None = None  # the last record given: kept with the result
        self._pending: bytes | None = None  # encoded, not yet written
        self._writer: asyncio.Future[None] | None = None

    async def update(self, progress: float | None = None, meta: Mapping[str, Any] | None = None) -> None:
        """Report progress (a number, 0.0 to 1.0 by convention) and/or metadata (a small dict of values the
        queue's serializer takes); what is not given keeps its last value. Raises ValueError (a bad value) or
        ``ProgressTooLarge`` (over 64 KB encoded) in the job, writing nothing."""
        last = self._record or {"p": None, "m": {}}
        record, encoded = progress_record(
            last["p"] if progress is None else progress,
            last["m"] if meta is None else meta,
            now_ms(),
            self._serializer,
        )
        self._record, self._pending = record, encoded
        if self._queue is None:
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_pending(self._queue))
            self._writer.add_done_callback(_seen)
        # shielded: a job cancelled while it waits does not cut short a write other updates wait on too
        await asyncio.shield(self._writer)

    async def _write_pending(self, queue: RedisQueue) -> None:
        while self._pending is not None:
            encoded, self._pending = self._pending, None
            await queue.set_progress(self.job_id, self._mark, encoded)

    @property
    def progress(self) -> JobProgress | None:
        """What the job last reported here (written or about to be)."""
        record = self._record
        if record is None:
            return None
        return JobProgress(progress=record["p"], meta=record["m"], updated=ms_to_datetime(record["t"]))

    def result_record(self) -> dict[str, Any] | None:
        """The last record, for the job's result."""
        return self._record

    def __repr__(self) -> str:
        return f"<pool running job {self.job_id}>"


def _seen(writer: asyncio.Future[None]) -> None:
    """A failed write is raised in the updates that wait on it; one left with no waiter (its job cancelled) is
    not reported again by asyncio as never retrieved."""
    if not writer.cancelled():
        writer.exception()
