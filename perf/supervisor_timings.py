"""How fast the supervisor replaces a worker killed with -9, and how long a jobless reload takes.

``python -m perf.supervisor_timings [--reps N]``: `pool start --procs 2` on a private redis-server; each rep
kills one worker with SIGKILL and times until a replacement reports READY, then sends `pool reload` and times
until both workers were replaced and the old ones have exited. Prints each figure and the median.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.redis_server import RedisServer

APP = "async def noop(ctx):\n    return None\n\nclass WorkerSettings:\n    functions = [noop]\n"


def wait(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.002)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.supervisor_timings")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as server:
        app = Path(tmp)
        (app / "timingapp.py").write_text(APP)
        log_path, pidfile = app / "pool.log", app / "pool.pid"
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        base = [sys.executable, "-m", "pool"]
        with log_path.open("wb") as log:
            sup = subprocess.Popen(
                [
                    *base,
                    "start",
                    "--procs",
                    "2",
                    "--pidfile",
                    str(pidfile),
                    "--redis",
                    server.url,
                    "timingapp.WorkerSettings",
                ],
                cwd=app,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        count = lambda text: log_path.read_text().count(text)  # noqa: E731
        try:
            wait(lambda: count(") ready") >= 2)
            kills, reloads = [], []
            for _ in range(args.reps):
                time.sleep(1.0)  # the workers have served a while: a kill, not a crash loop
                before, victim = count(") ready"), psutil.Process(sup.pid).children()[0]
                started = time.perf_counter()
                victim.send_signal(signal.SIGKILL)
                wait(lambda before=before: count(") ready") > before)
                kills.append(time.perf_counter() - started)
            for _ in range(args.reps):
                time.sleep(1.0)
                old = {p.pid for p in psutil.Process(sup.pid).children()}
                before = count("replaced by reloaded code")
                started = time.perf_counter()
                sup.send_signal(signal.SIGHUP)  # what `pool reload` sends
                wait(lambda before=before: count("replaced by reloaded code") >= before + 2)
                wait(lambda old=old: not old & {p.pid for p in psutil.Process(sup.pid).children()})
                wait(lambda: len(psutil.Process(sup.pid).children()) == 2 and count(") ready") >= 2)
                reloads.append(time.perf_counter() - started)
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(60)
    print(
        "kill -9 -> replacement ready (s):",
        " ".join(f"{t:.3f}" for t in kills),
        f"median {statistics.median(kills):.3f}",
    )
    print(
        "jobless reload, 2 workers (s):   ",
        " ".join(f"{t:.3f}" for t in reloads),
        f"median {statistics.median(reloads):.3f}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
