"""Fills arq's queue with real arq (run as ``<arq venv>/bin/python -m tests.arq_client.produce URL ACTION``).

arq 0.26 pins redis-py < 6, so it runs in a venv of its own (``make arq-client``) and the tests run this as a
subprocess. It imports arq only, nothing of pool. Prints a JSON object: what it enqueued.

ACTION ``mixed``: one job arq already tried (a real arq burst worker raised Retry on its first try), then a plain
job, a deferred one, one with ``_job_id``, one with kwargs, one whose argument msgpack cannot carry (complex) and
one naming a function pool's settings lack, and a deferred one arq was asked to abort.
ACTION ``many N``: N plain jobs with ids job-0 ... job-N-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import Any

from arq import Retry, Worker, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job


async def flaky(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    raise Retry(defer=1.5)  # arq's retry: back in its queue, arq:retry:<id> = 1


async def mixed(url: str) -> dict[str, Any]:
    settings = RedisSettings.from_dsn(url)
    redis = await create_pool(settings)
    jobs: dict[str, Any] = {}

    async def enqueue(label: str, *args: Any, **kwargs: Any) -> None:
        job = await redis.enqueue_job(*args, **kwargs)
        assert job is not None
        options = {k for k in kwargs if k.startswith("_")}
        plain_kwargs = {k: v for k, v in kwargs.items() if k not in options}
        jobs[label] = {"id": job.job_id, "args": repr(list(args[1:])), "kwargs": repr(sorted(plain_kwargs.items()))}

    await enqueue("retried", "flaky", "again", _job_id="retried-job")
    worker = Worker(
        functions=[flaky], redis_settings=settings, burst=True, max_burst_jobs=1, poll_delay=0.05, handle_signals=False
    )
    await worker.main()
    await worker.close()
    await enqueue("plain", "record", 1, "a")
    await enqueue("deferred", "record", "later", _defer_by=2)
    await enqueue("custom_id", "record", "mine", _job_id="custom-id")
    await enqueue("kwargs", "record", 5, x=1, y=[1, 2], when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    await enqueue("complex", "record", complex(1, 2), _job_id="complex-arg")
    await enqueue("unknown", "not_in_pool", _job_id="unknown-function")
    await enqueue("aborted", "record", "cancelled", _defer_by=60, _job_id="aborted-job")
    with contextlib.suppress(asyncio.TimeoutError):  # no arq worker runs: the request stays in arq:abort
        await Job("aborted-job", redis).abort(timeout=0.05, poll_delay=0.01)
    scores = dict(await redis.zrange("arq:queue", 0, -1, withscores=True))
    for job in jobs.values():
        job["score"] = int(scores[job["id"].encode()])
    await redis.aclose()
    return jobs


async def many(url: str, count: int) -> dict[str, Any]:
    redis = await create_pool(RedisSettings.from_dsn(url))
    for i in range(count):
        assert await redis.enqueue_job("record", i, _job_id=f"job-{i}") is not None
    await redis.aclose()
    return {"count": count}


def main() -> None:
    url, action, *rest = sys.argv[1:]
    result = asyncio.run(mixed(url) if action == "mixed" else many(url, int(rest[0])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
