"""Job functions several test files run: each counts its runs in ``runs:<job_id>`` (INCR), so a job that runs
twice shows as a count of 2."""

from __future__ import annotations

import asyncio
from typing import Any


async def count_run(ctx: dict[str, Any]) -> int:
    return int(await ctx["redis"].incr("runs:" + ctx["job_id"]))


async def slow(ctx: dict[str, Any], seconds: float) -> int:
    """Counts its run first, then takes ``seconds``: a test can see it started while it still runs."""
    runs = int(await ctx["redis"].incr("runs:" + ctx["job_id"]))
    await asyncio.sleep(seconds)
    return runs
