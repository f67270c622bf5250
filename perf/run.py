"""Benchmarks, pool side by side with arq, saq and streaq: ``make bench`` or ``python -m perf.run``.

    python -m perf.run                         # everything, 3 interleaved reps (~15-20 min on 2 cores)
    python -m perf.run --quick                 # tiny sizes, 1 rep: proves the scripts work (CI smoke test)
    python -m perf.run --workloads noop1,pickup --libs pool,saq --reps 5
    python -m perf.run --list                  # the workloads

Every run uses a private redis-server (never a shared one) and starts each worker in its own process with the
library's own CLI (``pool worker``, ``pool start``, ``arq``, ``saq``, ``streaq run``), 100 jobs at once per
process. ``pool+all`` is pool with every feature on its jobs' path (``--metrics``, a queue of 2 partitions, the
connection through a Sentinel the runner starts to watch its redis-server), held against the same peers. The
``capacity`` workload turns pool's CPU per job into jobs/s per Redis core and per worker core, and checks that
with Redis and a worker pinned to a CPU each. Libraries not installed in the running venv are skipped with a
note (``make bench`` installs them in .venv-bench). Within a rep the libraries run one after the other, in an
order rotated every rep, so machine noise spreads over all of them; figures are the median of the reps with min
and max, and pool's ratio to each peer is computed rep by rep (same rep, same conditions), then summarised the same way.

Each run checks that every job completed exactly once (the counter each job bumps equals N, and still does
after a settle; for pool the number of results too). A run that lost or repeated jobs reports that instead of a
speed. Results: a JSON file in perf/results/ and a Markdown table on stdout. Methodology: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from perf import common
from perf.libs import (
    FLOOR,
    FLOOR_PIPELINED,
    PEERS,
    POOL,
    POOL_ALL,
    POOL_SENTINEL,
    POOL_START,
    SENTINEL_URL_ENV,
    Lib,
    by_name,
    dist_version,
)

RESULTS_DIR = Path(__file__).parent / "results"
CAPACITY_MIN_JOBS = 5_000  # the capacity workload's runs, even --quick: CPU time is read in 10 ms ticks
REPO_ROOT = Path(__file__).resolve().parent.parent


class RunFailed(Exception):
    """The run could not produce a figure (a worker died, a timeout): reported, the suite goes on."""


class NotExactlyOnce(Exception):
    """Jobs were lost or ran twice: reported instead of a speed figure (kept aside in the JSON, uncounted)."""

    def __init__(self, message: str, uncounted: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.uncounted = uncounted or {}


# --------------------------------------------------------------------------------------------------- sizes


@dataclass
class Sizes:
    noop: int = 20_000
    io: int = 5_000
    pickups: int = 200
    pickup_gap_s: float = 0.02
    rpc: int = 200
    rpc_cap_s: float = 15.0  # arq polls results every 0.5 s: its RPC run stops after this long
    enqueue: int = 5_000
    phase_jobs: int = 5_000  # per enqueue phase of the phases workload (its run phase: twice)
    memory: int = 100_000
    redis_benchmark: int = 200_000
    settle_s: float = 1.0
    stall_s: float = 30.0  # no progress for this long: the remaining jobs count as lost

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            noop=300,
            io=200,
            pickups=10,
            rpc=10,
            rpc_cap_s=3.0,
            enqueue=200,
            phase_jobs=200,
            memory=1_000,
            redis_benchmark=20_000,
            settle_s=0.3,
            stall_s=15.0,
        )


# --------------------------------------------------------------------------------------------------- workers


class Workers:
    """Worker processes of one run, each started with its library's CLI in a session of its own."""

    def __init__(self, lib: Lib, procs: int, env: dict[str, str], tmpdir: Path) -> None:
        self.lib = lib
        self.logs: list[Path] = []
        self.popens: list[subprocess.Popen[bytes]] = []
        for i, command in enumerate(lib.commands(procs, tmpdir)):
            log = tmpdir / f"{lib.name.replace(' ', '-')}-{i}.log"
            self.logs.append(log)
            with open(log, "wb") as out:
                self.popens.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        cwd=REPO_ROOT,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        self.procs = [psutil.Process(p.pid) for p in self.popens]

    def processes(self) -> list[psutil.Process]:
        """Every process of this run: the started ones and their children (``pool start`` forks its workers)."""
        found = []
        for proc in self.procs:
            try:
                found.append(proc)
                found.extend(proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return found

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that run jobs (for ``pool start``: the children, not the supervisor)."""
        found = []
        for proc in self.procs:
            try:
                children = proc.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            found.extend(children or [proc])
        return found

    def cpu_s(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss_mb(self) -> list[float]:
        sizes = []
        for proc in self.worker_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes.append(proc.memory_info().rss / 1048576)
        return sizes

    def check_alive(self) -> None:
        for popen, log in zip(self.popens, self.logs, strict=True):
            if popen.poll() is not None:
                raise RunFailed(f"{self.lib.name} worker exited with {popen.returncode}:\n{tail(log)}")

    async def stop(self) -> None:
        for popen in self.popens:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for popen in self.popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(popen.wait, max(deadline - time.monotonic(), 0.1))
        for popen in self.popens:  # what did not stop in 15 s, and anything it left behind in its session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            if popen.poll() is None:
                await asyncio.to_thread(popen.wait)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------------- the bench


@dataclass
class Bench:
    url: str
    redis_pid: int
    sizes: Sizes
    tmpdir: Path
    loops: dict[str, set[str]] = field(default_factory=dict)  # lib -> event loop classes its workers ran
    capacity_note: str = ""  # why the capacity workload's pinned check did not run, if it did not
    phase_rounds: list[Any] = field(default_factory=list)  # perf/phases.py rounds, for their table

    def __post_init__(self) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(self.url)  # the runner's own probe client
        self.redis_proc = psutil.Process(self.redis_pid)

    def env(self, total: int) -> dict[str, str]:
        return {
            **os.environ,
            "PERF_REDIS_URL": self.url,
            "POOL_REDIS_URL": self.url,
            "PERF_TOTAL": str(total),
            "PERF_CONCURRENCY": "100",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }

    def redis_cpu_s(self) -> float:
        times = self.redis_proc.cpu_times()
        return times.user + times.system

    async def reset(self) -> None:
        await self.redis.flushall()

    async def counter(self) -> int:
        return int(await self.redis.get(common.DONE) or 0)

    async def wait_ready(self, workers: Workers, procs: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while int(await self.redis.get(common.READY) or 0) < procs:
            workers.check_alive()
            if time.monotonic() > deadline:
                raise RunFailed(f"{workers.lib.name}: {procs} workers not up after {timeout:g}s")
            await asyncio.sleep(0.02)
        # past the start-up hook; let the fetch loops reach their first blocking read / poll
        await asyncio.sleep(0.5)

    async def record_loops(self, lib: Lib) -> None:
        async for key in self.redis.scan_iter(match=common.LOOP + "*"):
            value = await self.redis.get(key)
            if value:
                self.loops.setdefault(lib.name, set()).add(value.decode() if isinstance(value, bytes) else value)

    async def start(self, lib: Lib, procs: int, total: int) -> Workers:
        self.last_workers = Workers(lib, procs, self.env(total), self.tmpdir)
        return self.last_workers

    def last_logs(self, lib: Lib) -> list[str]:
        """The end of each worker log of the last run of ``lib`` (for a run that failed)."""
        workers = getattr(self, "last_workers", None)
        if workers is None or workers.lib is not lib:
            return []
        return [tail(log, 8) for log in workers.logs]

    # --- the exactly-once check ------------------------------------------------------------------------------

    async def check_exactly_once(
        self, lib: Lib, expected: int, what: str, figures: dict[str, float] | None = None
    ) -> None:
        await asyncio.sleep(self.sizes.settle_s)
        final = await self.counter()
        if final != expected:
            kind = f"{final - expected} ran twice" if final > expected else f"{expected - final} lost"
            raise NotExactlyOnce(f"{what}: {expected} jobs, {final} executions ({kind})", figures)

    # --- workloads ---------------------------------------------------------------------------------------------

    async def throughput(
        self, lib: Lib, function: str, total: int, procs: int, pinned: bool = False
    ) -> dict[str, float]:
        """``total`` pre-enqueued jobs, then ``procs`` workers: jobs/s from the first job's start to the last
        job's end, worker and Redis CPU per job (after start-up), RSS after. ``pinned``: redis-server on CPU 0
        and the workers on CPU 1 for the run (what ``taskset -c 0`` / ``taskset -c 1`` do), then as before."""
        await self.reset()
        await lib.open(self.url)
        try:
            await lib.pre_enqueue(function, total)
        finally:
            await lib.close()
        redis_cpus = self.redis_proc.cpu_affinity() if pinned else []
        if pinned:
            self.redis_proc.cpu_affinity([0])
        workers = await self.start(lib, procs, total)
        try:
            if pinned:
                for proc in workers.procs:  # right after the fork: before the interpreter has even started
                    proc.cpu_affinity([1])
            cpu0 = rcpu0 = None
            done0 = last = 0
            last_progress = time.monotonic()
            checked = 0.0
            while True:
                done = await self.counter()
                if cpu0 is None and done >= 1:
                    cpu0, rcpu0, done0 = workers.cpu_s(), self.redis_cpu_s(), done
                if done >= total and await self.redis.exists(common.END):
                    break
                now = time.monotonic()
                if done != last:
                    last, last_progress = done, now
                elif now - last_progress > self.sizes.stall_s:
                    raise NotExactlyOnce(
                        f"{function} x {total}: stalled at {done} executions for {self.sizes.stall_s:g}s "
                        f"({total - done} lost or stuck)"
                    )
                if now - checked > 0.5:
                    workers.check_alive()
                    checked = now
                await asyncio.sleep(0.01)
            cpu1, rcpu1 = workers.cpu_s(), self.redis_cpu_s()
            start = float(await self.redis.get(common.START) or 0)
            end = float(await self.redis.get(common.END) or 0)
            assert cpu0 is not None and rcpu0 is not None
            jobs = max(total - done0, 1)
            figures = {
                "jobs_per_s": total / max(end - start, 1e-9),
                "cpu_us_per_job": (cpu1 - cpu0) * 1e6 / jobs,
                "redis_cpu_us_per_job": (rcpu1 - rcpu0) * 1e6 / jobs,
                "rss_mb_after": max(workers.rss_mb(), default=0.0),
            }
            await self.check_exactly_once(lib, total, f"{function} x {total}", figures)
            problem = await lib.check_results(self.redis, total)
            if problem:
                raise NotExactlyOnce(problem, figures)
            await self.record_loops(lib)
        finally:
            await workers.stop()
            if pinned:
                self.redis_proc.cpu_affinity(redis_cpus)
        return figures

    async def pickup(self, lib: Lib) -> dict[str, float]:
        """An idle worker; jobs enqueued one at a time, ``pickup_gap_s`` apart: enqueue -> start latency."""
        count = self.sizes.pickups
        await self.reset()
        workers = await self.start(lib, 1, count)
        opened = False
        try:
            await lib.open(self.url)
            opened = True
            await self.wait_ready(workers, 1)
            rss_idle = max(workers.rss_mb(), default=0.0)
            for _ in range(count):
                await lib.enqueue("pickup", enqueued_at=time.time())
                await asyncio.sleep(self.sizes.pickup_gap_s)
            deadline = time.monotonic() + self.sizes.stall_s
            while await self.redis.llen(common.LATENCY) < count:
                workers.check_alive()
                if time.monotonic() > deadline:
                    got = await self.redis.llen(common.LATENCY)
                    raise NotExactlyOnce(f"pickup: {count - got} of {count} jobs never started")
                await asyncio.sleep(0.01)
            await asyncio.sleep(self.sizes.settle_s)
            got = await self.redis.llen(common.LATENCY)
            if got != count:
                raise NotExactlyOnce(f"pickup: {count} jobs, {got} executions ({got - count} ran twice)")
            latencies = [float(x) * 1000 for x in await self.redis.lrange(common.LATENCY, 0, -1)]
            await self.record_loops(lib)
        finally:
            if opened:
                await lib.close()
            await workers.stop()
        return {**percentiles(latencies, "pickup"), "rss_mb_idle": rss_idle}

    async def rpc(self, lib: Lib) -> dict[str, float]:
        """Enqueue ``echo(i)`` then wait for its result, one call after the other (after 3 warm-up calls)."""
        await self.reset()
        workers = await self.start(lib, 1, 0)
        opened = False
        try:
            await lib.open(self.url)
            opened = True
            await self.wait_ready(workers, 1)
            for i in range(3):
                if await asyncio.wait_for(lib.rpc(-1 - i), 60) != -1 - i:
                    raise RunFailed(f"{lib.name}: echo returned a wrong result")
            times: list[float] = []
            began = time.perf_counter()
            for i in range(self.sizes.rpc):
                t0 = time.perf_counter()
                result = await asyncio.wait_for(lib.rpc(i), 60)
                times.append((time.perf_counter() - t0) * 1000)
                if result != i:
                    raise RunFailed(f"{lib.name}: echo({i}) returned {result!r}")
                if time.perf_counter() - began > self.sizes.rpc_cap_s and len(times) >= 5:
                    break
            await self.check_exactly_once(lib, len(times) + 3, f"rpc x {len(times) + 3}")
            await self.record_loops(lib)
        finally:
            if opened:
                await lib.close()
            await workers.stop()
        return {**percentiles(times, "rpc"), "rpc_calls": float(len(times))}

    async def enqueue(self, lib: Lib) -> dict[str, float]:
        """No worker: ``enqueue`` jobs with sequential awaits, then 100 in flight, then the bulk API if any."""
        count = self.sizes.enqueue
        out: dict[str, float] = {}
        await lib.open(self.url)
        try:
            await self.reset()
            for _ in range(20):  # warm the connection and the scripts, then open the connections 100 in flight need
                await lib.enqueue("noop")
            await asyncio.gather(*(lib.enqueue("noop") for _ in range(100)))
            await self.reset()
            t0 = time.perf_counter()
            for _ in range(count):
                await lib.enqueue("noop")
            out["enqueue_seq_per_s"] = count / (time.perf_counter() - t0)
            await self.reset()
            t0 = time.perf_counter()
            for start in range(0, count, 100):
                await asyncio.gather(*(lib.enqueue("noop") for _ in range(min(100, count - start))))
            out["enqueue_conc_per_s"] = count / (time.perf_counter() - t0)
            if lib.bulk_api:
                await self.reset()
                t0 = time.perf_counter()
                for start in range(0, count, 1000):
                    await lib.enqueue_bulk("noop", min(1000, count - start))
                out["enqueue_bulk_per_s"] = count / (time.perf_counter() - t0)
        finally:
            await lib.close()
            await self.reset()
        return out

    async def memory(self, lib: Lib) -> dict[str, float]:
        """RSS of an idle worker, then after ``memory`` noop jobs fed 100 in flight while it runs."""
        total = self.sizes.memory
        await self.reset()
        workers = await self.start(lib, 1, total)
        opened = False
        try:
            await lib.open(self.url)
            opened = True
            await self.wait_ready(workers, 1)
            idle = max(workers.rss_mb(), default=0.0)
            for start in range(0, total, 1000):
                workers.check_alive()
                if lib.bulk_api:
                    await lib.enqueue_bulk("noop", min(1000, total - start))
                else:
                    for sub in range(start, min(start + 1000, total), 100):
                        await asyncio.gather(*(lib.enqueue("noop") for _ in range(min(100, total - sub))))
                while start - await self.counter() > 5000:  # keep the backlog small: measure the worker
                    await asyncio.sleep(0.05)
            deadline = time.monotonic() + self.sizes.stall_s + 60
            while not await self.redis.exists(common.END):
                workers.check_alive()
                if time.monotonic() > deadline:
                    raise NotExactlyOnce(f"memory: {total - await self.counter()} of {total} jobs not done")
                await asyncio.sleep(0.05)
            after = max(workers.rss_mb(), default=0.0)
            await self.check_exactly_once(lib, total, f"memory x {total}")
        finally:
            if opened:
                await lib.close()
            await workers.stop()
        return {"rss_mb_idle": idle, "rss_mb_after_many": after, "rss_growth_mb": after - idle}

    async def phases(self) -> dict[str, float]:
        """Redis's CPU per job, phase by phase (perf/phases.py): one round, this run's FLUSHALLed server."""
        from perf import phases

        found = await phases.measure(self.url, self.sizes.phase_jobs)
        self.phase_rounds.append(found)
        await self.reset()
        return phases.summary([found])

    async def capacity(self) -> dict[str, float]:
        """The capacity line: what one Redis core and one worker core carry, from Redis's CPU per job by phase
        (one perf/phases.py round) and a worker's CPU per noop job (a 1-process noop run); then the check, a noop
        run with redis-server pinned to CPU 0 and the worker to CPU 1, against its prediction."""
        from perf import phases

        jobs = max(self.sizes.noop, CAPACITY_MIN_JOBS)
        found = phases.summary([await phases.measure(self.url, max(self.sizes.phase_jobs, CAPACITY_MIN_JOBS))])
        await self.reset()
        free = await self.throughput(POOL, "noop", jobs, 1)
        enqueue_us, bulk_us, run_us = found["enqueue_redis_us"], found["bulk_redis_us"], found["run_redis_us"]
        busy_us = found["enqueue100_redis_us"]
        worker_us, noop_redis_us = free["cpu_us_per_job"], free["redis_cpu_us_per_job"]
        if min(enqueue_us, busy_us, bulk_us, run_us, worker_us, noop_redis_us) <= 0:
            raise RunFailed("capacity: a CPU time per job measured 0 (too few jobs for the clock's resolution)")
        out = {
            "enqueue_redis_us": enqueue_us,
            "enqueue100_redis_us": busy_us,
            "bulk_redis_us": bulk_us,
            "run_redis_us": run_us,
            "worker_cpu_us": worker_us,
            "noop_redis_us": noop_redis_us,
            "redis_core_single_per_s": 1e6 / (enqueue_us + run_us),
            "redis_core_busy_per_s": 1e6 / (busy_us + run_us),
            "redis_core_bulk_per_s": 1e6 / (bulk_us + run_us),
            "redis_core_run_per_s": 1e6 / run_us,
            "worker_core_per_s": 1e6 / worker_us,
            "workers_per_redis_single": worker_us / (enqueue_us + run_us),
            "workers_per_redis_bulk": worker_us / (bulk_us + run_us),
            # the pinned run's jobs are noop jobs (pool's path plus the job's INCR), pre-enqueued: the slower of
            # one worker core and one Redis core at the unpinned run's CPU per job
            "pinned_predicted_per_s": min(1e6 / worker_us, 1e6 / noop_redis_us),
        }
        reason = pinning_unavailable()
        if reason:
            self.capacity_note = f"the pinned check was skipped: {reason}"
            print(f"  capacity: {self.capacity_note}", flush=True)
            return out
        try:
            pinned = await self.throughput(POOL, "noop", jobs, 1, pinned=True)
        except (psutil.AccessDenied, OSError) as exc:
            self.capacity_note = f"the pinned check was skipped: CPU affinity could not be set ({exc})"
            print(f"  capacity: {self.capacity_note}", flush=True)
            return out
        out["pinned_per_s"] = pinned["jobs_per_s"]
        out["pinned_worker_cpu_us"] = pinned["cpu_us_per_job"]
        out["pinned_redis_cpu_us"] = pinned["redis_cpu_us_per_job"]
        out["pinned_vs_predicted"] = pinned["jobs_per_s"] / out["pinned_predicted_per_s"]
        # how busy each pinned CPU was with its process (jobs/s x CPU s per job): below 1 for both means the
        # two waited for each other (the round trips of a batch), not for a core
        out["pinned_worker_busy"] = pinned["jobs_per_s"] * pinned["cpu_us_per_job"] / 1e6
        out["pinned_redis_busy"] = pinned["jobs_per_s"] * pinned["redis_cpu_us_per_job"] / 1e6
        return out

    def redis_benchmark(self) -> dict[str, float]:
        """``redis-benchmark`` INCR against the same private server: 100 clients, without and with pipelining."""
        binary = _which("redis-benchmark")
        if binary is None:
            return {}
        host, port = self.url.split("//", 1)[1].split("/")[0].rsplit(":", 1)
        out = {}
        for key, extra in (("incr_per_s", []), ("incr_pipelined_per_s", ["-P", "100"])):
            run = subprocess.run(
                [
                    binary,
                    "-h",
                    host,
                    "-p",
                    port,
                    "-c",
                    "100",
                    "-n",
                    str(self.sizes.redis_benchmark),
                    "--csv",
                    *extra,
                    "INCR",
                    "perf:redis-benchmark",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            rows = [line.split(",") for line in run.stdout.splitlines() if line.startswith('"INCR')]
            if rows:
                out[key] = float(rows[-1][1].strip('"'))
        return out


def pinning_unavailable() -> str | None:
    """Why redis-server and a worker cannot each have a CPU of their own here (CPUs 0 and 1), or None."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return "os.sched_getaffinity is not available on this platform"
    allowed = sorted(getaffinity(0))
    if not {0, 1} <= set(allowed):
        return f"this process may use CPUs {allowed}; the pinned run needs CPUs 0 and 1"
    return None


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def percentiles(values: list[float], prefix: str) -> dict[str, float]:
    if len(values) < 2:
        return {f"{prefix}_p50_ms": values[0], f"{prefix}_p95_ms": values[0], f"{prefix}_p99_ms": values[0]}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {f"{prefix}_p50_ms": q[49], f"{prefix}_p95_ms": q[94], f"{prefix}_p99_ms": q[98]}


# --------------------------------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    name: str
    help: str
    runs: Callable[[Bench, Lib], Awaitable[dict[str, float]]] | None  # per library; None: special
    libs: str = "all"  # "all": pool and the peers; "pool": pool only; "floor": the raw loop
    default: bool = True


WORKLOADS = [
    Workload(
        "noop1",
        "noop throughput, 1 process (N pre-enqueued)",
        lambda b, lib: b.throughput(lib, "noop", b.sizes.noop, 1),
    ),
    Workload("noop2", "noop throughput, 2 processes", lambda b, lib: b.throughput(lib, "noop", b.sizes.noop, 2)),
    Workload(
        "io1", "io-bound throughput (sleep 0.05), 1 process", lambda b, lib: b.throughput(lib, "sleepy", b.sizes.io, 1)
    ),
    Workload("io2", "io-bound throughput, 2 processes", lambda b, lib: b.throughput(lib, "sleepy", b.sizes.io, 2)),
    Workload("pickup", "enqueue->start latency of an idle worker (+ idle RSS)", lambda b, lib: b.pickup(lib)),
    Workload("rpc", "enqueue then await the result, sequential", lambda b, lib: b.rpc(lib)),
    Workload("enqueue", "enqueue rate: sequential, 100 in flight, bulk API", lambda b, lib: b.enqueue(lib)),
    Workload("supervisor", "`pool start --procs 2` vs 2 x `pool worker`, noop", None, libs="pool"),
    Workload("floor", "raw redis-py loop (noop, 1 process) and redis-benchmark INCR", None, libs="floor"),
    Workload(
        "phases",
        "pool's Redis CPU per job by phase: PING baseline, enqueue_job (alone and 100 callers), enqueue_many, run "
        "(perf/phases.py)",
        lambda b, lib: b.phases(),
        libs="pool",
    ),
    Workload(
        "capacity",
        "pool: jobs/s one Redis core and one worker core carry, workers per Redis; checked pinned (taskset-like)",
        lambda b, lib: b.capacity(),
        libs="pool",
    ),
    Workload("memory", "RSS idle and after many noop jobs (opt-in: slow)", lambda b, lib: b.memory(lib), default=False),
]
WORKLOADS_BY_NAME = {w.name: w for w in WORKLOADS}


def rotated(items: list[Any], by: int) -> list[Any]:
    if not items:
        return items
    k = by % len(items)
    return items[k:] + items[:k]


async def run_suite(bench: Bench, workloads: list[Workload], libs: list[Lib], reps: int) -> dict[str, Any]:
    """raw[workload][lib] = one entry per rep: metrics, or {"error": ...} / {"not_exactly_once": ...}."""
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}

    async def one(workload: str, lib: Lib, runner: Callable[[], Awaitable[dict[str, float]]]) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            entry: dict[str, Any] = await runner()
        except NotExactlyOnce as exc:
            entry = {"not_exactly_once": str(exc), "uncounted": exc.uncounted}
        except Exception as exc:  # a worker died, a timeout, a library raising in our client code: report, go on
            entry = {"error": f"{type(exc).__name__}: {exc}", "worker_logs": bench.last_logs(lib)}
        raw.setdefault(workload, {}).setdefault(lib.name, []).append(entry)
        shown = {
            k: round(v, 1) if isinstance(v, float) else v
            for k, v in entry.items()
            if k not in ("worker_logs", "uncounted")
        }
        print(f"  {workload:<10} {lib.name:<11} {time.monotonic() - t0:5.1f}s  {shown}", flush=True)
        return entry

    for rep in range(reps):
        print(f"rep {rep + 1}/{reps}", flush=True)
        for workload in workloads:
            if workload.name == "floor":
                for lib in rotated([FLOOR, FLOOR_PIPELINED], rep):
                    await one("floor", lib, lambda lib=lib: bench.throughput(lib, "noop", bench.sizes.noop, 1))  # type: ignore[misc]
                await one("redis-benchmark", FLOOR, lambda: asyncio.to_thread(bench.redis_benchmark))
                continue
            if workload.name == "supervisor":
                if POOL not in libs:
                    continue
                variants: list[Lib] = [POOL_START]
                if "noop2" not in raw or len(raw["noop2"].get("pool", [])) <= rep:
                    variants.append(POOL)  # no `pool worker` x 2 figure of this rep to compare with: run one
                for lib in rotated(variants, rep):
                    name = "supervisor" if lib is POOL_START else "supervisor-ref"
                    await one(name, lib, lambda lib=lib: bench.throughput(lib, "noop", bench.sizes.noop, 2))  # type: ignore[misc]
                continue
            assert workload.runs is not None
            if workload.libs == "pool":
                if POOL in libs:
                    await one(workload.name, POOL, lambda w=workload: w.runs(bench, POOL))  # type: ignore[misc]
                continue
            for lib in rotated(libs, rep):
                await one(workload.name, lib, lambda lib=lib, w=workload: w.runs(bench, lib))  # type: ignore[misc]
    return raw


# --------------------------------------------------------------------------------------------------- report


@dataclass
class Metric:
    workload: str
    key: str
    label: str
    higher_is_better: bool
    fmt: str
    ratio: bool = True  # in the advantage table


METRICS = [
    Metric("noop1", "jobs_per_s", "noop jobs/s, 1 process", True, "{:,.0f}"),
    Metric("noop2", "jobs_per_s", "noop jobs/s, 2 processes", True, "{:,.0f}"),
    Metric("noop1", "cpu_us_per_job", "worker CPU µs per noop job", False, "{:,.0f}"),
    Metric("noop1", "redis_cpu_us_per_job", "redis-server CPU µs per noop job", False, "{:,.0f}"),
    Metric("io1", "jobs_per_s", "io-bound jobs/s (sleep 50 ms), 1 process", True, "{:,.0f}"),
    Metric("io2", "jobs_per_s", "io-bound jobs/s, 2 processes", True, "{:,.0f}"),
    Metric("pickup", "pickup_p50_ms", "pickup latency p50, ms", False, "{:.2f}"),
    Metric("pickup", "pickup_p95_ms", "pickup latency p95, ms", False, "{:.2f}"),
    Metric("pickup", "pickup_p99_ms", "pickup latency p99, ms", False, "{:.2f}"),
    Metric("rpc", "rpc_p50_ms", "RPC round trip p50, ms", False, "{:.2f}"),
    Metric("rpc", "rpc_p99_ms", "RPC round trip p99, ms", False, "{:.2f}"),
    Metric("enqueue", "enqueue_seq_per_s", "enqueue jobs/s, sequential awaits", True, "{:,.0f}"),
    Metric("enqueue", "enqueue_conc_per_s", "enqueue jobs/s, 100 in flight", True, "{:,.0f}"),
    Metric("enqueue", "enqueue_bulk_per_s", "enqueue jobs/s, bulk API (1,000 per call)", True, "{:,.0f}"),
    Metric("phases", "ping_redis_us", "Redis CPU µs per PING (request baseline)", False, "{:.1f}", ratio=False),
    Metric("phases", "enqueue_redis_us", "Redis CPU µs per job: enqueue_job", False, "{:.1f}", ratio=False),
    Metric("phases", "ping100_redis_us", "Redis CPU µs per PING, 100 callers", False, "{:.1f}", ratio=False),
    Metric(
        "phases", "enqueue100_redis_us", "Redis CPU µs per job: enqueue_job, 100 callers", False, "{:.1f}", ratio=False
    ),
    Metric("phases", "bulk_redis_us", "Redis CPU µs per job: enqueue_many", False, "{:.1f}", ratio=False),
    Metric("phases", "run_redis_us", "Redis CPU µs per job: run (fetch, start, result)", False, "{:.1f}", ratio=False),
    Metric(
        "capacity", "redis_core_single_per_s", "capacity: jobs/s per Redis core, enqueue_job", True, "{:,.0f}", False
    ),
    Metric(
        "capacity",
        "redis_core_busy_per_s",
        "capacity: jobs/s per Redis core, enqueue_job, 100 callers",
        True,
        "{:,.0f}",
        False,
    ),
    Metric(
        "capacity", "redis_core_bulk_per_s", "capacity: jobs/s per Redis core, enqueue_many", True, "{:,.0f}", False
    ),
    Metric("capacity", "worker_core_per_s", "capacity: noop jobs/s per worker core", True, "{:,.0f}", False),
    Metric("capacity", "workers_per_redis_single", "capacity: workers per Redis, enqueue_job", True, "{:.2f}", False),
    Metric("capacity", "workers_per_redis_bulk", "capacity: workers per Redis, enqueue_many", True, "{:.2f}", False),
    Metric("capacity", "pinned_predicted_per_s", "pinned noop jobs/s, predicted", True, "{:,.0f}", False),
    Metric("capacity", "pinned_per_s", "pinned noop jobs/s, measured", True, "{:,.0f}", False),
    Metric("pickup", "rss_mb_idle", "worker RSS idle, MB", False, "{:.1f}"),
    Metric("noop1", "rss_mb_after", "worker RSS after the noop run, MB", False, "{:.1f}"),
    Metric("memory", "rss_mb_after_many", "worker RSS after the memory run, MB", False, "{:.1f}"),
    Metric("memory", "rss_growth_mb", "worker RSS growth over the memory run, MB", False, "{:.1f}", ratio=False),
]


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Per workload, lib and metric: median/min/max over the good reps; pool's advantage over each peer, rep by
    rep (pool/peer for higher-is-better figures, peer/pool for times and sizes: > 1 means pool is better)."""
    summary: dict[str, Any] = {"figures": {}, "advantage": {}, "problems": []}
    for workload, per_lib in raw.items():
        for lib, entries in per_lib.items():
            for rep, entry in enumerate(entries):
                for bad in ("not_exactly_once", "error"):
                    if bad in entry:
                        summary["problems"].append({"workload": workload, "lib": lib, "rep": rep + 1, bad: entry[bad]})
            keys = {k for e in entries for k, v in e.items() if isinstance(v, float)}
            for key in sorted(keys):
                s = stats([e[key] for e in entries if key in e])
                if s is not None:
                    summary["figures"].setdefault(workload, {}).setdefault(lib, {})[key] = s
    for metric in METRICS:
        pool_entries = raw.get(metric.workload, {}).get("pool", [])
        if not metric.ratio:
            continue
        for peer in [p.name for p in PEERS]:
            peer_entries = raw.get(metric.workload, {}).get(peer, [])
            ratios = []
            for mine, theirs in zip(pool_entries, peer_entries, strict=False):
                if metric.key in mine and metric.key in theirs and mine[metric.key] > 0 and theirs[metric.key] > 0:
                    a, b = mine[metric.key], theirs[metric.key]
                    ratios.append(a / b if metric.higher_is_better else b / a)
            s = stats(ratios)
            if s is not None:
                summary["advantage"].setdefault(f"{metric.workload}.{metric.key}", {})[peer] = s
    # derived pairs: pool vs the floor (noop, 1 process); `pool start` vs 2 x `pool worker`
    floor = raw.get("floor", {}).get("floor", [])
    pool1 = raw.get("noop1", {}).get("pool", [])
    shares = [
        p["jobs_per_s"] / f["jobs_per_s"]
        for p, f in zip(pool1, floor, strict=False)
        if "jobs_per_s" in p and "jobs_per_s" in f
    ]
    if shares:
        summary["pool_share_of_floor"] = stats(shares)
    floor_p = raw.get("floor", {}).get("floor pipelined", [])
    shares = [
        p["jobs_per_s"] / f["jobs_per_s"]
        for p, f in zip(pool1, floor_p, strict=False)
        if "jobs_per_s" in p and "jobs_per_s" in f
    ]
    if shares:
        summary["pool_share_of_floor_pipelined"] = stats(shares)
    sup = raw.get("supervisor", {}).get("pool start", [])
    ref = raw.get("noop2", {}).get("pool", []) or raw.get("supervisor-ref", {}).get("pool", [])
    pairs = [
        s["jobs_per_s"] / r["jobs_per_s"]
        for s, r in zip(sup, ref, strict=False)
        if "jobs_per_s" in s and "jobs_per_s" in r
    ]
    if pairs:
        summary["supervisor_vs_workers"] = stats(pairs)
    scaling = [
        two["jobs_per_s"] / one["jobs_per_s"]
        for one, two in zip(pool1, raw.get("noop2", {}).get("pool", []), strict=False)
        if "jobs_per_s" in one and "jobs_per_s" in two
    ]
    if scaling:
        summary["pool_2_vs_1_process"] = stats(scaling)
    for workload in ("noop1", "noop2"):
        for mine in ("pool", POOL_ALL.name):
            ratios = fastest_peer_ratios(raw.get(workload, {}), mine)
            if ratios:
                summary.setdefault("vs_fastest_peer", {}).setdefault(workload, {})[mine] = stats(ratios)
    return summary


def fastest_peer_ratios(per_lib: dict[str, list[dict[str, Any]]], mine: str) -> list[float]:
    """Rep by rep, ``mine``'s jobs/s over the fastest peer's of the same rep. A peer's rep that ran jobs twice
    still counts with its speed (its uncounted figure): the denominator is never flattered by leaving it out."""
    ratios = []
    for rep, entry in enumerate(per_lib.get(mine, [])):
        speeds = []
        for peer in PEERS:
            entries = per_lib.get(peer.name, [])
            if rep < len(entries):
                theirs = entries[rep]
                speed = theirs.get("jobs_per_s", theirs.get("uncounted", {}).get("jobs_per_s"))
                if speed:
                    speeds.append(speed)
        if speeds and entry.get("jobs_per_s"):
            ratios.append(entry["jobs_per_s"] / max(speeds))
    return ratios


def cell(s: dict[str, float] | None, fmt: str) -> str:
    if s is None:
        return "—"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def problem_mark(summary: dict[str, Any], workload: str, lib: str) -> str:
    """✗ when a rep of this run lost or repeated jobs, ⚠ when one failed; the list follows the table."""
    found = [p for p in summary["problems"] if p["workload"] == workload and p["lib"] == lib]
    marks = {"✗" if "not_exactly_once" in p else "⚠" for p in found}
    return "".join(sorted(marks))


def capacity_lines(found: dict[str, Any], note: str) -> list[str]:
    """The capacity workload in words: what one Redis core and one worker core carry, and the pinned check."""
    if not found:
        return []

    def f(key: str, fmt: str = "{:,.0f}") -> str:
        return cell(found.get(key), fmt)

    lines = [
        f"- capacity: one Redis core carries {f('redis_core_single_per_s')} jobs/s enqueued one at a time "
        f"(enqueue_job {f('enqueue_redis_us', '{:.1f}')} + run {f('run_redis_us', '{:.1f}')} µs, Redis idle "
        f"between two calls), {f('redis_core_busy_per_s')} from 100 callers at a time (enqueue_job "
        f"{f('enqueue100_redis_us', '{:.1f}')} + run), {f('redis_core_bulk_per_s')} bulk-enqueued "
        f"(enqueue_many {f('bulk_redis_us', '{:.1f}')} + run), "
        f"{f('redis_core_run_per_s')} enqueued elsewhere (run only); one worker core {f('worker_core_per_s')} "
        f"noop jobs/s ({f('worker_cpu_us', '{:.1f}')} µs); so {f('workers_per_redis_single', '{:.2f}')} worker "
        f"processes saturate one Redis with enqueue_job, {f('workers_per_redis_bulk', '{:.2f}')} with "
        "enqueue_many"
    ]
    if "pinned_per_s" in found:
        # One worker and one Redis hand batches back and forth: overlapped fully, the slower CPU bounds the rate
        # (the prediction); not at all, each job costs both CPUs' time one after the other (the serial bound).
        worker, redis_us = found.get("worker_cpu_us"), found.get("noop_redis_us")
        serial = 1e6 / (worker["median"] + redis_us["median"]) if worker and redis_us else 0.0
        lines.append(
            f"- pinned check (redis-server on CPU 0, one worker on CPU 1, noop): predicted "
            f"{f('pinned_predicted_per_s')} jobs/s (the slower of 1e6 / worker µs and 1e6 / Redis µs per noop job, "
            f"{f('worker_cpu_us', '{:.1f}')} and {f('noop_redis_us', '{:.1f}')} unpinned; {serial:,.0f} if the two "
            f"never overlapped), measured {f('pinned_per_s')} ({f('pinned_vs_predicted', '{:.2f}×')} the "
            f"prediction; pinned CPU per job: worker {f('pinned_worker_cpu_us', '{:.1f}')} µs, Redis "
            f"{f('pinned_redis_cpu_us', '{:.1f}')} µs; CPU 1 busy with the worker {f('pinned_worker_busy', '{:.0%}')}, "
            f"CPU 0 with Redis {f('pinned_redis_busy', '{:.0%}')})"
        )
    elif note:
        lines.append(f"- capacity: {note}")
    return lines


def markdown(
    summary: dict[str, Any], libs: list[str], machine: str, reps: int, sizes: Sizes, capacity_note: str = ""
) -> str:
    lines = [f"Machine: {machine}", ""]
    lines.append(
        f"Median of {reps} interleaved rep{'s' if reps > 1 else ''} (min–max); noop {sizes.noop:,} jobs, io "
        f"{sizes.io:,} jobs, pickup {sizes.pickups} jobs {sizes.pickup_gap_s * 1000:.0f} ms apart, RPC "
        f"{sizes.rpc} calls or {sizes.rpc_cap_s:g} s, enqueue {sizes.enqueue:,} jobs; 100 concurrent jobs per "
        "worker process."
    )
    lines += ["", "| metric | " + " | ".join(libs) + " |", "|---|" + "---|" * len(libs)]
    figures = summary["figures"]
    for metric in METRICS:
        if metric.workload not in figures:
            continue
        row = []
        for lib in libs:
            mark = problem_mark(summary, metric.workload, lib)
            good = cell(figures.get(metric.workload, {}).get(lib, {}).get(metric.key), metric.fmt)
            row.append(f"{good} {mark}" if mark else good)
        if all(c == "—" for c in row):
            continue
        lines.append(f"| {metric.label} | " + " | ".join(row) + " |")
    if summary["problems"]:
        lines += [
            "",
            "✗: a rep of this run lost or repeated jobs; ⚠: a rep failed. Those reps are left out of the figures "
            "and ratios (listed below).",
        ]
    peers = [lib for lib in libs if lib in {p.name for p in PEERS}]
    if peers and summary["advantage"]:
        lines += [
            "",
            "pool's advantage, rep by rep (× ; > 1 means pool is better: faster, or less time/CPU/memory):",
            "",
        ]
        lines += ["| metric | " + " | ".join(f"pool vs {p}" for p in peers) + " |", "|---|" + "---|" * len(peers)]
        for metric in METRICS:
            adv = summary["advantage"].get(f"{metric.workload}.{metric.key}", {})
            if not any(p in adv for p in peers):
                continue
            lines.append(f"| {metric.label} | " + " | ".join(cell(adv.get(p), "{:.2f}×") for p in peers) + " |")
    extra = []
    floor = figures.get("floor", {}).get("floor", {})
    if floor:
        extra.append(
            f"- floor (raw redis-py loop, noop, 1 process): {cell(floor.get('jobs_per_s'), '{:,.0f}')} jobs/s, "
            f"{cell(floor.get('cpu_us_per_job'), '{:,.0f}')} µs CPU per job"
        )
    if "pool_share_of_floor" in summary:
        extra.append(
            f"- pool noop, 1 process, as a share of the floor: {cell(summary['pool_share_of_floor'], '{:.0%}')}"
        )
    floor_p = figures.get("floor", {}).get("floor pipelined", {})
    if floor_p:
        extra.append(
            f"- the same loop with the batch's INCRs pipelined: {cell(floor_p.get('jobs_per_s'), '{:,.0f}')} jobs/s, "
            f"{cell(floor_p.get('cpu_us_per_job'), '{:,.0f}')} µs CPU per job; pool's share of it: "
            f"{cell(summary.get('pool_share_of_floor_pipelined'), '{:.0%}')}"
        )
    bench = figures.get("redis-benchmark", {}).get("floor", {})
    if bench:
        extra.append(
            f"- redis-benchmark INCR, 100 clients: {cell(bench.get('incr_per_s'), '{:,.0f}')} ops/s; "
            f"pipelined 100: {cell(bench.get('incr_pipelined_per_s'), '{:,.0f}')} ops/s"
        )
    sup = figures.get("supervisor", {}).get("pool start", {})
    if sup:
        extra.append(
            f"- `pool start --procs 2`: {cell(sup.get('jobs_per_s'), '{:,.0f}')} noop jobs/s; vs 2 × `pool worker`: "
            f"{cell(summary.get('supervisor_vs_workers'), '{:.2f}×')} (1.00× = no overhead)"
        )
    if "pool_2_vs_1_process" in summary:
        extra.append(f"- pool noop, 2 processes vs 1: {cell(summary['pool_2_vs_1_process'], '{:.2f}×')}")
    for workload, label in (("noop1", "1 process"), ("noop2", "2 processes")):
        found = summary.get("vs_fastest_peer", {}).get(workload, {})
        if found:
            extra.append(
                f"- noop jobs/s, {label}, over the fastest peer of the same rep: "
                + ", ".join(f"{mine} {cell(s, '{:.2f}×')}" for mine, s in found.items())
            )
    extra += capacity_lines(figures.get("capacity", {}).get("pool", {}), capacity_note)
    if extra:
        lines += ["", *extra]
    problems = summary["problems"]
    if problems:
        lines += ["", "Runs that did not count (lost or repeated jobs, or errors):"]
        for p in problems:
            lines.append(
                f"- {p['workload']} / {p['lib']} / rep {p['rep']}: {p.get('not_exactly_once') or p.get('error')}"
            )
    else:
        lines += ["", "Every run completed each job exactly once."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- main


def machine_line(redis_binary: str, libs: list[Lib]) -> str:
    redis_version = subprocess.run([redis_binary, "--version"], capture_output=True, text=True, check=False).stdout
    redis_version = next((w.removeprefix("v=") for w in redis_version.split() if w.startswith("v=")), "?")
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{lib.name} {lib.version}" for lib in libs)
    import redis

    hiredis = dist_version("hiredis") if getattr(redis.utils, "HIREDIS_AVAILABLE", False) else "not in use"
    coredis = f", coredis {dist_version('coredis')} (streaq's client)" if dist_version("coredis") != "?" else ""
    return (
        f"{psutil.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}, "
        f"Redis {redis_version}, redis-py {redis.__version__} (hiredis {hiredis}), uvloop {dist_version('uvloop')}"
        f"{coredis}; {versions}; {time.strftime('%Y-%m-%d %H:%M')}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perf.run",
        description="pool side by side with arq, saq and streaq (see docs/performance.md).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 rep (< 60 s): proves the scripts work")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 3; --quick: 1)")
    parser.add_argument("--workloads", help="comma-separated (default: all but memory); see --list", default=None)
    parser.add_argument(
        "--libs",
        default=",".join(["pool", "pool+all", "arq", "saq", "streaq"]),
        help="comma-separated: pool, pool+all (metrics, 2 partitions, through a Sentinel), pool+metrics, "
        "pool+partitions, pool+sentinel (pool+all's parts), arq, "
        "saq, streaq",
    )
    parser.add_argument("--noop-jobs", type=int, help="jobs per noop throughput run (default 20000)")
    parser.add_argument("--io-jobs", type=int, help="jobs per io-bound run (default 5000)")
    parser.add_argument("--out", type=Path, help="JSON output file (default perf/results/bench-DATE.json)")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print the table of a saved run and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:<11} {w.help}{'' if w.default else '  [not run by default]'}")
        return 0
    if args.report:
        saved = json.loads(args.report.read_text())
        print(
            markdown(
                summarize(saved["raw"]),
                saved["libs"],
                saved["machine"],
                saved["reps"],
                Sizes(**saved["sizes"]),
                saved.get("capacity_note", ""),
            )
        )
        if saved.get("phases_table"):
            print(f"\npool's Redis CPU per job by phase:\n\n{saved['phases_table']}")
        return 0
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.noop_jobs:
        sizes.noop = args.noop_jobs
    if args.io_jobs:
        sizes.io = args.io_jobs
    reps = args.reps or (1 if args.quick else 3)
    if args.workloads:
        unknown = [w for w in args.workloads.split(",") if w not in WORKLOADS_BY_NAME]
        if unknown:
            print(f"unknown workloads: {', '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
        workloads = [WORKLOADS_BY_NAME[w] for w in args.workloads.split(",")]
    else:
        workloads = [w for w in WORKLOADS if w.default]
    libs: list[Lib] = []
    for name in args.libs.split(","):
        try:
            lib = by_name(name.strip())
        except KeyError:
            known = "pool, pool+all, pool+metrics, pool+partitions, pool+sentinel, arq, saq, streaq"
            print(f"unknown library {name!r} ({known})", file=sys.stderr)
            return 2
        reason = lib.missing()
        if reason:
            print(f"note: skipping {lib.name}: {reason} (`make bench` installs the peers in .venv-bench)")
            continue
        libs.append(lib)
    if not libs:
        print("no library to run", file=sys.stderr)
        return 2

    from tests.redis_server import RedisServer, find_redis_server

    redis_binary = find_redis_server()
    machine = machine_line(redis_binary, libs)
    print(machine, flush=True)
    started = time.monotonic()
    with (
        RedisServer() as server,
        tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        # The apps read these at import; the streaq app is imported by this process too (it is the client).
        os.environ["PERF_REDIS_URL"] = server.url
        if POOL_ALL in libs or POOL_SENTINEL in libs:
            os.environ[SENTINEL_URL_ENV] = stack.enter_context(watching_sentinel(server.port))
        assert server.pid is not None
        bench = Bench(server.url, server.pid, sizes, Path(tmp))
        raw = _run_on_uvloop(run_suite(bench, workloads, libs, reps))
        loops = {lib: sorted(found) for lib, found in bench.loops.items()}
    elapsed = time.monotonic() - started
    summary = summarize(raw)
    names = [lib.name for lib in libs]
    table = markdown(summary, names, machine, reps, sizes, bench.capacity_note)
    phases_table = ""
    if bench.phase_rounds:
        from perf import phases

        phases_table = phases.table(bench.phase_rounds)
    not_uvloop = {lib: found for lib, found in loops.items() if any("uvloop" not in f for f in found)}
    report = {
        "machine": machine,
        "command": "python -m perf.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "elapsed_s": elapsed,
        "reps": reps,
        "sizes": vars(sizes),
        "libs": names,
        "workloads": [w.name for w in workloads],
        "event_loops": loops,
        "raw": raw,
        "summary": summary,
        "markdown": table,
        "phases_table": phases_table,
        "capacity_note": bench.capacity_note,
    }
    out = args.out or RESULTS_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print()
    print(table)
    if phases_table:
        print(f"\npool's Redis CPU per job by phase ({len(bench.phase_rounds)} rounds; perf/phases.py):\n")
        print(phases_table)
    if not_uvloop:
        print(f"\nnote: workers not on uvloop: {not_uvloop}")
    print(f"\n{elapsed:.0f}s; JSON: {out}")
    return 0


SENTINEL_SERVICE = "perfmaster"


@contextlib.contextmanager
def watching_sentinel(port: int) -> Iterator[str]:
    """A Sentinel monitoring the bench's redis-server (quorum 1, no replica: nothing to fail over to, so it
    never acts): what pool+all connects through, for the cost of the master lookup and the failover watch.
    Yields its ``redis+sentinel://`` URL."""
    from tests.redis_server import HOST, RedisServer

    config = {
        "sentinel resolve-hostnames": "no",
        "sentinel monitor": f"{SENTINEL_SERVICE} {HOST} {port} 1",
    }
    with RedisServer(config=config, args=("--sentinel",)) as sentinel:
        yield f"redis+sentinel://{HOST}:{sentinel.port}/{SENTINEL_SERVICE}"


def _run_on_uvloop(coro: Awaitable[Any]) -> Any:
    """The runner (the clients) runs on uvloop too, like every worker."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
