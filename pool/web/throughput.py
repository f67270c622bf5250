"""Recent throughput of a queue: jobs finished per second, from the workers' health counters.

pool keeps no per-queue completion counter in Redis; the workers do, and report them: each supervisor writes its
children's ``complete``/``failed`` counters every few seconds (supervisor/health.py), a ``pool worker`` its
health line every ``health_check_interval``. The dashboard samples their sum at each page view and divides
the change over the last minute by the time it took. A counter that restarts (a worker replaced) would make the
sum drop: a drop restarts the window.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

WINDOW_S = 60.0
_COUNTER = re.compile(r"\bj_(complete|failed)=(\d+)")


def finished_total(supervisors: list[dict[str, Any]], worker_lines: list[str]) -> int:
    """Jobs finished so far by the live supervisors' children, else by the ``pool worker`` processes (a
    supervisor's children write health lines too: counting both would count them twice)."""
    fresh = [e for e in supervisors if not e.get("stale")]
    if fresh:
        return sum(int(e["totals"].get("complete", 0)) + int(e["totals"].get("failed", 0)) for e in fresh)
    return sum(int(count) for line in worker_lines for _, count in _COUNTER.findall(line))


class Throughput:
    """Samples of one queue's finished-jobs total; ``rate`` over the last minute."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, total: int, now: float | None = None) -> float | None:
        """Record a sample; the jobs per second since the oldest sample of the window (None with one sample)."""
        now = time.monotonic() if now is None else now
        if self._samples and total < self._samples[-1][1]:
            self._samples.clear()
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        first_t, first_total = self._samples[0]
        if now - first_t < 0.5:
            return None
        return (total - first_total) / (now - first_t)
