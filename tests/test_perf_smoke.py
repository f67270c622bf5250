"""The benchmark suite is part of the product: ``python -m perf.run --quick`` must keep working (pool and pool+all,
its every-feature entry, here; the peers live in .venv-bench, see `make bench`). Figures are not checked (speed is
measured in perf/, never in tests), only that every workload ran and every job completed exactly once."""

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
        [sys.executable, "-m", "perf.run", "--quick", "--libs", "pool,pool+all", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Every run completed each job exactly once." in proc.stdout, proc.stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["libs"] == ["pool", "pool+all"]
    assert "noop jobs/s, 1 process" in report["markdown"]
    assert "- capacity: one Redis core carries" in report["markdown"]
    # pinned where CPUs 0 and 1 are there to pin to, else the reason it was skipped
    assert "- pinned check" in report["markdown"] or "the pinned check was skipped" in report["markdown"]
    assert not report["raw"]["capacity"]["pool"][0].get("error"), report["raw"]["capacity"]
    assert "Traceback" not in proc.stdout + proc.stderr
