"""How fast ``pool migrate-from-arq`` moves jobs: ``python -m perf.arq_migration`` (after ``make arq-client``).

Real arq 0.26.3 (its own venv, tests/arq_client/produce.py) enqueues ``--jobs`` plain pickled jobs into a private
redis-server, then ``pool migrate-from-arq`` moves them, timed from its start to its exit (Python's start-up and
the settings import included). Each job costs seven round trips (whether pool holds the id, claim, read, enqueue,
removal), one after another.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
ARQ_PYTHON = Path(os.environ.get("POOL_TEST_ARQ_PYTHON") or ROOT / ".venv-arq-client" / "bin" / "python")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not ARQ_PYTHON.exists():
        sys.exit(f"arq's venv is missing ({ARQ_PYTHON}): run `make arq-client`")
    with RedisServer() as server:
        for _ in range(args.rounds):
            server.client().flushall()
            subprocess.run(
                [str(ARQ_PYTHON), "-m", "tests.arq_client.produce", server.url, "many", str(args.jobs)],
                cwd=ROOT,
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
                check=True,
                capture_output=True,
            )
            command = ["migrate-from-arq", "tests.apps.arq_jobs.WorkerSettings", "--redis", server.url]
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "pool", *command, "--serializer", "pickle"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
            )
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(proc.stdout + proc.stderr)
            print(f"{args.jobs} jobs moved in {elapsed:.2f} s: {args.jobs / elapsed:,.0f} jobs/s")


if __name__ == "__main__":
    main()
