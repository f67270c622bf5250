"""The worker layer: ``Worker`` (main.py) and what it runs: execution, deadlines, completion batching, cron
(cron.py, scheduler.py, leader.py), ``func``/``Retry``, and the inline test pool.

``pool.worker`` is arq's import path for the worker: its names stay importable from here.
"""

from ..storage.serializers import JobExecutionFailed
from .functions import Function, Retry, RetryJob, func
from .main import (
    FETCH_BLOCK_MS,
    STARVATION_GUARD,
    FailedJobs,
    Worker,
    async_check_health,
    async_health_lines,
    check_health,
    create_worker,
    get_kwargs,
    run_worker,
)

__all__ = [
    "FETCH_BLOCK_MS",
    "STARVATION_GUARD",
    "FailedJobs",
    "Function",
    "JobExecutionFailed",
    "Retry",
    "RetryJob",
    "Worker",
    "async_check_health",
    "async_health_lines",
    "check_health",
    "create_worker",
    "func",
    "get_kwargs",
    "run_worker",
]
