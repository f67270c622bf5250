"""pool: a fast, reliable Redis job queue for asyncio, with arq's API."""

from .connections import ArqRedis, PoolRedis, RedisSettings, create_pool
from .cron import cron
from .functions import Retry, func
from .jobs import Job, JobStatus
from .worker import Worker, check_health, run_worker

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
