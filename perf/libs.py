"""One adapter per library: how its worker is started (its own CLI) and how a client enqueues, waits for a
result and bulk-enqueues, each with that library's documented API.

The libraries' modules are imported only when used, so a venv without arq, saq or streaq still runs pool.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

WAIT_S = 30.0  # a result not back after this long fails the run


def console_script(name: str) -> list[str]:
    """The library's own command from this venv (``pool``, ``arq``, ``saq``, ``streaq``), else ``python -m``."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return [str(here)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


class Lib:
    name = ""
    dist = ""  # distribution name, for the version
    module = ""  # import name: the library counts as installed when this imports
    is_peer = True

    def missing(self) -> str | None:
        """Why this library can't run here, or None."""
        if importlib.util.find_spec(self.module) is None:
            return f"{self.dist} is not installed in this venv ({sys.prefix})"
        return None

    @property
    def version(self) -> str:
        return dist_version(self.dist)

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        """One command per worker process."""
        raise NotImplementedError

    async def open(self, url: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def enqueue(self, function: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def rpc(self, value: int) -> Any:
        """Enqueue ``echo(value)`` and wait for its result with the library's result-waiting API."""
        raise NotImplementedError

    bulk_api = ""  # the bulk enqueue call, when the library has one

    async def enqueue_bulk(self, function: str, count: int) -> None:
        raise NotImplementedError

    async def pre_enqueue(self, function: str, count: int) -> None:
        """Fill the queue before a throughput run (not timed): the bulk API if any, else 100 calls in flight."""
        if self.bulk_api:
            for start in range(0, count, 1000):
                await self.enqueue_bulk(function, min(1000, count - start))
            return
        for start in range(0, count, 100):
            await asyncio.gather(*(self.enqueue(function) for _ in range(min(100, count - start))))

    async def check_results(self, redis: Any, count: int) -> str | None:
        """A library-specific exactly-once check after a run (None: fine)."""
        return None


class PoolLib(Lib):
    name, dist, module, is_peer = "pool", "pool-queue", "pool", False

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        return [[*console_script("pool"), "worker", "perf.pool_app.WorkerSettings"] for _ in range(procs)]

    async def open(self, url: str) -> None:
        from pool import RedisSettings, create_pool

        self.redis = await create_pool(RedisSettings.from_dsn(url))

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, function: str, **kwargs: Any) -> Any:
        return await self.redis.enqueue_job(function, **kwargs)

    async def rpc(self, value: int) -> Any:
        job = await self.redis.enqueue_job("echo", value=value)
        assert job is not None
        return await job.result(timeout=WAIT_S)

    @property
    def bulk_api(self) -> str:  # type: ignore[override]
        # enqueue_many (with prepare) is being added to PoolRedis: use it only once it is there
        from pool.connections import PoolRedis

        ok = hasattr(PoolRedis, "enqueue_many") and hasattr(PoolRedis, "prepare")
        return "PoolRedis.enqueue_many" if ok else ""

    async def enqueue_bulk(self, function: str, count: int) -> None:
        await self.redis.enqueue_many([self.redis.prepare(function) for _ in range(count)])

    async def check_results(self, redis: Any, count: int) -> str | None:
        from pool.storage.keys import QueueKeys

        pattern = QueueKeys("default").result("*")
        results = 0
        async for _ in redis.scan_iter(match=pattern, count=5000):
            results += 1
        return None if results == count else f"{results} results recorded for {count} jobs"


class PoolMetricsLib(PoolLib):
    """``pool worker --metrics PORT``: pool with its Prometheus counting on, to measure what it costs
    (``--libs pool,pool+metrics``; not one of the default libraries)."""

    name = "pool+metrics"

    def missing(self) -> str | None:
        if importlib.util.find_spec("prometheus_client") is None:
            return "prometheus-client is not installed (pip install -e '.[metrics]')"
        return super().missing()

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        from tests.redis_server import free_port

        return [[*command, "--metrics", str(free_port())] for command in super().commands(procs, tmpdir)]


ALL_PARTITIONS = 2  # pool+all's queue: partitioned, over this many partitions
SENTINEL_URL_ENV = "PERF_SENTINEL_URL"  # the runner's Sentinel watching its Redis (pool+all connects through it)


def runner_sentinel_url() -> str | None:
    """The ``redis+sentinel://`` URL of the Sentinel the runner started to watch its Redis, if it started one."""
    import os

    return os.environ.get(SENTINEL_URL_ENV) or None


class PoolAllLib(PoolMetricsLib):
    """pool with every feature that touches a job's path on: ``--metrics``, a partitioned queue
    (``queue_partitions=2``, client and worker) and, when the runner has started a Sentinel watching its Redis
    (``$PERF_SENTINEL_URL``), the connection through it: the master lookup and the failover watch (its
    ``+switch-master`` subscription, a re-ask every second). What ``make bench`` holds to "noop per process >= 10x
    the fastest peer with every feature on"."""

    name = "pool+all"

    def sentinel_url(self) -> str | None:
        return runner_sentinel_url()

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        commands = []
        for command in super().commands(procs, tmpdir):
            command = [
                word if word != "perf.pool_app.WorkerSettings" else "perf.pool_app.AllFeaturesSettings"
                for word in command
            ]
            url = self.sentinel_url()
            commands.append([*command, "--redis", url] if url else command)
        return commands

    async def open(self, url: str) -> None:
        from pool import RedisSettings, create_pool

        settings = RedisSettings.from_dsn(self.sentinel_url() or url)
        self.redis = await create_pool(settings, queue_partitions=ALL_PARTITIONS)

    async def check_results(self, redis: Any, count: int) -> str | None:
        from pool.storage.keys import ALL_RESULTS_PATTERN

        results = 0
        async for _ in redis.scan_iter(match=ALL_RESULTS_PATTERN, count=5000):
            results += 1
        return None if results == count else f"{results} results recorded for {count} jobs"


class PoolPartitionsLib(PoolLib):
    """pool+all's partitioned queue alone (``queue_partitions=2``, client and worker; no metrics, no Sentinel):
    with ``pool+sentinel`` and ``pool+metrics``, what each of pool+all's features costs (not a default library)."""

    name = "pool+partitions"

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        return [[*console_script("pool"), "worker", "perf.pool_app.AllFeaturesSettings"] for _ in range(procs)]

    async def open(self, url: str) -> None:
        from pool import RedisSettings, create_pool

        self.redis = await create_pool(RedisSettings.from_dsn(url), queue_partitions=ALL_PARTITIONS)

    check_results = PoolAllLib.check_results


class PoolSentinelLib(PoolLib):
    """pool+all's connection through the runner's Sentinel alone (the master lookup, the failover watch): one of
    the parts of pool+all's cost, with ``pool+partitions`` and ``pool+metrics`` (not a default library)."""

    name = "pool+sentinel"

    def sentinel_url(self) -> str | None:
        return runner_sentinel_url()

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        url = self.sentinel_url()
        return [[*command, "--redis", url] if url else command for command in super().commands(procs, tmpdir)]

    async def open(self, url: str) -> None:
        from pool import RedisSettings, create_pool

        self.redis = await create_pool(RedisSettings.from_dsn(self.sentinel_url() or url))


class PoolStartLib(PoolLib):
    """pool's workers under the supervisor: ``pool start --procs N`` (one command; it forks the workers)."""

    name = "pool start"

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        pidfile = str(tmpdir / "pool-start.pid")
        return [
            [
                *console_script("pool"),
                "start",
                "perf.pool_app.WorkerSettings",
                "--procs",
                str(procs),
                "--pidfile",
                pidfile,
            ]
        ]


class ArqLib(Lib):
    name, dist, module = "arq", "arq", "arq"

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        return [[*console_script("arq"), "perf.arq_app.WorkerSettings"] for _ in range(procs)]

    async def open(self, url: str) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.redis = await create_pool(RedisSettings.from_dsn(url))

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, function: str, **kwargs: Any) -> Any:
        return await self.redis.enqueue_job(function, **kwargs)

    async def rpc(self, value: int) -> Any:
        job = await self.redis.enqueue_job("echo", value=value)
        assert job is not None
        return await job.result(timeout=WAIT_S)  # arq polls for the result, every poll_delay=0.5 s by default


class SaqLib(Lib):
    name, dist, module = "saq", "saq", "saq"

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        # `saq --workers N` forks N-1 more from one process; N separately started CLIs are the same thing and
        # are measured like every other library's processes.
        return [[*console_script("saq"), "perf.saq_app.settings"] for _ in range(procs)]

    async def open(self, url: str) -> None:
        from saq import Queue

        self.queue = Queue.from_url(url)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self, function: str, **kwargs: Any) -> Any:
        return await self.queue.enqueue(function, **kwargs)

    async def rpc(self, value: int) -> Any:
        # saq's README: `job = await queue.enqueue(...)` then `await job.refresh(timeout)`, which waits on the
        # job's pub/sub channel (queue.apply() would poll every 0.5 s instead).
        job = await self.queue.enqueue("echo", value=value)
        await job.refresh(until_complete=WAIT_S)
        return job.result


class StreaqLib(Lib):
    name, dist, module = "streaq", "streaq", "streaq"
    bulk_api = "Worker.enqueue_many"

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        # `streaq run --workers N` forks from one process; N separately started CLIs are the same thing.
        return [[*console_script("streaq"), "run", "perf.streaq_app:worker"] for _ in range(procs)]

    async def open(self, url: str) -> None:
        import os
        from contextlib import AsyncExitStack

        from perf import streaq_app  # reads PERF_REDIS_URL, set by the runner before any import of it

        if os.environ.get("PERF_REDIS_URL") != url:
            raise RuntimeError("perf.streaq_app must be imported with PERF_REDIS_URL set to the bench's Redis")

        self.app = streaq_app
        self.stack = AsyncExitStack()
        await self.stack.enter_async_context(streaq_app.worker)

    async def close(self) -> None:
        await self.stack.aclose()

    async def enqueue(self, function: str, **kwargs: Any) -> Any:
        return await getattr(self.app, function).enqueue(**kwargs)

    async def rpc(self, value: int) -> Any:
        task = await self.app.echo.enqueue(value=value)
        return (await task.result(timeout=int(WAIT_S))).result

    async def enqueue_bulk(self, function: str, count: int) -> None:
        task = getattr(self.app, function)
        await self.app.worker.enqueue_many([task.enqueue() for _ in range(count)])


class FloorLib(Lib):
    """The raw redis-py loop (perf/floor.py): noop throughput only."""

    name, dist, module, is_peer = "floor", "redis", "redis", False

    mode: list[str] = []

    def commands(self, procs: int, tmpdir: Path) -> list[list[str]]:
        return [[sys.executable, "-m", "perf.floor", *self.mode] for _ in range(procs)]

    async def open(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(url)

    async def close(self) -> None:
        await self.redis.aclose()

    async def pre_enqueue(self, function: str, count: int) -> None:
        from perf import floor

        await floor.enqueue(self.redis, count)


class FloorPipelinedLib(FloorLib):
    """perf/floor.py with the batch's INCRs pipelined."""

    name = "floor pipelined"
    mode = ["pipelined"]


PEERS: list[Lib] = [ArqLib(), SaqLib(), StreaqLib()]
POOL = PoolLib()
POOL_START = PoolStartLib()
POOL_METRICS = PoolMetricsLib()
POOL_ALL = PoolAllLib()
POOL_PARTITIONS = PoolPartitionsLib()
POOL_SENTINEL = PoolSentinelLib()
FLOOR = FloorLib()
FLOOR_PIPELINED = FloorPipelinedLib()
ALL_NAMES = ["pool", "pool+all", "arq", "saq", "streaq"]


def by_name(name: str) -> Lib:
    for lib in [POOL, POOL_METRICS, POOL_ALL, POOL_PARTITIONS, POOL_SENTINEL, *PEERS]:
        if lib.name == name:
            return lib
    raise KeyError(name)
