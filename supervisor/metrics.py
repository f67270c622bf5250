"""``pool start --metrics``: one Prometheus endpoint per supervisor (per host), the children's numbers summed.

Each child counts its jobs in plain ints (pool/worker/metrics.py) and sends its totals with every heartbeat
(``"m"`` in the message, once per heartbeat interval, never per job); the parent keeps each child's latest
totals. When a child exits its last totals move to ``exited``, so counters never go back when a child dies, is
recycled or replaced on reload (what it counted after its last heartbeat, a second at most, is lost). No
multiprocess directory is needed: the parent is the only process that serves.

The parent's own numbers (children by state, restarts, recycles, cron, its Redis errors) are plain attributes
of ``SupervisorMetrics`` and the arbiter; the exporter's thread reads them at each scrape (pool/worker/exporter.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pool.worker.exporter import PoolCollector, ProcessNumbers, QueueTarget
from pool.worker.metrics import empty_snapshot, merge


class SupervisorMetrics:
    """What the parent counts for the metrics, beside its children's totals."""

    def __init__(self, queue_name: str) -> None:
        self.exited: dict[str, Any] = empty_snapshot(queue_name)  # the sum of the exited children's last totals
        # held while a child moves from the live ones to ``exited``, and while a scrape sums them
        self.lock = threading.Lock()
        self.restarts = 0
        self.recycles: dict[str, int] = {}
        self.redis_errors: dict[str, int] = {}

    def child_exited(self, totals: dict[str, Any] | None) -> None:
        """Keep an exited child's counts; the caller holds ``lock`` while it also drops the child."""
        if totals:
            self.exited = merge([self.exited, totals], self.exited["queue"])

    def restarted(self) -> None:
        self.restarts += 1

    def recycled(self, reason: str) -> None:
        self.recycles = {**self.recycles, reason: self.recycles.get(reason, 0) + 1}

    def redis_error(self, where: str) -> None:
        self.redis_errors = {**self.redis_errors, where: self.redis_errors.get(where, 0) + 1}


def supervisor_collector(
    metrics: SupervisorMetrics,
    children_totals: Callable[[], list[dict[str, Any]]],
    children_states: Callable[[], list[str]],
    cron: Callable[[], Any],
    target: Callable[[], QueueTarget | None],
) -> PoolCollector:
    """The collector of ``pool start --metrics``: the callables give the live children's latest totals and
    states, the cron duty (None without cron jobs) and the queue to read the depth of."""

    def jobs() -> dict[str, Any]:
        with metrics.lock:
            exited, live = metrics.exited, children_totals()
        return merge([exited, *live], exited["queue"])

    def numbers() -> ProcessNumbers:
        states: dict[str, int] = {}
        for state in children_states():
            states[state] = states.get(state, 0) + 1
        duty = cron()
        return ProcessNumbers(
            cron_leader=duty.leading if duty is not None else None,
            ticks_run=dict(duty.ticks_run) if duty is not None else {},
            ticks_missed=dict(duty.ticks_missed) if duty is not None else {},
            redis_errors=metrics.redis_errors,
            workers=states,
            restarts=metrics.restarts,
            recycles=metrics.recycles,
        )

    return PoolCollector(jobs, numbers, target)
