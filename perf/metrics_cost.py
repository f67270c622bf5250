"""Instructions a worker spends per job counting for Prometheus (``--metrics``), counted by valgrind (callgrind):
``python -m perf.metrics_cost``.

``perf.instructions`` run with and without ``--metrics`` gives the whole worker's count per noop job, but on this
project's shared machine that count moves by ~1% from run to run, as much as what is measured. This one is exact
to the instruction, run after run: it replays, in a loop with no Redis and no event loop, what a worker does per
job, once with ``Worker.metrics`` None and once with a ``JobMetrics``, and prints the difference per job. Per job
(as pool/worker/main.py does): the runner's start timestamp, a turn of ``started_many`` (called once per batch of
``--batch`` jobs, with the batch's ``now_ms``), and ``Worker._commit``'s part: its timestamp, the outcome's event,
``finished``. Each side runs under callgrind twice, with N and 3N jobs, and the difference is divided by 2N: start-up
and imports cancel out. Needs valgrind (``apt install valgrind``); about half a minute.

Divide by ``perf.instructions``' count with metrics off for the cost as a share of a noop job.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from pool.storage.queue import Delivery
from pool.utils import now_ms
from pool.worker.execution import Outcome, OutcomeKind
from pool.worker.metrics import ABORTED_AT, COMPLETED_AT, FAILED_AT, RETRIED_AT, JobMetrics

_COMPLETE, _FAILED, _RETRIED, _ABORTED = (
    OutcomeKind.COMPLETE,
    OutcomeKind.FAILED,
    OutcomeKind.RETRIED,
    OutcomeKind.ABORTED,
)


def replay(jobs: int, batch: int, metrics: JobMetrics | None) -> int:
    """``jobs`` completed noop jobs as the worker counts them (see Worker._launch, JobRunner._run, Worker._commit).
    Returns the worker's last_job_at, so nothing is optimised away."""
    deliveries = [Delivery(f"1-{i}", f"job{i}", function="noop") for i in range(batch)]
    outcome = Outcome(_COMPLETE)
    last_job_at = 0
    for _ in range(jobs // batch):
        enqueued = now_ms()
        for delivery in deliveries:  # both sides alike: the jobs' enqueue times, the runner's start_ms
            delivery.score = enqueued
            delivery.started_ms = now_ms()
            delivery.finished_ms = now_ms()
        if metrics is not None:  # Worker._launch
            metrics.started_many(deliveries)
        for delivery in deliveries:  # Worker._commit
            now = time.time()
            last_job_at = int(now)
            if metrics is not None:
                kind = outcome.kind
                at = (
                    COMPLETED_AT
                    if kind is _COMPLETE
                    else FAILED_AT
                    if kind is _FAILED
                    else RETRIED_AT
                    if kind is _RETRIED
                    else ABORTED_AT
                    if kind is _ABORTED
                    else None
                )
                if at is not None:
                    metrics.finished(delivery, at, delivery.finished_ms or int(now * 1000))
    return last_job_at


def instructions(jobs: int, batch: int, metrics: bool) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "perf.metrics_cost", "--replay", str(jobs), "--batch", str(batch)]
    command += ["--metrics"] if metrics else []
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same str hashes, so the same dict probes, every run
    run = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    match = re.search(r"Collected : (\d+)", run.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000, help="N: the runs have N and 3N jobs")
    parser.add_argument("--batch", type=int, default=25, help="jobs per fetch (perf.hotpath's worker: 25)")
    parser.add_argument("--replay", type=int, help=argparse.SUPPRESS)  # the child valgrind runs
    parser.add_argument("--metrics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jobs < 1 or args.batch < 1 or args.jobs % args.batch:
        parser.error("--jobs and --batch must be positive, --jobs a multiple of --batch")
    if args.replay is not None:
        counting = JobMetrics("default") if args.metrics else None
        replay(args.replay, args.batch, counting)
        if counting is not None:  # every job counted, once
            assert counting.snapshot()["jobs"]["noop"][:2] == [args.replay, args.replay]
        return 0
    if shutil.which("valgrind") is None:
        print("perf.metrics_cost: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 1
    per_job: dict[bool, float] = {}
    for metrics in (False, True):
        few, many = instructions(args.jobs, args.batch, metrics), instructions(3 * args.jobs, args.batch, metrics)
        per_job[metrics] = (many - few) / (2 * args.jobs)
    print(
        f"metrics off: {per_job[False]:,.0f}, on: {per_job[True]:,.0f} instructions per job "
        f"(batches of {args.batch}): counting costs {per_job[True] - per_job[False]:,.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
