"""Calls of typed tasks, right and wrong, for mypy (tests/test_typed_tasks.py runs it on this file).

A line that mypy must flag ends with ``# error``; every other line must pass. Never run: only type-checked."""

from __future__ import annotations

from pool import Ctx, Job, PoolRedis, task


@task
async def add(ctx: Ctx, a: int, b: int = 0) -> int:
    return a + b


@task(timeout=5, max_tries=2)
async def greet(ctx: Ctx, name: str, *, shout: bool = False) -> str:
    return name.upper() if shout else name


send_report = task("send_report", returns=bool)  # by name: a producer without the worker's code


@task(name="app.resize")  # a stub of a function the producer cannot import: its signature, no body
async def resize(ctx: Ctx, path: str, width: int) -> str:
    raise NotImplementedError  # runs on the worker


async def right(redis: PoolRedis) -> None:
    job: Job[int] = await add.enqueue(redis, 1, 2)
    total: int = await job.result()
    await add.enqueue(redis, 1, b=2)
    await add.using(redis, defer_by=10, job_id="add:1", priority=2).enqueue(1)
    text: str = await (await greet.enqueue(redis, "ann", shout=True)).result()
    ok: bool = await (await send_report.enqueue(redis, "any", 1, thing=[])).result()
    resized: str = await (await resize.using(redis, defer_by=5).enqueue("a.png", width=640)).result()
    direct: int = await add({}, 1, 2)
    untyped = await redis.enqueue_job("add", "not", "checked")
    print(total, text, ok, resized, direct, untyped)


async def wrong(redis: PoolRedis) -> None:
    await add.enqueue(redis, "1", 2)  # error
    await add.enqueue(redis)  # error
    await add.enqueue(redis, 1, c=3)  # error
    await add.enqueue(1, 2)  # error
    await add.using(redis, defer_by="soon").enqueue(1)  # error
    await add.using(redis, _defer_by=5).enqueue(1)  # error
    await greet.enqueue(redis, "ann", True)  # error
    text: int = await (await greet.enqueue(redis, "ann")).result()  # error
    flag: str = await (await send_report.enqueue(redis)).result()  # error
    await resize.enqueue(redis, "a.png")  # error
    print(text, flag)


@task  # error
def not_async(ctx: Ctx, a: int) -> int:
    return a


@task  # error
async def no_ctx() -> int:
    return 1
