"""A worker's own numbers for Prometheus, counted in plain ints and lists (no library on the hot path).

The worker counts here only when metrics are on (``Worker.metrics`` is None otherwise, and a job then costs one
``is None`` test). Per job: its share of one count per fetched batch (done in C), then, when it ends, one dict
lookup and two list increments (its duration and its pickup latency); no float, no ``bisect``, no clock read of
its own: the ~3,500 instructions a job this costs are ~1% of a noop job's (``python -m perf.metrics_cost``). Whoever
exports the numbers takes a ``snapshot()``: cumulative totals, JSON-able, so a supervisor's child sends it with
its heartbeat (once a second, not per job) and a lost message loses nothing (the next one carries the totals).
``merge`` adds snapshots up: a supervisor's children, and the ones that died.

Snapshots keep histograms as one count per bucket (not cumulative) plus a last "+Inf" bucket, their sum and
their count; ``cumulative`` turns the counts into Prometheus's ``le`` form at export time.
"""

from __future__ import annotations

from collections import _count_elements  # type: ignore[attr-defined]  # Counter's, in C: d[x] = d.get(x, 0) + 1
from operator import attrgetter, countOf
from typing import Any

from ..storage.queue import Delivery

# Prometheus's default buckets, in seconds: jobs from a millisecond to ten seconds; longer ones fall in +Inf
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# what happened to jobs, in the order of the counts kept per function
EVENTS: tuple[str, ...] = ("started", "completed", "failed", "retried", "aborted")
STARTED, COMPLETED, FAILED, RETRIED, ABORTED = range(len(EVENTS))
UNKNOWN = "<unknown>"  # the function of a job whose hash names none
_FUNCTION = attrgetter("function")

# Observations are whole milliseconds: the worker's own timestamps (a job's enqueue or due time, when the runner
# started it, when the worker records its outcome) are all wall-clock milliseconds (``now_ms``), so a job's
# numbers cost no clock read and no float. A bucket's index for 0..MAX_MS ms is looked up, not searched.
MAX_MS = round(BUCKETS[-1] * 1000)
_INF = len(BUCKETS)  # the +Inf bucket's index
_WIDTH = len(BUCKETS) + 1  # one histogram's slots in a record


def _bucket_of_ms() -> tuple[int, ...]:
    """Index i for every ms from 0 to MAX_MS, the first bucket whose bound it does not exceed (``le``)."""
    indexes: list[int] = []
    for i, bound in enumerate(BUCKETS):
        indexes += [i] * (round(bound * 1000) + 1 - len(indexes))
    return tuple(indexes)


# A slot holds its observations' milliseconds summed in its low 64 bits and their count above them, so one
# observation is one increment, of ``_ONE + ms`` (2**64 ms is 584 million years of jobs).
_COUNT_SHIFT = 64
_ONE = 1 << _COUNT_SHIFT
_SUM_MASK = _ONE - 1


# For every ms from 0 to MAX_MS: its bucket's index, and its increment (looked up: no int to allocate). Filled by
# the first JobMetrics (half a megabyte: not for a worker without metrics); module globals, the cheapest to read.
_BUCKET_OF_MS: tuple[int, ...] = ()
_STEP_OF_MS: tuple[int, ...] = ()


def _fill_lookups() -> None:
    global _BUCKET_OF_MS, _STEP_OF_MS
    if not _STEP_OF_MS:
        _BUCKET_OF_MS, _STEP_OF_MS = _bucket_of_ms(), tuple(_ONE + ms for ms in range(MAX_MS + 1))


# A function's record, as the worker keeps it: one packed histogram per event (STARTED's is the pickup latency of
# its runs that ended, the others the durations of the runs that ended so), then the counts of its jobs that ended
# without running (``counted``), in EVENTS' order (STARTED's unused: jobs started are counted in ``started``). Its
# ended counts are its histograms' counts plus those; the queue's pickup histogram is the sum of its functions'.
_UNTIMED = len(EVENTS) * _WIDTH
# where each end's histogram starts in a record: ``finished`` takes these (no multiplication per job)
COMPLETED_AT, FAILED_AT, RETRIED_AT, ABORTED_AT = (event * _WIDTH for event in (COMPLETED, FAILED, RETRIED, ABORTED))
_RECORD = _UNTIMED + len(EVENTS)
_EMPTY_RECORD = (0,) * _RECORD


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


def _observe_out_of_range(record: list[int], at: int, ms: int) -> None:
    """An observation the hot paths' lookup does not cover: over MAX_MS (+Inf), or negative (hosts' clocks
    disagree, or this one was set back: counted as 0 ms)."""
    if ms > MAX_MS:
        record[at + _INF] += _ONE + ms
    else:
        record[at] += _ONE


class JobMetrics:
    """One worker's counters and histograms since it started."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self.records: dict[str, list[int]] = {}  # function ("" when unknown) -> its record (above)
        self.started: dict[str, int] = {}  # function -> jobs started
        self.redis_errors: dict[str, int] = {}  # what failed -> how many times
        _fill_lookups()

    def _add_function(self, function: str) -> list[int]:
        record = self.records[function] = [0] * _RECORD
        return record

    def _record(self, function: str) -> list[int]:
        record = self.records.get(function)
        return self._add_function(function) if record is None else record

    # Per job: its share of started_many (called once per fetched batch) and a finished. Measured by
    # ``python -m perf.metrics_cost`` (docs/performance.md): each bytecode here costs ~20 instructions a job.
    def started_many(self, deliveries: list[Delivery]) -> None:
        """Jobs just started (a batch, not empty): counted by function, in C, and with one increment when they all
        run one function, as they most often do. Their pickup latency is observed when they end (``finished``)."""
        started, first = self.started, deliveries[0].function
        if countOf(map(_FUNCTION, deliveries), first) == len(deliveries):
            started[first] = started.get(first, 0) + len(deliveries)
        else:
            _count_elements(started, map(_FUNCTION, deliveries))

    def finished(self, delivery: Delivery, at: int, end_ms: int) -> None:
        """A run ended at ``end_ms``: its duration observed in the end's histogram, which starts at ``at``
        (COMPLETED_AT, FAILED_AT, RETRIED_AT or ABORTED_AT), and its pickup latency, from its enqueue (or due)
        time to when the runner started it (``delivery.started_ms``, set before anything can end a run)."""
        try:
            record = self.records[delivery.function]
        except KeyError:
            record = self._add_function(delivery.function)
        started = delivery.started_ms
        ms = end_ms - started
        if ms >= 0:
            try:
                record[at + _BUCKET_OF_MS[ms]] += _STEP_OF_MS[ms]
            except IndexError:  # over MAX_MS
                _observe_out_of_range(record, at, ms)
        else:
            _observe_out_of_range(record, at, ms)
        ms = started - delivery.score
        if ms >= 0:
            try:
                record[_BUCKET_OF_MS[ms]] += _STEP_OF_MS[ms]  # STARTED's histogram, the pickup latency, comes first
            except IndexError:
                _observe_out_of_range(record, 0, ms)
        else:
            _observe_out_of_range(record, 0, ms)

    def counted(self, function: str, event: int) -> None:
        """A job that ended without running (expired, unknown to this worker): counted, not timed."""
        self._record(function)[_UNTIMED + event] += 1

    def redis_error(self, where: str) -> None:
        self.redis_errors[where] = self.redis_errors.get(where, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The totals so far, as plain JSON-able data (copies: the exporter's thread may read them): per function
        its counts in EVENTS' order and its duration histogram; histograms as bucket counts, sum, count."""
        jobs: dict[str, list[int]] = {}
        durations: dict[str, list[float]] = {}
        pickup = [0] * _WIDTH  # packed slots, summed over the functions (packed slots add up), then unpacked
        started, records = dict(self.started), dict(self.records)
        for function in started.keys() | records.keys():
            record = list(records.get(function, _EMPTY_RECORD))
            name = function or UNKNOWN
            histograms = [record[event * _WIDTH : (event + 1) * _WIDTH] for event in range(len(EVENTS))]
            ends = [_count(histograms[event]) + record[_UNTIMED + event] for event in range(COMPLETED, len(EVENTS))]
            jobs[name] = [started.get(function, 0), *ends]
            pickup = [*map(sum, zip(pickup, histograms[STARTED], strict=True))]
            durations[name] = _unpack([*map(sum, zip(*histograms[COMPLETED:], strict=True))])
        return {
            "queue": self.queue_name,
            "jobs": jobs,
            "durations": durations,
            "pickup": _unpack(pickup),
            "redis_errors": dict(self.redis_errors),
        }


def _count(slots: list[int]) -> int:
    return sum(slot >> _COUNT_SHIFT for slot in slots)


def _unpack(slots: list[int]) -> list[float]:
    """Packed slots -> bucket counts, sum (seconds), count (the snapshot's form)."""
    counts = [slot >> _COUNT_SHIFT for slot in slots]
    return [*counts, sum(slot & _SUM_MASK for slot in slots) / 1000, sum(counts)]


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
