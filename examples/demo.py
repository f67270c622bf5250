"""``make demo``: a real worker process running real jobs on a local Redis, and their results.

Uses ``$POOL_REDIS_URL`` when set; otherwise starts a private redis-server on a free port (never the machine's
6379) and stops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from contextlib import ExitStack

from pool import Job, RedisSettings, create_pool
from pool.utils import redact_url
from tests.redis_server import RedisServer


async def enqueue_and_collect(url: str) -> int:
    redis = await create_pool(RedisSettings.from_dsn(url))
    jobs: list[tuple[str, Job | None]] = [
        ("add(2, 3)", await redis.enqueue_job("add", 2, 3)),
        ("fetch_page(...)", await redis.enqueue_job("fetch_page", "https://example.com")),
        ("flaky()", await redis.enqueue_job("flaky")),
        ("broken()", await redis.enqueue_job("broken")),
        ("checksum('pool')", await redis.enqueue_job("checksum", "pool")),
        ("add(1, 1) in 0.5s", await redis.enqueue_job("add", 1, 1, _defer_by=0.5)),
        ("add(4, 4) unique", await redis.enqueue_job("add", 4, 4, _job_id="demo-unique")),
        ("add(4, 4) same id", await redis.enqueue_job("add", 4, 4, _job_id="demo-unique")),
    ]
    print(f"\nenqueued {sum(job is not None for _, job in jobs)} jobs; waiting for results...\n", flush=True)
    failures = 0
    rows = []
    for label, job in jobs:
        if job is None:
            rows.append((label, "refused: a job with that id is already queued"))
            continue
        try:
            rows.append((label, f"→ {await job.result(timeout=15)!r}"))
        except Exception as exc:  # the demo shows failures as results
            rows.append((label, f"✗ {type(exc).__name__}: {exc}"))
            failures += 1
    await redis.aclose()
    print("\nresults:")
    for label, text in rows:
        print(f"  {label:<20} {text}")
    return failures


def main() -> int:
    with ExitStack() as stack:
        url = os.environ.get("POOL_REDIS_URL")
        if not url:
            server = stack.enter_context(RedisServer())
            url = server.url
            print(f"started a private redis-server at {url}")
        else:
            print(f"using POOL_REDIS_URL={redact_url(url)}")
        worker = subprocess.Popen(
            [sys.executable, "-m", "pool", "worker", "examples.app.WorkerSettings", "--redis", url],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        try:
            failures = asyncio.run(enqueue_and_collect(url))
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=30)
        print(f"\nworker stopped with exit code {code}; {failures} job(s) failed as designed (broken())")
        return 0 if code == 0 and failures == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
