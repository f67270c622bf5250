"""The benchmark suite is part of the product: ``python -m perf.run --quick`` must keep working (pool alone here;
the peers live in .venv-bench, see `make bench`). Figures are not checked (speed is measured in perf/, never in
tests), only that every workload ran and every job completed exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_every_job_completes_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "perf.run", "--quick", "--libs", "pool", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Every run completed each job exactly once." in proc.stdout, proc.stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["libs"] == ["pool"]
    assert "noop jobs/s, 1 process" in report["markdown"]
    assert "Traceback" not in proc.stdout + proc.stderr
