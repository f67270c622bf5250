"""Job timeouts on shared slot timers (pool/worker/deadlines.py): each key expires once, no earlier than its deadline
and at most a slot later; keys removed in time never expire; a slot's timer goes with its last key."""

from __future__ import annotations

import asyncio
import math

from pool.worker.deadlines import SLOT_S, Deadlines
from tests.helpers import wait_for


async def test_keys_expire_once_after_their_deadline_and_at_most_a_slot_late() -> None:
    loop = asyncio.get_running_loop()
    expired: dict[str, float] = {}

    def expire(key: str) -> None:
        assert key not in expired, f"{key} expired twice"
        expired[key] = loop.time()

    deadlines = Deadlines(expire)
    start = loop.time()
    due = {f"job-{i}": start + 0.05 + i * 0.003 for i in range(20)}  # several keys per 10 ms slot
    for key, deadline in due.items():
        deadlines.add(key, deadline)
    assert len(deadlines._slots) < len(due)  # keys share slots (and their timers)
    await wait_for(lambda: len(expired) == len(due), timeout=5, message="every key expired")
    for key, deadline in due.items():
        assert deadline <= expired[key] <= deadline + SLOT_S + 0.05  # the 0.05: a busy machine's scheduling
    assert deadlines._slots == {}


async def test_a_removed_key_never_expires_and_an_emptied_slot_cancels_its_timer() -> None:
    expired: list[str] = []
    deadlines = Deadlines(expired.append)
    deadline = asyncio.get_running_loop().time() + 0.03
    kept = deadlines.add("kept", deadline)
    removed = deadlines.add("removed", deadline)
    assert kept == removed
    deadlines.remove("removed", removed)
    alone = deadlines.add("alone", deadline + 1)
    deadlines.remove("alone", alone)
    assert alone not in deadlines._slots  # its timer was cancelled with it
    await wait_for(lambda: expired, timeout=5, message="the kept key expired")
    assert expired == ["kept"]
    assert deadlines._slots == {}  # the shared slot fired and is gone: "removed" can never expire now


async def test_an_infinite_deadline_is_not_watched() -> None:
    deadlines = Deadlines(lambda key: None)
    assert deadlines.add("forever", math.inf) is None
    assert deadlines._slots == {}
