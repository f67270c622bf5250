"""What the durability option costs an enqueue: ``python -m perf.durability``.

A Sentinel set (tests/sentinel_set.py: a master and a replica on this machine, three Sentinels) and one client,
enqueueing one job at a time, ``wait_replicas=0`` and ``1`` in alternate rounds so both see the same noise.
Prints the median time per enqueue of each, and their ratio. Across a network, add the replica's round trip to
the durable figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from pool import create_pool
from tests.sentinel_set import SentinelSet


async def per_enqueue_us(settings: object, jobs: int) -> float:
    pool = await create_pool(settings)  # type: ignore[arg-type]
    try:
        await pool.enqueue_job("noop")  # connect, load the script
        start = time.perf_counter()
        for _ in range(jobs):
            await pool.enqueue_job("noop")
        return (time.perf_counter() - start) / jobs * 1e6
    finally:
        await pool.aclose()


async def main(jobs: int, rounds: int) -> None:
    figures: dict[int, list[float]] = {0: [], 1: []}
    with SentinelSet() as sentinel_set:
        for _ in range(rounds):
            for wait_replicas in (0, 1):
                settings = sentinel_set.settings(wait_replicas=wait_replicas)
                figures[wait_replicas].append(await per_enqueue_us(settings, jobs))
    plain, durable = (statistics.median(figures[n]) for n in (0, 1))
    print(f"enqueue, wait_replicas=0: {plain:.0f} µs (median of {rounds} rounds of {jobs})")
    print(f"enqueue, wait_replicas=1: {durable:.0f} µs ({durable / plain:.2f}×, +{durable - plain:.0f} µs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m perf.durability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.rounds))
