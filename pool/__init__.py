"""pool: a fast, reliable Redis job queue for asyncio, with arq's API."""

from .client.connections import ArqRedis, PoolRedis, create_pool
from .client.jobs import Job, JobStatus
from .redis.settings import RedisSettings
from .worker.cron import cron
from .worker.functions import Retry, func
from .worker.main import Worker, check_health, run_worker

__version__ = "0.1.0"

__all__ = [
    "ArqRedis",
    "Job",
    "JobStatus",
    "PoolRedis",
    "RedisSettings",
    "Retry",
    "Worker",
    "check_health",
    "create_pool",
    "cron",
    "func",
    "run_worker",
]
