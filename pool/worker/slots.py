"""A worker's job slots (``max_jobs``), shared by its fetch loops: one loop per partition of a partitioned queue.

Each loop takes its slots before it asks Redis for jobs and gives back what the fetch did not fill, so loops
fetching at the same time never start more than ``max_jobs`` jobs between them (each one counting the free slots
by itself, they did: 14 jobs at once on 8 slots). A loop that must wait queues for its slots, first come first
served, and is handed them as they come free, reserved in its name before it even wakes: no other loop can take
them in between, and busy partitions take turns. A loop waits for a quarter of the slots (the fetch batch), but
not for long: first in line with slots free for ``relax_after``, it takes whatever is free, so jobs that run long
never leave a slot idle while jobs are queued.

The slots held by running jobs (and by sync jobs' threads that outlived their job) are counted by the worker
(``busy``); this class counts only the slots taken for fetches under way (``reserved``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Waiter:
    minimum: int  # hand it slots once this many are free
    wanted: int  # and up to this many
    future: asyncio.Future[int]
    relax_after: float | None  # then 1 free slot is enough


class Slots:
    def __init__(self, size: int, busy: Callable[[], int]) -> None:
        self.size = size
        self._busy = busy
        self.reserved = 0
        self._waiters: deque[_Waiter] = deque()
        self._returns: list[asyncio.Future[None]] = []  # loops waiting for a fetch under way to end
        self._relax: asyncio.TimerHandle | None = None  # the first waiting loop's clock, while slots sit idle
        self._stopped = False

    def free(self) -> int:
        return self.size - self._busy() - self.reserved

    def take(self, wanted: int, minimum: int = 1) -> int:
        """Take up to ``wanted`` free slots now, if at least ``minimum`` are free and no loop waits for slots
        (those come first): how many were taken (0: wait for them)."""
        if self._waiters or self._stopped or self.free() < minimum:
            return 0
        return self.claim(wanted)

    def claim(self, count: int) -> int:
        """Take up to ``count`` free slots, waiting loops or not: for jobs already delivered to this worker (a
        blocking read's, a reclaim's), which would otherwise go back to the queue."""
        taken = max(0, min(count, self.free()))
        self.reserved += taken
        return taken

    def give_back(self, count: int) -> None:
        """Return slots taken for a fetch once its jobs are running (they hold their own) or were not there."""
        if not count:
            return
        self.reserved -= count
        self.changed()
        if self._returns:
            for future in self._returns:
                if not future.done():
                    future.set_result(None)
            self._returns.clear()

    async def given_back(self) -> None:
        """Wait until a fetch under way gives its slots back (a burst's last jobs may be among them)."""
        if self.reserved and not self._stopped:
            future = asyncio.get_running_loop().create_future()
            self._returns.append(future)
            await future

    def changed(self) -> None:
        """Slots may have come free (a job ended, a fetch gave some back): hand them to the waiting loops in
        turn, as many as the first one in line wants, while enough are free for it."""
        waiters = self._waiters
        while waiters:
            waiter = waiters[0]
            if not waiter.future.done():  # (done: its loop was cancelled)
                free = self.free()
                if free < waiter.minimum:
                    if free > 0 and self._relax is None and waiter.relax_after is not None:
                        # slots sit idle while it waits for more: its clock starts
                        loop = asyncio.get_running_loop()
                        self._relax = loop.call_later(waiter.relax_after, self._relax_first, waiter)
                    return
                granted = min(free, waiter.wanted)
                self.reserved += granted
                waiter.future.set_result(granted)
            waiters.popleft()
            if self._relax is not None:
                self._relax.cancel()
                self._relax = None

    async def wait(self, wanted: int, minimum: int, relax_after: float | None) -> int:
        """Queue for slots: how many were handed over (taken in this loop's name; 0 once stopped). Once first in
        line with slots free for ``relax_after`` seconds, 1 free slot is enough. (Timed from then, not from when
        it started waiting: a loop behind others, or waiting while every slot is busy, would otherwise be handed
        slots one by one as they free, small fetches for nothing when jobs end in cohorts.)"""
        if self._stopped:
            return 0
        waiter = _Waiter(max(1, minimum), max(1, wanted), asyncio.get_running_loop().create_future(), relax_after)
        self._waiters.append(waiter)
        self.changed()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # cancelled after its slots were handed over, before the loop resumed: they are nobody's otherwise
            if waiter.future.done() and not waiter.future.cancelled():
                self.give_back(waiter.future.result())
            else:
                waiter.future.cancel()
            raise

    def _relax_first(self, waiter: _Waiter) -> None:
        self._relax = None
        if self._waiters and self._waiters[0] is waiter:
            waiter.minimum = 1
            self.changed()

    def stop(self) -> None:
        """The worker is stopping: wake every waiting loop with nothing, and hand out no more."""
        self._stopped = True
        if self._relax is not None:
            self._relax.cancel()
            self._relax = None
        for future in self._returns:
            if not future.done():
                future.set_result(None)
        self._returns.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(0)
