"""Serving Prometheus metrics over HTTP: ``pool worker --metrics`` and ``pool start --metrics`` (docs/metrics.md).

prometheus-client is an optional extra (``pool-queue[metrics]``), imported only here and only when metrics are
asked for. Its HTTP server runs in a daemon thread; each scrape calls ``PoolCollector.collect`` in that thread,
which builds the metric families from what the process already holds:

- the jobs' counters and histograms: a ``JobMetrics`` snapshot (a lone worker's own; a supervisor's children's,
  sent with their heartbeats and summed, see supervisor/metrics.py);
- the process's own numbers (a supervisor's children, restarts, recycles; cron ticks and leadership);
- the queue's depth, read from Redis by this thread through the storage layer's sync facade (``SyncQueue.depth``:
  the same ops as ``pool queue info``, every partition), at most once per ``depth_interval``: many scrapers,
  or a short scrape interval, cost Redis nothing more. A Redis error leaves the depth out of that scrape and
  counts in ``pool_redis_errors_total{operation="depth"}``.

Labels hold queue and function names only: never a Redis URL or a password.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from ..redis.settings import RedisSettings
from ..storage.sync import SyncQueue
from .metrics import EVENTS, cumulative

DEFAULT_HOST = "127.0.0.1"
DEPTH_INTERVAL_S = 1.0
STATES = ("ready", "running", "deferred", "parked", "failed")
METRICS_FLAG = "--metrics"
METRICS_HELP = (
    "serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone binds 127.0.0.1; needs the metrics extra)"
)
INSTALL_HINT = "--metrics needs the prometheus-client package: pip install 'pool-queue[metrics]'"


class MetricsUnavailable(Exception):
    """prometheus-client is not installed; the message says how to install it."""


def parse_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); only a port binds to 127.0.0.1 (never every
    interface by surprise). ValueError with a one-line reason otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not an IPv6 address: {host!r}") from None
    elif not host or ":" in host:
        raise ValueError(f"expected PORT or HOST:PORT (an IPv6 address in brackets), got {text!r}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port_text!r}")
    return host, int(port_text)


@dataclass
class QueueTarget:
    """Where the depth is read: the queue and the Redis it is on (a supervisor's changes on reload)."""

    settings: RedisSettings
    name: str
    partitions: int = 1


@dataclass
class ProcessNumbers:
    """What the process itself counts, beside its jobs: read by the exporter's thread at each scrape."""

    cron_leader: bool | None = None  # None: this process does not schedule cron
    ticks_run: dict[str, int] = field(default_factory=dict)
    ticks_missed: dict[str, int] = field(default_factory=dict)
    redis_errors: dict[str, int] = field(default_factory=dict)
    workers: dict[str, int] | None = None  # a supervisor's children by state
    restarts: int = 0
    recycles: dict[str, int] = field(default_factory=dict)


class PoolCollector:
    """prometheus-client's custom collector: the families are built at each scrape from ``jobs()`` and
    ``numbers()`` (callables, so the owner keeps its plain counters) and the cached depth."""

    def __init__(
        self,
        jobs: Callable[[], dict[str, Any]],
        numbers: Callable[[], ProcessNumbers],
        target: Callable[[], QueueTarget | None],
        depth_interval: float = DEPTH_INTERVAL_S,
    ) -> None:
        self.jobs, self.numbers, self.target = jobs, numbers, target
        self.depth_interval = depth_interval
        self.depth_reads = 0  # how many times Redis was asked (tests check the cache)
        self._lock = threading.Lock()
        self._queue: SyncQueue | None = None
        self._queue_target: QueueTarget | None = None
        self._depth: tuple[str, dict[str, int], list[tuple[int, int]]] | None = None
        self._depth_at = -float("inf")
        self._depth_errors = 0

    def describe(self) -> list[Any]:
        return []  # built per scrape; nothing to check at registration

    def _read_depth(self) -> tuple[str, dict[str, int], list[tuple[int, int]]] | None:
        with self._lock:  # one reader at a time; concurrent scrapes share its answer
            if time.monotonic() - self._depth_at < self.depth_interval:
                return self._depth
            target = self.target()
            if target is None:
                return None
            if target != self._queue_target or self._queue is None:
                if self._queue is not None:
                    self._queue.close()
                self._queue = SyncQueue.connect(target.settings, target.name, target.partitions)
                self._queue_target = target
            self._depth_at = time.monotonic()
            self.depth_reads += 1
            try:
                states, lanes = self._queue.depth()
            except (redis.RedisError, OSError):
                self._depth_errors += 1
                self._depth = None
            else:
                self._depth = (target.name, states, lanes)
            return self._depth

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        snap = self.jobs()
        numbers = self.numbers()
        queue = snap["queue"]
        jobs = snap["jobs"]
        for i, event in enumerate(EVENTS):
            family = CounterMetricFamily(
                f"pool_jobs_{event}", f"Jobs {event}, by queue and function", labels=["queue", "function"]
            )
            for function, counts in sorted(jobs.items()):
                family.add_metric([queue, function], counts[i])
            yield family
        duration = HistogramMetricFamily(
            "pool_job_duration_seconds",
            "How long jobs ran (hooks and decoding included), by queue and function",
            labels=["queue", "function"],
        )
        for function, histogram in sorted(snap["durations"].items()):
            duration.add_metric([queue, function], cumulative(histogram), histogram[-2])
        yield duration
        pickup = HistogramMetricFamily(
            "pool_job_pickup_latency_seconds",
            "From a job's enqueue (or due) time to its start, by queue",
            labels=["queue"],
        )
        pickup.add_metric([queue], cumulative(snap["pickup"]), snap["pickup"][-2])
        yield pickup
        depth = self._read_depth()
        if depth is not None:
            name, states, lanes = depth
            by_state = GaugeMetricFamily("pool_queue_jobs", "Jobs in the queue by state", labels=["queue", "state"])
            for state in STATES:
                by_state.add_metric([name, state], states.get(state, 0))
            yield by_state
            by_lane = GaugeMetricFamily(
                "pool_queue_lane_jobs",
                "Ready and running jobs by priority (lane)",
                labels=["queue", "priority", "state"],
            )
            for priority, (ready, running) in enumerate(lanes):
                by_lane.add_metric([name, str(priority), "ready"], ready)
                by_lane.add_metric([name, str(priority), "running"], running)
            yield by_lane
        errors = CounterMetricFamily(
            "pool_redis_errors", "Redis errors met (and retried) by operation", labels=["operation"]
        )
        totals = dict(snap["redis_errors"])
        for where, count in numbers.redis_errors.items():
            totals[where] = totals.get(where, 0) + count
        if self._depth_errors:
            totals["depth"] = totals.get("depth", 0) + self._depth_errors
        for where, count in sorted(totals.items()):
            errors.add_metric([where], count)
        yield errors
        if numbers.cron_leader is not None:
            yield GaugeMetricFamily(
                "pool_cron_leader",
                "1 while this process leads cron (enqueues the ticks)",
                value=int(numbers.cron_leader),
            )
            run = CounterMetricFamily("pool_cron_ticks", "Cron ticks this process enqueued", labels=["function"])
            for name, count in sorted(numbers.ticks_run.items()):
                run.add_metric([name], count)
            yield run
            missed = CounterMetricFamily(
                "pool_cron_ticks_missed",
                "Cron ticks passed over on taking leadership: older than the catch-up window",
                labels=["function"],
            )
            for name, count in sorted(numbers.ticks_missed.items()):
                missed.add_metric([name], count)
            yield missed
        if numbers.workers is not None:
            workers = GaugeMetricFamily(
                "pool_supervisor_workers", "The supervisor's worker processes by state", labels=["state"]
            )
            for state in ("booting", "ready", "retiring"):
                workers.add_metric([state], numbers.workers.get(state, 0))
            yield workers
            yield CounterMetricFamily(
                "pool_supervisor_worker_restarts",
                "Workers that exited unasked (crashed, killed) and were replaced",
                value=numbers.restarts,
            )
            recycles = CounterMetricFamily(
                "pool_supervisor_worker_recycles",
                "Workers retired for --max-jobs-per-child or --max-memory-per-child",
                labels=["reason"],
            )
            for reason in ("jobs", "memory"):
                recycles.add_metric([reason], numbers.recycles.get(reason, 0))
            yield recycles

    def close(self) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.close()
                self._queue = None


@dataclass
class Exporter:
    """A running HTTP server; ``fileno`` is its listening socket (a supervisor's children close it)."""

    server: Any
    thread: threading.Thread
    collector: PoolCollector

    @property
    def fileno(self) -> int:
        return int(self.server.fileno())

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.close()


def serve(address: tuple[str, int], collector: PoolCollector) -> Exporter:
    """Serve /metrics at ``address`` from a daemon thread. MetricsUnavailable without prometheus-client; OSError
    when the address cannot be bound (in use, not this host's)."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise MetricsUnavailable(INSTALL_HINT) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(address[1], address[0], registry=registry)
    return Exporter(server, thread, collector)


def worker_collector(worker: Any) -> PoolCollector:
    """A lone worker's collector (``pool worker --metrics``): its own counts, its cron duty when it schedules
    cron, and its queue's depth. Turns the worker's counting on."""
    metrics = worker.enable_metrics()
    target = QueueTarget(worker.redis_settings, worker.queue_name, worker.queue_partitions)
    schedules_cron = bool(worker.schedule_cron)

    def numbers() -> ProcessNumbers:
        duty = worker.cron_duty
        if duty is None:
            return ProcessNumbers(cron_leader=False if schedules_cron else None)
        return ProcessNumbers(
            cron_leader=duty.leading, ticks_run=dict(duty.ticks_run), ticks_missed=dict(duty.ticks_missed)
        )

    return PoolCollector(metrics.snapshot, numbers, lambda: target)
