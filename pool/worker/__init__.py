"""The worker layer: ``Worker`` (main.py) and what it runs: execution, deadlines, completion batching, cron
(cron.py, scheduler.py, leader.py), ``func``/``Retry``, and the inline test pool.

``pool.worker`` is arq's import path for the worker: its names stay importable from here.
"""

from .functions import Function, Retry, func
from .main import (
    FETCH_BLOCK_MS,
    STARVATION_GUARD,
    Worker,
    async_check_health,
    check_health,
    create_worker,
    get_kwargs,
    run_worker,
)

__all__ = [
    "FETCH_BLOCK_MS",
    "STARVATION_GUARD",
    "Function",
    "Retry",
    "Worker",
    "async_check_health",
    "check_health",
    "create_worker",
    "func",
    "get_kwargs",
    "run_worker",
]
