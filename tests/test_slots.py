"""The slots a worker's fetch loops share (pool/worker/slots.py), on their own: taken before a fetch, handed to
waiting loops in turn, never more than the size between running jobs and fetches under way. (The worker with
them, on a real Redis: tests/test_partition_slots.py.)"""

from __future__ import annotations

import asyncio

from pool.worker.slots import Slots


class Jobs:
    """Stands for the worker's running jobs: the slots they hold."""

    def __init__(self) -> None:
        self.running = 0

    def busy(self) -> int:
        return self.running


async def test_fetches_under_way_and_running_jobs_share_the_size() -> None:
    jobs = Jobs()
    slots = Slots(8, jobs.busy)
    assert slots.take(2) == 2 and slots.take(2) == 2 and slots.take(10) == 4
    assert slots.take(1) == 0 and slots.free() == 0  # taken for fetches under way
    jobs.running = 3  # one fetch started 3 jobs: they hold their slots, the fetch gives its 4 back
    slots.give_back(4)
    assert slots.free() == 1 and slots.take(2, minimum=2) == 0 and slots.take(2) == 1


async def test_waiting_loops_are_handed_slots_in_turn_and_none_jumps_the_queue() -> None:
    jobs = Jobs()
    jobs.running = 8
    slots = Slots(8, jobs.busy)
    first = asyncio.create_task(slots.wait(2, 2, None))
    second = asyncio.create_task(slots.wait(2, 2, None))
    await asyncio.sleep(0)
    jobs.running = 6
    slots.changed()
    assert slots.take(2) == 0  # handed to the first in line already, and the second waits before anyone new
    await asyncio.sleep(0)
    assert first.done() and first.result() == 2 and not second.done() and slots.reserved == 2
    jobs.running = 4
    slots.changed()
    assert await second == 2 and slots.free() == 0


async def test_a_loop_waiting_for_a_quarter_takes_what_is_free_after_a_while() -> None:
    jobs = Jobs()
    jobs.running = 7
    slots = Slots(8, jobs.busy)
    assert await asyncio.wait_for(slots.wait(2, 2, relax_after=0.01), 5) == 1


async def test_slots_handed_to_a_cancelled_loop_come_back() -> None:
    jobs = Jobs()
    jobs.running = 8
    slots = Slots(8, jobs.busy)
    waiting = asyncio.create_task(slots.wait(2, 2, None))
    await asyncio.sleep(0)
    jobs.running = 6
    slots.changed()  # handed over, but the loop is cancelled before it runs again
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled() and slots.reserved == 0 and slots.free() == 2


async def test_a_stop_wakes_waiting_loops_with_nothing() -> None:
    jobs = Jobs()
    jobs.running = 8
    slots = Slots(8, jobs.busy)
    waiting = asyncio.create_task(slots.wait(2, 2, None))
    await asyncio.sleep(0)
    slots.stop()
    assert await waiting == 0 and await slots.wait(1, 1, None) == 0 and slots.take(1) == 0


async def test_a_loop_behind_another_waits_for_its_quarter_from_when_it_is_first() -> None:
    """The clock that lets a loop take less than its quarter starts when the loop is first in line: a loop that
    waited behind others is not handed slots one by one as they free."""
    jobs = Jobs()
    jobs.running = 8
    slots = Slots(8, jobs.busy)
    first = asyncio.create_task(slots.wait(2, 2, relax_after=0.01))
    second = asyncio.create_task(slots.wait(2, 2, relax_after=0.01))
    await asyncio.sleep(0)
    jobs.running = 7
    slots.changed()
    assert await asyncio.wait_for(first, 5) == 1  # first in line for 10 ms: 1 free slot is enough
    jobs.running = 8  # the job it fetched holds its slot now
    slots.give_back(1)
    jobs.running = 7
    slots.changed()
    assert slots.free() == 1 and not second.done()  # first in line only now: it waits for its 2
    assert await asyncio.wait_for(second, 5) == 1
