"""pool's side of tests/test_migrate_from_arq.py: the functions arq's jobs name, each recording how it ran."""

from __future__ import annotations

import json
from typing import Any


async def record(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """Appends its id, try and arguments (as repr, to compare with what arq was given) to the list ``ran``."""
    entry = {
        "id": ctx["job_id"],
        "try": ctx["job_try"],
        "args": repr(list(args)),
        "kwargs": repr(sorted(kwargs.items())),
    }
    await ctx["redis"].rpush("ran", json.dumps(entry))


async def flaky(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    await record(ctx, *args, **kwargs)


class WorkerSettings:
    functions = [record, flaky]
    job_completion_wait = 0
