"""A worker's own numbers for Prometheus, counted in plain ints and lists (no library on the hot path).

The worker counts here only when metrics are on (``Worker.metrics`` is None otherwise, and a job then costs one
``is None`` test). A job costs two dict lookups, a few list increments and a ``bisect`` per histogram. Whoever exports
the numbers takes a ``snapshot()``: cumulative totals, JSON-able, so a supervisor's child sends it with its
heartbeat (once a second, not per job) and a lost message loses nothing (the next one carries the totals).
``merge`` adds snapshots up: a supervisor's children, and the ones that died.

Histograms keep one count per bucket (not cumulative) plus a last "+Inf" bucket, their sum and their count;
``cumulative`` turns the counts into Prometheus's ``le`` form at export time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from ..storage.queue import Delivery

# Prometheus's default buckets, in seconds: jobs from a millisecond to ten seconds; longer ones fall in +Inf
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# what happened to jobs, in the order of the counts kept per function
EVENTS: tuple[str, ...] = ("started", "completed", "failed", "retried", "aborted")
STARTED, COMPLETED, FAILED, RETRIED, ABORTED = range(len(EVENTS))
UNKNOWN = "<unknown>"  # the function of a job whose hash names none


def new_histogram() -> list[float]:
    """Bucket counts (the last one +Inf), then the sum, then the count."""
    return [0] * (len(BUCKETS) + 1) + [0.0, 0]


def cumulative(histogram: list[float]) -> list[tuple[str, float]]:
    """The bucket counts as Prometheus's (le, count of observations <= le) pairs, +Inf last."""
    pairs, total = [], 0.0
    for bound, count in zip((*(str(b) for b in BUCKETS), "+Inf"), histogram[: len(BUCKETS) + 1], strict=True):
        total += count
        pairs.append((bound, total))
    return pairs


# A function's record, as the worker keeps it: its duration histogram's bucket counts first (so a bucket's index
# is bisect's answer), then the durations' sum, then its counts in EVENTS' order. Observation counts are not
# kept (the buckets add up to them): every operation saved on the hot path counts (see finished).
_SUM = len(BUCKETS) + 1
_EVENT_AT = _SUM + 1  # STARTED is at _EVENT_AT + 0, ...


class JobMetrics:
    """One worker's counters and histograms since it started."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self.records: dict[str, list[float]] = {}  # function ("" when unknown) -> its record (above)
        self.pickup: list[float] = [0] * (len(BUCKETS) + 1) + [0.0]  # bucket counts, then the sum
        self.redis_errors: dict[str, int] = {}  # what failed -> how many times

    def _add_function(self, function: str) -> list[float]:
        record = self.records[function] = [0] * (len(BUCKETS) + 1) + [0.0] + [0] * len(EVENTS)
        return record

    # Per job: finished, and one turn of started_many's loop (called once per fetched batch). Each costs the
    # worker ~3,000-4,000 CPU instructions (valgrind, Python 3.11): keep them short.
    def started_many(self, deliveries: Iterable[Delivery], now_ms: int) -> None:
        """Jobs just started: counted, and their pickup latency (from the enqueue or due time) observed."""
        records, pickup, started = self.records, self.pickup, _EVENT_AT + STARTED
        for delivery in deliveries:
            record = records.get(delivery.function)
            if record is None:
                record = self._add_function(delivery.function)
            record[started] += 1
            seconds = (now_ms - delivery.score) / 1000
            if seconds < 0:  # hosts' clocks disagree
                seconds = 0.0
            pickup[bisect_left(BUCKETS, seconds)] += 1
            pickup[-1] += seconds

    def finished(self, function: str, event: int, seconds: float) -> None:
        """A run ended (``event``: COMPLETED, FAILED, RETRIED or ABORTED) after ``seconds``."""
        record = self.records.get(function)
        if record is None:
            record = self._add_function(function)
        record[_EVENT_AT + event] += 1
        record[bisect_left(BUCKETS, seconds)] += 1
        record[_SUM] += seconds

    def counted(self, function: str, event: int) -> None:
        """A job that ended without running (expired, unknown to this worker): counted, not timed."""
        record = self.records.get(function)
        if record is None:
            record = self._add_function(function)
        record[_EVENT_AT + event] += 1

    def redis_error(self, where: str) -> None:
        self.redis_errors[where] = self.redis_errors.get(where, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The totals so far, as plain JSON-able data (copies: the exporter's thread may read them): per function
        its counts in EVENTS' order and its duration histogram; histograms as bucket counts, sum, count."""
        jobs: dict[str, list[int]] = {}
        durations: dict[str, list[float]] = {}
        for function, record in list(self.records.items()):
            record = list(record)
            name = function or UNKNOWN
            jobs[name] = [int(count) for count in record[_EVENT_AT:]]
            durations[name] = _histogram(record[: _SUM + 1])
        return {
            "queue": self.queue_name,
            "jobs": jobs,
            "durations": durations,
            "pickup": _histogram(list(self.pickup)),
            "redis_errors": dict(self.redis_errors),
        }


def _histogram(buckets_and_sum: list[float]) -> list[float]:
    """Bucket counts and sum -> bucket counts, sum, count (the snapshot's form)."""
    return [*buckets_and_sum, sum(buckets_and_sum[:-1])]


def empty_snapshot(queue_name: str) -> dict[str, Any]:
    return JobMetrics(queue_name).snapshot()


def merge(snapshots: list[dict[str, Any]], queue_name: str) -> dict[str, Any]:
    """The sum of several workers' snapshots (same shape as one)."""
    total = empty_snapshot(queue_name)
    for snap in snapshots:
        for name, counts in snap.get("jobs", {}).items():
            mine = total["jobs"].setdefault(name, [0] * len(EVENTS))
            for i, count in enumerate(counts[: len(EVENTS)]):
                mine[i] += count
        for name, histogram in snap.get("durations", {}).items():
            _add(total["durations"].setdefault(name, new_histogram()), histogram)
        _add(total["pickup"], snap.get("pickup", []))
        for where, count in snap.get("redis_errors", {}).items():
            total["redis_errors"][where] = total["redis_errors"].get(where, 0) + count
    return total


def _add(into: list[float], histogram: list[float]) -> None:
    if len(histogram) == len(into):
        for i, value in enumerate(histogram):
            into[i] += value
