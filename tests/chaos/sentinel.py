"""Sentinel failovers under load: ``python -m tests.chaos.sentinel`` (``make chaos-sentinel``).

For each fault (``SENTINEL FAILOVER``, kill -9 of the master then its return as a replica) and with the durability
option off and on (``wait_replicas=0`` / ``1``), a fresh Sentinel set (tests/sentinel_set.py) takes load from
producers while ``pool start --procs N`` runs the jobs, and the fault strikes ``--rounds`` times. Each pass prints
one summary line (tests/failover_load.py says what each figure means); the run fails (exit 1) when a durable pass
lost an acknowledged enqueue or ran a job twice as the same try. The figures without durability are what the
option buys: they are reported, not judged. The short variant of this run is tests/test_sentinel_failover.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from tests.failover_load import FailoverReport, run_through_fault
from tests.sentinel_set import SentinelSet
from tests.supervisor_utils import Supervisor, supervisors

SETTINGS = "tests.apps.failover.WorkerSettings"


async def one_pass(fault: str, wait_replicas: int, args: argparse.Namespace, run_dir: Path) -> FailoverReport:
    with SentinelSet() as sentinel_set, supervisors() as started:
        options = f"wait_replicas={wait_replicas}&sentinel_check_interval={args.check_interval}"
        url = f"{sentinel_set.url}{'&' if '?' in sentinel_set.url else '?'}{options}"
        supervisor = Supervisor(run_dir, "pool", url, SETTINGS, "--procs", str(args.procs))
        started.append(supervisor)
        supervisor.wait_ready(args.procs, timeout=30)

        async def strike() -> None:
            for round_number in range(args.rounds):
                if round_number:
                    await asyncio.sleep(args.between)
                await asyncio.to_thread(sentinel_set.wait_replicas_in_sync, 60)
                if fault == "failover":
                    await asyncio.to_thread(sentinel_set.failover)
                else:
                    await asyncio.to_thread(sentinel_set.kill_master)
                    await asyncio.to_thread(sentinel_set.restart_old, as_replica=True)

        settings = sentinel_set.settings(wait_replicas=wait_replicas, sentinel_check_interval=args.check_interval)
        return await run_through_fault(
            settings,
            run_dir,
            strike,
            producers=args.producers,
            before_s=args.before,
            after_s=args.after,
            prefix=f"{fault}-{wait_replicas}",
        )


async def main(args: argparse.Namespace) -> int:
    failed = False
    for fault in args.faults:
        for wait_replicas in (0, 1):
            with tempfile.TemporaryDirectory(prefix="pool-sentinel-chaos-") as directory:
                report = await one_pass(fault, wait_replicas, args, Path(directory))
            print(report.line(f"{fault} x{args.rounds}, wait_replicas={wait_replicas}"), flush=True)
            if wait_replicas and (report.lost or report.same_try_twice):
                failed = True
    print("checks=" + ("FAILED" if failed else "ok"))
    return 1 if failed else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.sentinel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", nargs="+", choices=["failover", "kill"], default=["failover", "kill"])
    parser.add_argument("--rounds", type=int, default=3, help="faults per pass (3)")
    parser.add_argument("--between", type=float, default=15.0, help="seconds between faults (15)")
    parser.add_argument("--procs", type=int, default=2, help="workers of `pool start` (2)")
    parser.add_argument("--producers", type=int, default=3, help="enqueueing tasks (3)")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the first fault (3)")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after the last fault (5)")
    parser.add_argument("--check-interval", type=float, default=1.0, help="sentinel_check_interval (1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv[1:]))))
