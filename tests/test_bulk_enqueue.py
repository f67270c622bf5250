"""``enqueue_many`` cuts its script calls by size as well as by count: Redis refuses any argument longer than
``proto-max-bulk-len`` (512 MB by default, 1 MB at the least), and a call carries its jobs in one argument."""

from __future__ import annotations

from collections.abc import Callable

from pool import RedisSettings, create_pool
from pool.storage.keys import QueueKeys
from tests.redis_server import RedisServer

KEYS = QueueKeys("default")


async def test_a_bulk_enqueue_of_large_jobs_stays_under_the_servers_bulk_length_limit(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(config={"proto-max-bulk-len": "1mb"})  # the least Redis allows
    client = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        specs = [client.prepare("task", i, b"x" * 300_000, _job_id=f"big-{i}") for i in range(12)]
        specs += [client.prepare("task", i, _job_id=f"small-{i}") for i in range(500)]  # still ~200 per call
        jobs = await client.enqueue_many(specs)
        assert [job.job_id if job else None for job in jobs] == [spec.job_id for spec in specs]
        entries = await client.xrange(KEYS.stream)
        assert [fields[b"id"].decode() for _, fields in entries] == [spec.job_id for spec in specs]
    finally:
        await client.aclose()
