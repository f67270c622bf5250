"""Job timeouts on a few shared loop timers rather than one timer per job.

A timer per job (``loop.call_at`` when it starts, ``cancel`` when it ends) was ~4% of a no-op job's CPU. Here
deadlines fall into 10 ms slots: the first job of a slot schedules the slot's timer, the last one to finish
before it fires cancels it. A worker running thousands of jobs a second arms ~100 timers a second at most, and
a job times out at most one slot (10 ms) after its deadline.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

SLOT_S = 0.01


class Deadlines:
    def __init__(self, on_expiry: Callable[[Any], None]) -> None:
        self._on_expiry = on_expiry  # called with the key of each entry whose deadline passed
        self._slots: dict[int, tuple[asyncio.TimerHandle, set[Any]]] = {}

    def add(self, key: Any, deadline: float) -> int | None:
        """Watch ``key`` (hashable, unique among the entries) until ``deadline`` (the running loop's clock).
        Returns the slot to ``remove`` it from; None for an infinite deadline (nothing to watch)."""
        if not math.isfinite(deadline):
            return None
        slot = math.ceil(deadline / SLOT_S)
        entry = self._slots.get(slot)
        if entry is None:
            timer = asyncio.get_running_loop().call_at(slot * SLOT_S, self._expire, slot)
            entry = self._slots[slot] = (timer, set())
        entry[1].add(key)
        return slot

    def remove(self, key: Any, slot: int) -> None:
        entry = self._slots.get(slot)
        if entry is None:
            return
        timer, keys = entry
        keys.discard(key)
        if not keys:  # nothing left to time out here: the slot and its timer go
            timer.cancel()
            del self._slots[slot]

    def _expire(self, slot: int) -> None:
        entry = self._slots.pop(slot, None)
        if entry is not None:
            for key in entry[1]:
                self._on_expiry(key)
