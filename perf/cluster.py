"""One queue over several Redis cores: ``python -m perf.cluster`` (``make bench-cluster``).

Runs the same noop jobs through one worker process twice, in alternate rounds: a plain queue on a single Redis,
and a queue of ``--partitions`` partitions on a Redis Cluster of three masters (tests/redis_cluster.py), named so
that its partitions fall evenly on the masters. Prints jobs/s of each, the Redis CPU per job (in all, and per
master for the cluster), and how evenly the masters shared the work. On this project's 2-core machine the worker
and the Redis processes share two cores, so the wall-clock gain of spreading Redis over three is capped: the
per-master CPU is the figure that shows one queue using several cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import redis

from pool import Worker, create_pool
from pool.redis.settings import RedisSettings
from pool.storage.keys import QueueKeys
from tests.redis_cluster import ClusterSet
from tests.redis_server import RedisServer


async def noop(ctx: dict[str, Any]) -> None:
    return None


def cpu_s(server: RedisServer) -> float:
    """The Redis process's CPU seconds so far, as it reports them (INFO cpu: getrusage, to the µs; the process
    times psutil reads count in 10 ms ticks, too coarse for a master's share of a short run)."""
    with redis.Redis(host=server.host, port=server.port) as client:
        info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def even_queue_name(cluster: ClusterSet, partitions: int) -> str:
    """A queue name whose partitions fall on the masters as evenly as they can."""
    masters = len(cluster.masters())
    best, best_spread = "bench", partitions + 1
    for number in range(2000):
        name = f"bench{number}"
        per_master: dict[int, int] = {}
        for partition in range(partitions):
            port = cluster.node_for_key(QueueKeys(name, partition).stream).port
            per_master[port] = per_master.get(port, 0) + 1
        spread = (max(per_master.values()) - min(per_master.values())) if len(per_master) == masters else partitions
        if spread < best_spread:
            best, best_spread = name, spread
        if spread == 0:
            break
    return best


def reset_stats(servers: list[RedisServer]) -> None:
    for server in servers:
        with redis.Redis(host=server.host, port=server.port) as client:
            client.config_resetstat()


def command_stats(servers: list[RedisServer]) -> list[dict[str, tuple[int, int]]]:
    """Per server, command -> (calls, µs) since the last ``reset_stats`` (the INFO commandstats read itself left
    out)."""
    stats = []
    for server in servers:
        with redis.Redis(host=server.host, port=server.port) as client:
            info = client.info("commandstats")
        stats.append(
            {
                name.removeprefix("cmdstat_"): (int(fields["calls"]), int(fields["usec"]))
                for name, fields in info.items()
                if name != "cmdstat_info"
            }
        )
    return stats


def print_command_stats(title: str, stats: list[dict[str, tuple[int, int]]], jobs: int) -> None:
    """Calls per job and µs per call of each command, per server: where the Redis CPU of a job goes."""
    print(f"{title}: command, calls per job, µs per call (per server)")
    names = sorted({name for per_server in stats for name in per_server})
    for name in names:
        cells = []
        for per_server in stats:
            calls, usec = per_server.get(name, (0, 0))
            cells.append(f"{calls / jobs:6.3f} x {usec / calls if calls else 0:5.1f}")
        print(f"  {name:24} " + " | ".join(cells))


async def one_round(
    settings: RedisSettings,
    queue_name: str,
    partitions: int,
    jobs: int,
    servers: list[RedisServer],
    stats: bool = False,
) -> tuple[float, list[float]]:
    """(jobs/s, Redis CPU seconds per Redis server) of one burst run over ``jobs`` pre-enqueued noop jobs. With
    ``stats``, the servers' command stats of the worker's run are printed too."""
    pool = await create_pool(settings, queue_partitions=partitions)
    try:
        specs = [pool.prepare("noop", _queue_name=queue_name) for _ in range(jobs)]
        for start in range(0, jobs, 5000):
            await pool.enqueue_many(specs[start : start + 5000])
    finally:
        await pool.aclose()
    worker = Worker(
        functions=[noop],
        redis_settings=settings,
        queue_name=queue_name,
        queue_partitions=partitions,
        burst=True,
        max_jobs=100,
        handle_signals=False,
        log_results=False,
        keep_result=0,
    )
    if stats:
        reset_stats(servers)
    before = [cpu_s(server) for server in servers]
    started = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - started
    cpus = [cpu_s(server) - cpu for server, cpu in zip(servers, before, strict=True)]
    if stats:
        print_command_stats(f"{queue_name} ({partitions} partitions)", command_stats(servers), jobs)
    return jobs / elapsed, cpus


async def main(jobs: int, rounds: int, partitions: int, commands: bool) -> None:
    plain_rates, cluster_rates, one_slot_rates = [], [], []
    plain_cpu: list[float] = []
    cluster_cpu: list[list[float]] = []
    one_slot_cpu: list[float] = []
    with RedisServer() as single, ClusterSet() as cluster:
        single_settings = RedisSettings(host=single.host, port=single.port)
        name = even_queue_name(cluster, partitions)
        masters = cluster.masters()
        for round_number in range(rounds):
            stats = commands and round_number == rounds - 1  # the last round's, once every script is loaded
            rate, (cpu,) = await one_round(single_settings, "bench", 1, jobs, [single], stats)
            plain_rates.append(rate)
            plain_cpu.append(cpu)
            rate, cpus = await one_round(cluster.settings(), name, partitions, jobs, masters, stats)
            cluster_rates.append(rate)
            cluster_cpu.append(cpus)
            rate, cpus = await one_round(cluster.settings(), "plain", 1, jobs, masters, stats)
            one_slot_rates.append(rate)
            one_slot_cpu.append(sum(cpus))
    plain_rate, cluster_rate = statistics.median(plain_rates), statistics.median(cluster_rates)
    plain_us = statistics.median(plain_cpu) * 1e6 / jobs
    per_master_us = [statistics.median(round_cpu[i] for round_cpu in cluster_cpu) * 1e6 / jobs for i in range(3)]
    mean = statistics.mean(per_master_us)
    print(f"{jobs:,} noop jobs, 1 worker process, max_jobs=100, median of {rounds} rounds")
    print("| queue | jobs/s | Redis CPU µs/job (all) | per master |")
    print("|---|---|---|---|")
    print(f"| plain, one Redis | {plain_rate:,.0f} | {plain_us:.1f} | {plain_us:.1f} |")
    shares = " / ".join(f"{us:.1f}" for us in per_master_us)
    print(f"| {partitions} partitions, 3-master cluster | {cluster_rate:,.0f} | {sum(per_master_us):.1f} | {shares} |")
    one_slot_us = statistics.median(one_slot_cpu) * 1e6 / jobs
    print(f"| plain, same cluster (one slot) | {statistics.median(one_slot_rates):,.0f} | {one_slot_us:.1f} | - |")
    print(
        f"cluster/plain jobs/s: {cluster_rate / plain_rate:.2f}x; masters within "
        f"{max(abs(us - mean) for us in per_master_us) / mean * 100:.0f}% of their mean"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m perf.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--commands", action="store_true", help="print each Redis's command stats (calls per job, µs per call)"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.rounds, arguments.partitions, arguments.commands))
