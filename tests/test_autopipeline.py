"""Auto-pipelining of jobs' commands (pool/redis/autopipeline.py), against a real Redis: every caller gets its own
reply or error, blocking commands are not queued behind, scripts still load themselves, and the worker hands
jobs the pipelined client unless told not to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import DataError, ResponseError

from pool import JobStatus, PoolRedis, RedisSettings, create_pool
from pool.connections import AutoPipelinedRedis
from pool.redis.autopipeline import must_bypass
from tests.worker_utils import run_burst, running_worker


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[PoolRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def test_concurrent_commands_each_get_their_own_reply_or_error(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    await plain.set("text", "not a number")
    counts = await asyncio.gather(*(client.incr("counter") for _ in range(250)))
    assert sorted(counts) == list(range(1, 251))  # every INCR counted once, each caller its own value
    replies = await asyncio.gather(
        client.set("a", "1"), client.incr("text"), client.get("a"), client.hset("h", mapping={"f": "v"}),
        client.hgetall("h"), return_exceptions=True,
    )  # fmt: skip
    assert replies[0] is True
    assert isinstance(replies[1], ResponseError)  # only that caller sees the error
    assert replies[2:] == [b"1", 1, {b"f": b"v"}]  # reply callbacks applied as without pipelining
    assert await plain.get("counter") == b"250"


async def test_more_commands_than_one_pipeline_holds(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    replies = await asyncio.gather(*(client.rpush("list", i) for i in range(2500)))
    assert sorted(replies) == list(range(1, 2501))
    assert [int(x) for x in await plain.lrange("list", 0, -1)] == list(range(2500))  # order kept


async def test_blocking_command_does_not_hold_up_the_others(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    waiting = asyncio.create_task(client.blpop(["wake"], timeout=30))
    await asyncio.sleep(0)  # let BLPOP go out first
    assert await client.set("k", "v") is True  # answered while BLPOP still blocks
    assert await client.get("k") == b"v"
    assert not waiting.done()
    await plain.rpush("wake", "now")
    assert await asyncio.wait_for(waiting, 5) == (b"wake", b"now")


async def test_scripts_reload_after_script_flush(plain: PoolRedis) -> None:
    """Enqueueing from a job goes through EVALSHA; after a SCRIPT FLUSH the NOSCRIPT error reaches the script
    object through the pipeline, and it loads itself again."""
    client = plain.auto_pipelined()
    assert await client.enqueue_job("anything", _job_id="first") is not None
    await plain.script_flush()
    assert await client.enqueue_job("anything", _job_id="second") is not None
    assert await plain.exists("pool:{default}:job:second")


async def test_pipelines_take_the_fast_path_and_fall_back_when_its_connection_is_killed(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    assert isinstance(client, AutoPipelinedRedis) and client.fast_path is not None
    assert sorted(await asyncio.gather(*(client.incr("n") for _ in range(100)))) == list(range(1, 101))
    assert len(client.fast_path._idle) == 1  # the pipeline went out on the fast path's connection, kept for the next
    killed = await plain.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert int(killed) >= 1
    # the fast path writes into a dead connection: nothing reached Redis, redis-py's pipeline sends it all again
    assert sorted(await asyncio.gather(*(client.incr("n") for _ in range(100)))) == list(range(101, 201))
    assert len(client.fast_path._idle) == 0  # the dead connection was dropped, not kept
    assert await plain.get("n") == b"200"  # every command ran once
    await client.aclose()


async def test_a_value_redis_py_cannot_send_or_a_failing_callback_fails_only_its_own_caller(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    await plain.zadd("z", {"a": 1.5})

    def bad_score(value: object) -> float:
        raise ValueError(f"bad score {value!r}")

    replies = await asyncio.gather(
        client.incr("n"),
        client.set("k", None),  # type: ignore[arg-type]  # redis-py refuses None: DataError
        client.zrange("z", 0, -1, withscores=True, score_cast_func=bad_score),  # fails in the reply's callback
        client.incr("n"),
        return_exceptions=True,
    )
    assert replies[0] == 1 and replies[3] == 2
    assert isinstance(replies[1], DataError)
    assert isinstance(replies[2], ValueError)
    await client.aclose()


async def test_a_closed_pipelined_client_keeps_no_fast_path_connection(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    assert isinstance(client, AutoPipelinedRedis) and client.fast_path is not None
    assert await client.incr("n") == 1
    assert len(client.fast_path._idle) == 1
    await client.aclose()
    assert client.fast_path._idle == []
    assert await client.incr("n") == 2  # the shared pool is open: the standard path
    assert client.fast_path._idle == []  # and the fast path opened nothing new


async def test_closing_the_pipelined_client_keeps_the_pool_open(plain: PoolRedis) -> None:
    client = plain.auto_pipelined()
    assert await client.ping()
    await client.aclose()
    assert await plain.ping()


@pytest.mark.parametrize(
    ("command", "bypass"),
    [
        (("INCR", "x"), False),
        (("BLPOP", "x", 0), True),
        ((b"brpop", "x", 0), True),
        (("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), False),
        (("XREADGROUP", "GROUP", "g", "c", "BLOCK", 10, "STREAMS", "s", ">"), True),
        (("XREAD", b"BLOCK", 10, b"STREAMS", "s", "$"), True),  # as redis-py's xread() sends it
        ((b"XREADGROUP", b"GROUP", "g", "c", b"block", 10, b"STREAMS", "s", ">"), True),
        (("XREAD", b"COUNT", 1, b"STREAMS", "s", "0"), False),
        (("WATCH", "x"), True),
        (("CLIENT SETNAME", "job"), True),  # redis-py names subcommands in one argument
        (("CONFIG GET", "maxmemory"), False),
    ],
)
def test_which_commands_bypass_the_pipeline(command: tuple[Any, ...], bypass: bool) -> None:
    assert must_bypass(command) is bypass


async def kind_of_client(ctx: dict[str, Any]) -> bool:
    await ctx["redis"].incr("ran")
    return isinstance(ctx["redis"], AutoPipelinedRedis)


@pytest.mark.parametrize("auto_pipeline", [True, False])
async def test_worker_gives_jobs_the_pipelined_client(plain: PoolRedis, redis_url: str, auto_pipeline: bool) -> None:
    job = await plain.enqueue_job("kind_of_client")
    assert job is not None
    await run_burst(redis_url, functions=[kind_of_client], auto_pipeline=auto_pipeline)
    assert await job.result(timeout=1) is auto_pipeline
    assert await plain.get("ran") == b"1"


async def block_in_xread(ctx: dict[str, Any]) -> None:
    await ctx["redis"].xread({"nothing-comes": "$"}, block=3000)


async def count_to_five(ctx: dict[str, Any]) -> int:
    return [await ctx["redis"].incr("counted") for _ in range(5)][-1]


async def test_a_job_blocked_in_xread_does_not_hold_up_other_jobs_commands(plain: PoolRedis, redis_url: str) -> None:
    """Both jobs start in one loop turn, so their first commands would share a pipeline: the blocking XREAD
    (redis-py sends b"BLOCK") must go on its own connection, not in front of the other job's INCRs."""
    blocker = await plain.enqueue_job("block_in_xread")
    counter = await plain.enqueue_job("count_to_five")
    assert blocker is not None and counter is not None
    async with running_worker(redis_url, functions=[block_in_xread, count_to_five]):
        assert await counter.result(timeout=2) == 5  # well before the XREAD's 3 s are up
        assert await blocker.status() == JobStatus.in_progress
