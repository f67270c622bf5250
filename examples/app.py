"""A small pool app: the jobs the demo runs. Run a worker for it with ``pool worker examples.app.WorkerSettings``."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from pool import Retry, func


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fetch_page(ctx: dict[str, Any], url: str) -> dict[str, Any]:
    """Stands in for I/O: waits a little, as a real HTTP call would."""
    await asyncio.sleep(0.2)
    return {"url": url, "status": 200, "try": ctx["job_try"]}


async def flaky(ctx: dict[str, Any]) -> str:
    """Fails twice, then succeeds: ``Retry`` puts it back with a delay."""
    if ctx["job_try"] < 3:
        raise Retry(defer=0.1)
    return f"succeeded on try {ctx['job_try']}"


async def broken(ctx: dict[str, Any]) -> None:
    raise ValueError("this job always fails")


def checksum(ctx: dict[str, Any], text: str) -> str:
    """A sync function: runs in a thread, so it cannot block the worker's event loop."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def startup(ctx: dict[str, Any]) -> None:
    ctx["greeting"] = "hello from on_startup"


class WorkerSettings:
    functions = [add, fetch_page, flaky, func(broken, max_tries=1), checksum]
    on_startup = startup
    max_jobs = 20
