"""Settings for tests/test_cli.py, run as ``pool worker tests.apps.basic.<Settings>``.

Read at import: ``POOL_TEST_DEAD_PORT``, a port nothing listens on (:class:`DeadRedisSettings`), and
``POOL_TEST_AUTH_URL``, a Redis URL with a wrong password (:class:`WrongPasswordSettings`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pool import RedisSettings


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def slow(ctx: dict[str, Any]) -> int:
    """Mark the start, then run long on the first try only; returns the try it finished on."""
    await ctx["redis"].set("started:" + ctx["job_id"], ctx["job_try"])
    await ctx["redis"].incr("runs:" + ctx["job_id"])
    if ctx["job_try"] == 1:
        await asyncio.sleep(30)
    return int(ctx["job_try"])


class WorkerSettings:
    functions = [add, slow]
    job_completion_wait = 0
    heartbeat_interval = 0.2


class NoFunctions:
    functions: list[Any] = []


class DeadRedisSettings:
    functions = [add]
    redis_settings = RedisSettings(
        host="127.0.0.1", port=int(os.environ.get("POOL_TEST_DEAD_PORT", "1")), conn_retries=0, conn_timeout=1
    )


class WrongPasswordSettings:
    functions = [add]
    redis_settings = RedisSettings.from_dsn(os.environ.get("POOL_TEST_AUTH_URL", "redis://127.0.0.1:1/0"))
    redis_settings.conn_retries = 0


class BadQueueName:
    functions = [add]
    queue_name = "bad{name}"
