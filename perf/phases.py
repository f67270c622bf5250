"""Redis's CPU per job, phase by phase: ``python -m perf.phases`` (and the ``phases`` workload of perf.run).

    python -m perf.phases                  # 3 rounds of 5,000 jobs
    python -m perf.phases --jobs 10000 --rounds 5

On a private redis-server, with one client, in this order:

- ``ping``: N sequential PINGs: what one request costs Redis whatever it asks (read, parse, reply, the event
  loop's turn), the part of a sequential call no script change can remove;
- ``enqueue``: N sequential ``enqueue_job`` calls (Redis goes idle between two: each call also pays for waking it);
- ``ping100`` and ``enqueue100``: the same, 100 callers at a time (``asyncio.gather``), as a web application
  under load calls them: Redis stays busy, and ``enqueue_job`` calls that arrive while the client's connections
  are busy go out together (pool/client/enqueue_batch.py);
- ``bulk``: ``prepare`` + ``enqueue_many`` of N jobs;
- ``run``: a burst worker (in this process, ``max_jobs=100``) runs the 3N jobs the enqueue phases made, a
  function that does nothing, so what Redis spends is the job's own path: fetch, start, result.

Each phase reads ``INFO cpu`` (used_cpu_user + used_cpu_sys: everything the server did, syscalls included) and
``INFO commandstats`` before and after, and prints Redis's CPU per job, the commands' own time per job (INFO
commandstats; a script's time includes the commands it calls, which are also listed on their own, marked "in
script"), and how many calls of each command a job costs.

``--anatomy`` also takes one ``enqueue_job`` call apart: N sequential calls of ENQUEUE's record and keys through
scripts that do less and less (ENQUEUE itself; ENQUEUE with its ``redis.call``s made no-ops; one that only
unpacks the record; ``return 1``), and PING: what the request, the script call, the record, the Lua around the
commands and the commands themselves each cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from pool import PoolRedis, RedisSettings, Worker, create_pool

SCRIPT_COMMANDS = ("evalsha", "eval")
CALLERS = 100  # concurrent callers in the ping100 and enqueue100 phases


async def nothing(ctx: dict[str, Any]) -> None:
    """The job of the run phase: no command of its own, so the run phase's Redis CPU is pool's alone."""


@dataclass
class Snapshot:
    cpu_s: float
    calls: dict[str, int] = field(default_factory=dict)
    usec: dict[str, int] = field(default_factory=dict)


@dataclass
class Phase:
    name: str
    jobs: int
    cpu_us: float  # Redis CPU per job (INFO cpu)
    calls: dict[str, float]  # command -> calls per job
    usec: dict[str, float]  # command -> µs per job (INFO commandstats)

    def command_us(self) -> float:
        """The commands' own µs per job: the scripts' (which include the commands they call) and the commands
        sent directly; commands called from scripts are not counted twice."""
        return sum(u for c, u in self.usec.items() if not self.in_script(c))

    def in_script(self, command: str) -> bool:
        """Called from a script (counted in the script's time): every command but the scripts and the phase's
        own direct commands."""
        return command not in SCRIPT_COMMANDS and command not in DIRECT[self.name]


# Commands a phase sends directly (not from a script): the rest of its commandstats come from inside scripts.
DIRECT: dict[str, frozenset[str]] = {
    "ping": frozenset({"ping"}),
    "enqueue": frozenset(),
    "ping100": frozenset({"ping"}),
    "enqueue100": frozenset(),
    "bulk": frozenset(),
    "run": frozenset(
        {"xreadgroup", "xclaim", "xautoclaim", "xlen", "xpending", "xinfo|groups", "zcard", "scard", "hello", "ping"}
    ),
}


async def snapshot(client: PoolRedis) -> Snapshot:
    cpu = await client.info("cpu")
    stats = await client.info("commandstats")
    snap = Snapshot(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        snap.calls[name] = int(value["calls"])
        snap.usec[name] = int(value["usec"])
    return snap


def phase(name: str, jobs: int, before: Snapshot, after: Snapshot) -> Phase:
    calls: dict[str, float] = {}
    usec: dict[str, float] = {}
    for command, count in after.calls.items():
        if command == "info":
            continue  # the snapshots' own
        n = count - before.calls.get(command, 0)
        if n > 0:
            calls[command] = n / jobs
            usec[command] = (after.usec[command] - before.usec.get(command, 0)) / jobs
    return Phase(name, jobs, (after.cpu_s - before.cpu_s) * 1e6 / jobs, calls, usec)


async def measure(url: str, jobs: int) -> list[Phase]:
    """One round of the four phases on the Redis at ``url`` (FLUSHALL first)."""
    settings = RedisSettings.from_dsn(url)
    client = await create_pool(settings)
    try:
        await client.flushall()
        for _ in range(200):  # warm-up: connections, scripts loaded
            await client.ping()
            await client.enqueue_job("nothing")
        await client.enqueue_many([client.prepare("nothing") for _ in range(200)])
        for _ in range(3):  # the connections 100 concurrent callers need
            await asyncio.gather(*(client.ping() for _ in range(CALLERS)))
            await asyncio.gather(*(client.enqueue_job("nothing") for _ in range(CALLERS)))
        await client.flushall()
        await client.config_resetstat()
        phases = []
        before = await snapshot(client)
        for _ in range(jobs):
            await client.ping()
        after = await snapshot(client)
        phases.append(phase("ping", jobs, before, after))
        before = after
        for _ in range(jobs):
            await client.enqueue_job("nothing")
        after = await snapshot(client)
        phases.append(phase("enqueue", jobs, before, after))
        before = after
        for start in range(0, jobs, CALLERS):
            await asyncio.gather(*(client.ping() for _ in range(min(CALLERS, jobs - start))))
        after = await snapshot(client)
        phases.append(phase("ping100", jobs, before, after))
        before = after
        for start in range(0, jobs, CALLERS):
            await asyncio.gather(*(client.enqueue_job("nothing") for _ in range(min(CALLERS, jobs - start))))
        after = await snapshot(client)
        phases.append(phase("enqueue100", jobs, before, after))
        before = after
        await client.enqueue_many([client.prepare("nothing") for _ in range(jobs)])
        after = await snapshot(client)
        phases.append(phase("bulk", jobs, before, after))
        worker = Worker(
            functions=[nothing],
            redis_settings=settings,
            burst=True,
            max_jobs=100,
            handle_signals=False,
            keep_result=60,
        )
        before = await snapshot(client)
        await worker.main()
        after = await snapshot(client)
        await worker.close()
        phases.append(phase("run", 3 * jobs, before, after))
        done = await client.eval("return #redis.call('KEYS', ARGV[1])", 0, "*:result:*")
        assert int(done) == 3 * jobs, f"{done} results for {3 * jobs} jobs"
        return phases
    finally:
        await client.aclose()


def table(rounds: list[list[Phase]]) -> str:
    """Median over the rounds (min–max): Redis CPU per job, the commands' µs per job, calls per job."""
    lines = [
        "| phase | Redis CPU µs per job (INFO cpu) | commands µs per job (commandstats) | commands per job |",
        "|---|---|---|---|",
    ]

    def fig(values: list[float], fmt: str = "{:.1f}") -> str:
        if len(values) == 1 or min(values) == max(values):
            return fmt.format(statistics.median(values))
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"

    for i, first in enumerate(rounds[0]):
        same = [r[i] for r in rounds]
        parts = []
        for command in sorted(first.calls, key=lambda c: -first.usec[c]):
            n = statistics.median(p.calls.get(command, 0.0) for p in same)
            if n < 0.005:
                continue  # the worker's start-up and upkeep: not per job
            us = statistics.median(p.usec.get(command, 0.0) / max(p.calls.get(command, 0.0), 1e-9) for p in same)
            parts.append(f"{'(in script) ' if first.in_script(command) else ''}{command} {n:.2f}× {us:.1f} µs")
        lines.append(
            f"| {first.name} | {fig([p.cpu_us for p in same])} | {fig([p.command_us() for p in same])} | "
            + "; ".join(parts)
            + " |"
        )
    return "\n".join(lines)


def summary(rounds: list[list[Phase]]) -> dict[str, float]:
    """Per phase, the median Redis CPU per job (µs) and commands' µs per job: ``<phase>_redis_us``,
    ``<phase>_cmd_us`` (what perf.run keeps)."""
    out: dict[str, float] = {}
    for i, first in enumerate(rounds[0]):
        out[f"{first.name}_redis_us"] = statistics.median(r[i].cpu_us for r in rounds)
        out[f"{first.name}_cmd_us"] = statistics.median(r[i].command_us() for r in rounds)
    return out


async def anatomy(url: str, calls: int, rounds: int) -> str:
    """One enqueue_job call taken apart (see the module's docstring): Redis CPU and EVALSHA µs per call, medians
    over alternating rounds."""
    import redis.asyncio as aioredis

    from pool.storage.codecs import serialize_job
    from pool.storage.keys import QueueKeys
    from pool.storage.ops import enqueue_args
    from pool.storage.queue import job_record, new_job_id
    from pool.storage.scripts import ENQUEUE
    from pool.utils import now_ms

    client = aioredis.Redis.from_url(url)
    keys = QueueKeys("default")
    variants = {
        "ENQUEUE": ENQUEUE,
        "ENQUEUE, its redis.calls no-ops": "local function no_call() return 0 end\n"
        + ENQUEUE.replace("redis.call(", "no_call("),
        "unpack the record only": "local j = cmsgpack.unpack(ARGV[2]) return 1",
        "return 1 (same keys and arguments)": "return 1",
    }
    shas = {name: await client.script_load(text) for name, text in variants.items()}
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in ["PING", *variants]}
    try:
        for _ in range(rounds):
            for name in found:
                await client.flushall()
                made = []
                for _ in range(calls):  # what enqueue_job("nothing") sends on a single Redis
                    ms = now_ms()
                    payload = serialize_job("nothing", (), {}, ms, None)
                    record = job_record(
                        keys, new_job_id(), payload, score_ms=ms, now_ms=ms, expires_ms=86_400_000, function="nothing"
                    )
                    made.append(enqueue_args(keys, [record], job_keys=False))
                before = await _cpu_and_evalsha(client)
                for call_keys, args in made:
                    if name == "PING":
                        await client.ping()
                    else:
                        await client.evalsha(shas[name], len(call_keys), *call_keys, *args)
                after = await _cpu_and_evalsha(client)
                found[name].append(((after[0] - before[0]) * 1e6 / calls, (after[1] - before[1]) / calls))
    finally:
        await client.aclose()
    lines = ["| one call of | Redis CPU µs (INFO cpu) | EVALSHA µs (commandstats) |", "|---|---|---|"]
    for name, values in found.items():
        cpu = statistics.median(v[0] for v in values)
        own = statistics.median(v[1] for v in values)
        lines.append(f"| {name} | {cpu:.1f} | {'—' if name == 'PING' else f'{own:.2f}'} |")
    return "\n".join(lines)


async def _cpu_and_evalsha(client: Any) -> tuple[float, int]:
    """Redis's CPU seconds so far and EVALSHA's total µs (INFO cpu, INFO commandstats)."""
    cpu = await client.info("cpu")
    stats = await client.info("commandstats")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), int(
        stats.get("cmdstat_evalsha", {}).get("usec", 0)
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m perf.phases", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs per enqueue phase (the run phase: three times)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--anatomy", action="store_true", help="also take one enqueue_job call apart")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    rounds = []
    with RedisServer() as server:
        for _ in range(args.rounds):
            started = time.monotonic()
            found = uvloop.run(measure(server.url, args.jobs))
            rounds.append(found)
            print(
                f"round {len(rounds)} ({time.monotonic() - started:.1f}s): "
                + ", ".join(f"{p.name} {p.cpu_us:.1f}" for p in found)
                + " µs Redis CPU per job",
                flush=True,
            )
        if args.anatomy:
            print()
            print(uvloop.run(anatomy(server.url, args.jobs, args.rounds)))
    print()
    print(table(rounds))


if __name__ == "__main__":
    main()
