"""pool: a fast, reliable Redis job queue for asyncio, with arq's API."""

from .client.connections import ArqRedis, PoolRedis, create_pool
from .client.jobs import Job, JobStatus

# `cron` from the module pool.cron (re-exporting pool.worker.cron): importing the module here binds the
# function over it, where a later first `import pool.cron` would rebind `pool.cron` to the module.
from .cron import cron
from .redis.settings import RedisSettings
from .version import VERSION
from .worker.functions import Retry, func
from .worker.main import Worker, check_health, run_worker
from .worker.tasks import Ctx, JobExists, Task, TaskRef, task

__version__ = VERSION

__all__ = [
    "VERSION",
    "ArqRedis",
    "Ctx",
    "Job",
    "JobExists",
    "JobStatus",
    "PoolRedis",
    "RedisSettings",
    "Retry",
    "Task",
    "TaskRef",
    "Worker",
    "check_health",
    "create_pool",
    "cron",
    "func",
    "run_worker",
    "task",
]
