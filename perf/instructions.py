"""Instructions per noop job of the in-process worker probe, counted by valgrind (callgrind):
``python -m perf.instructions``.

On this project's shared 2-core machine the worker probe's CPU time per job moves ±20% from run to run, which
hides a 3% change; the instruction count moves ±0.5%. So A/B a change to the worker's hot path by running
this in both checkouts. It runs ``perf.hotpath --probe worker`` under callgrind twice, with N and 3N jobs, and
divides the difference by 2N: start-up, imports and the enqueue of the jobs cancel out. The probe's Redis runs
outside valgrind. Needs valgrind (``apt install valgrind``); about two minutes.

An instruction is not a microsecond (a syscall or a cache miss is one instruction), so check a gain that
matters with ``perf.run`` too; but the count says at once whether a change did anything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys


def instructions(jobs: int, extra: list[str]) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "perf.hotpath", "--probe", "worker", "--runs", "1", "--jobs", str(jobs), *extra]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", run.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="N: the runs have N and 3N jobs")
    parser.add_argument("--log", choices=["info", "off"], default="info")
    parser.add_argument("--no-auto-pipeline", action="store_true")
    parser.add_argument("--metrics", action="store_true", help="with the worker's Prometheus counting on")
    parser.add_argument("--partitions", type=int, default=1, help="a queue of N partitions")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("perf.instructions: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 1
    extra = ["--log", args.log] + (["--no-auto-pipeline"] if args.no_auto_pipeline else [])
    extra += ["--metrics"] if args.metrics else []
    extra += ["--partitions", str(args.partitions)]
    few, many = instructions(args.jobs, extra), instructions(3 * args.jobs, extra)
    print(f"worker: {(many - few) / (2 * args.jobs):,.0f} instructions per noop job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
