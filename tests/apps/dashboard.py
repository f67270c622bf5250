"""Settings for the dashboard's tests (tests/test_dashboard*.py), run as ``pool worker`` / ``pool dashboard
tests.apps.dashboard.WorkerSettings``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pool import cron


async def double(ctx: dict[str, Any], x: Any) -> Any:
    return x * 2


async def fails_until_fixed(ctx: dict[str, Any], flag_path: str) -> str:
    """Fails until the file ``flag_path`` exists: a failed job that succeeds once requeued after a fix."""
    if not os.path.exists(flag_path):
        raise RuntimeError(f"not fixed yet: {flag_path} is missing")
    return "fixed"


async def sleep_for(ctx: dict[str, Any], seconds: float) -> None:
    await asyncio.sleep(seconds)


async def leap_day_report(ctx: dict[str, Any]) -> None:
    """A cron job that ticks on 29 February only: listed by the cron page, never enqueued during a test."""


class WorkerSettings:
    functions = [double, fails_until_fixed, sleep_for]
    cron_jobs = [cron(leap_day_report, month=2, day=29, hour=3, minute=0, second=0)]
    job_completion_wait = 0
    heartbeat_interval = 0.2
