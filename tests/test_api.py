"""The arq-compatible API against a real redis-server: enqueue, status, info, results, uniqueness, retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import AuthenticationError

from pool import ArqRedis, Job, JobStatus, PoolRedis, RedisSettings, Retry, Worker, create_pool, func
from pool.connections import ArqRedis as ArqRedisFromConnections
from pool.jobs import JobAborted, JobDef, JobResult, ResultNotFound
from pool.storage import serializers
from pool.storage.keys import QueueKeys
from pool.storage.serializers import JobExecutionFailed, SerializationError, msgpack_deserializer, msgpack_serializer
from pool.utils import caused_by, run_on_best_loop
from pool.worker import Retry as RetryFromWorker
from pool.worker import func as func_from_worker
from tests.helpers import wait_for
from tests.job_functions import count_run
from tests.worker_utils import run_burst, running_worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def echo_ctx(ctx: dict[str, Any]) -> dict[str, Any]:
    return {k: ctx[k] for k in ("job_id", "job_try", "score")} | {"has_redis": isinstance(ctx["redis"], PoolRedis)}


def test_import_paths_match_arq() -> None:
    assert ArqRedis is PoolRedis is ArqRedisFromConnections
    assert RetryFromWorker is Retry and func_from_worker is func
    assert issubclass(JobResult, JobDef)


async def test_enqueue_run_and_result(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("add", 2, b=3)
    assert job is not None
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert info is not None and info.function == "add" and info.args == (2,) and info.kwargs == {"b": 3}
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_complete == 1
    assert await job.result(timeout=1) == 5
    assert await job.status() == JobStatus.complete
    result = await job.result_info()
    assert result is not None and result.success and result.job_try == 1 and result.queue_name == "default"
    assert result.start_time is not None and result.finish_time is not None
    assert result.finish_time >= result.start_time >= result.enqueue_time - timedelta(seconds=1)


async def test_ctx_holds_job_fields_and_redis(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("echo_ctx", _job_id="ctx-job")
    assert job is not None
    await run_burst(redis_url, functions=[echo_ctx])
    value = await job.result(timeout=1)
    assert value["job_id"] == "ctx-job" and value["job_try"] == 1 and value["has_redis"]
    assert value["score"] > 0


async def test_a_waiting_caller_gets_the_result_pushed_even_when_it_is_not_kept(
    redis: PoolRedis, redis_url: str
) -> None:
    """The worker pushes the result payload to registered waiters, so result() reads nothing after its wake-up
    and a result with keep_result=0 still reaches the caller that was waiting for it."""
    release = asyncio.Event()

    async def slow_echo(ctx: dict[str, Any], value: int) -> int:
        await release.wait()
        return value

    job = await redis.enqueue_job("slow_echo", 7)
    assert job is not None
    async with running_worker(redis_url, functions=[func(slow_echo, name="slow_echo")], keep_result=0):
        waiting = asyncio.create_task(job.result(timeout=10))
        await wait_for(lambda: redis.exists(QueueKeys("default").waiters(job.job_id)), timeout=5)
        release.set()
        assert await waiting == 7
    assert await redis.exists(QueueKeys("default").result(job.job_id)) == 0  # it was not kept


async def test_a_result_call_whose_time_is_up_registers_no_waiter(redis: PoolRedis) -> None:
    """result(timeout=0) on a job still queued only checks: a waiter left registered would have the worker push
    the payload to a list nobody reads."""
    job = await redis.enqueue_job("never_run")
    assert job is not None
    with pytest.raises(TimeoutError):
        await job.result(timeout=0)
    assert await redis.exists(QueueKeys("default").waiters(job.job_id)) == 0


async def test_result_waits_for_a_running_worker(redis: PoolRedis, redis_url: str) -> None:
    async with running_worker(redis_url, functions=[add], poll_delay=60):
        job = await redis.enqueue_job("add", 40, 2)
        assert job is not None
        # pickup is pushed: with poll_delay=60 only a blocking read can start the job this soon
        assert await job.result(timeout=3) == 42


async def test_unknown_job_status_and_result(redis: PoolRedis) -> None:
    job = Job("nope", redis)
    assert await job.status() == JobStatus.not_found
    assert await job.info() is None
    with pytest.raises(ResultNotFound):
        await job.result(timeout=0.1)


async def test_result_times_out(redis: PoolRedis) -> None:
    job = await redis.enqueue_job("add", 1, 2)
    assert job is not None
    with pytest.raises(asyncio.TimeoutError):
        await job.result(timeout=0.2)


async def test_unique_job_id_refused_while_queued_and_while_result_kept(redis: PoolRedis, redis_url: str) -> None:
    assert await redis.enqueue_job("add", 1, 1, _job_id="u1") is not None
    assert await redis.enqueue_job("add", 1, 1, _job_id="u1") is None
    await run_burst(redis_url, functions=[add])
    assert await redis.enqueue_job("add", 1, 1, _job_id="u1") is None  # result still kept
    await redis.delete(QueueKeys("default").result("u1"))
    assert await redis.enqueue_job("add", 1, 1, _job_id="u1") is not None


async def test_unique_job_id_refused_while_running(redis: PoolRedis, redis_url: str) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(ctx: dict[str, Any]) -> str:
        started.set()
        await release.wait()
        return "done"

    async with running_worker(redis_url, functions=[func(hold, name="hold")]):
        job = await redis.enqueue_job("hold", _job_id="busy")
        assert job is not None
        await asyncio.wait_for(started.wait(), 3)
        assert await job.status() == JobStatus.in_progress
        assert await redis.enqueue_job("hold", _job_id="busy") is None
        release.set()
        assert await job.result(timeout=3) == "done"


async def test_concurrent_enqueue_of_one_id_gives_exactly_one_job(redis: PoolRedis, redis_url: str) -> None:
    clients = [await create_pool(RedisSettings.from_dsn(redis_url)) for _ in range(5)]
    try:
        results = await asyncio.gather(*(clients[i % 5].enqueue_job("add", i, 0, _job_id="the-one") for i in range(50)))
    finally:
        for client in clients:
            await client.aclose()
    assert sum(r is not None for r in results) == 1
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_complete == 1
    assert len(await redis.all_job_results()) == 1


async def test_defer_by_and_defer_until(redis: PoolRedis, redis_url: str) -> None:
    by = await redis.enqueue_job("add", 1, 1, _defer_by=0.3)
    until = await redis.enqueue_job("add", 2, 2, _defer_until=datetime.now(tz=UTC) + timedelta(seconds=0.3))
    later = await redis.enqueue_job("add", 3, 3, _defer_by=timedelta(hours=1))
    assert by and until and later
    for job in (by, until, later):
        assert await job.status() == JobStatus.deferred
    info = await later.info()
    assert info is not None and info.score is not None and info.score > info.enqueue_time.timestamp() * 1000
    async with running_worker(redis_url, functions=[add]):
        assert await by.result(timeout=3) == 2
        assert await until.result(timeout=3) == 4
        result = await by.result_info()
        assert result is not None and result.start_time is not None
        assert result.start_time - result.enqueue_time >= timedelta(seconds=0.29)
        assert await later.status() == JobStatus.deferred


async def test_bad_defer_arguments(redis: PoolRedis) -> None:
    with pytest.raises(ValueError, match="either"):
        await redis.enqueue_job("add", 1, 1, _defer_by=1, _defer_until=datetime.now(tz=UTC))


async def test_expired_job_is_dropped_not_run(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("add", 1, 1, _expires=0.05)
    assert job is not None
    await wait_for(lambda: _not_found(job), timeout=3)
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_started == 0 and worker.jobs_complete == 0


async def _not_found(job: Job) -> bool:
    return await job.status() == JobStatus.not_found


async def test_retry_counts_tries_and_max_tries_bounds_them(redis: PoolRedis, redis_url: str) -> None:
    tries: list[int] = []

    async def flaky(ctx: dict[str, Any]) -> int:
        tries.append(ctx["job_try"])
        if ctx["job_try"] < 3:
            raise Retry(defer=0.01)
        return ctx["job_try"]

    async def always(ctx: dict[str, Any]) -> None:
        raise Retry(defer=timedelta(milliseconds=10))

    ok = await redis.enqueue_job("flaky")
    bad = await redis.enqueue_job("always")
    assert ok and bad
    worker = await run_burst(redis_url, functions=[func(flaky, name="flaky"), func(always, name="always", max_tries=2)])
    assert await ok.result(timeout=1) == 3 and tries == [1, 2, 3]
    with pytest.raises(JobExecutionFailed, match="max 2 retries exceeded"):
        await bad.result(timeout=1)
    # always's last Retry, refused by max_tries, counts as a retry too (arq's count): 2 + 2
    assert worker.jobs_retried == 4 and worker.jobs_complete == 1 and worker.jobs_failed == 1


async def test_job_try_argument_sets_the_first_try(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("echo_ctx", _job_try=3)
    assert job is not None
    await run_burst(redis_url, functions=[echo_ctx])
    assert (await job.result(timeout=1))["job_try"] == 3


async def test_exception_is_reraised_and_recorded(redis: PoolRedis, redis_url: str) -> None:
    async def boom(ctx: dict[str, Any]) -> None:
        raise ValueError("broken", 7)

    job = await redis.enqueue_job("boom")
    assert job is not None
    worker = await run_burst(redis_url, functions=[func(boom, name="boom")])
    with pytest.raises(ValueError) as excinfo:
        await job.result(timeout=1)
    assert excinfo.value.args == ("broken", 7)
    info = await job.result_info()
    assert info is not None and not info.success and worker.jobs_failed == 1


async def test_timeout_fails_the_job_with_timeout_error(redis: PoolRedis, redis_url: str) -> None:
    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(10)

    job = await redis.enqueue_job("slow")
    assert job is not None
    await run_burst(redis_url, functions=[func(slow, name="slow", timeout=0.1)])
    with pytest.raises(TimeoutError, match=r"timed out after 0\.1s"):
        await job.result(timeout=1)


async def test_a_timed_out_job_that_swallows_the_cancel_completes_and_its_task_is_usable(
    redis: PoolRedis, redis_url: str
) -> None:
    """As with asyncio.timeout: a job that catches its timeout's cancellation and returns has succeeded, and the
    awaits after it (hooks, the result write) are not cancelled."""

    async def stubborn(ctx: dict[str, Any]) -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(0.01)  # an await after the swallowed cancel must not be cancelled
        return "finished anyway"

    ended: list[tuple[str, int]] = []

    async def on_job_end(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        ended.append((ctx["job_id"], task.cancelling()))  # 0: no cancellation left pending on the task

    job = await redis.enqueue_job("stubborn")
    assert job is not None
    await run_burst(redis_url, functions=[func(stubborn, name="stubborn", timeout=0.1)], on_job_end=on_job_end)
    assert await job.result(timeout=1) == "finished anyway"
    assert ended == [(job.job_id, 0)]


async def test_a_timeout_error_raised_by_the_job_itself_is_its_own_failure(redis: PoolRedis, redis_url: str) -> None:
    async def gives_up(ctx: dict[str, Any]) -> None:
        raise TimeoutError("the upstream API did not answer")

    job = await redis.enqueue_job("gives_up")
    assert job is not None
    await run_burst(redis_url, functions=[func(gives_up, name="gives_up", timeout=5)])
    with pytest.raises(TimeoutError, match="the upstream API did not answer"):
        await job.result(timeout=1)


async def test_sync_functions_run_in_a_thread(redis: PoolRedis, redis_url: str) -> None:
    def blocking(ctx: dict[str, Any], x: int) -> tuple[int, bool]:
        return x * 2, threading.current_thread() is threading.main_thread()

    job = await redis.enqueue_job("blocking", 21)
    assert job is not None
    await run_burst(redis_url, functions=[func(blocking, name="blocking")])
    assert await job.result(timeout=1) == [42, False]


async def test_enqueue_by_function_reference(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job(add, 1, 2)
    assert job is not None and (await job.info()).function == "add"  # type: ignore[union-attr]
    await run_burst(redis_url, functions=[add])
    assert await job.result(timeout=1) == 3


async def test_keep_result_zero_and_forever(redis: PoolRedis, redis_url: str) -> None:
    gone = await redis.enqueue_job("add", 1, 1)
    kept = await redis.enqueue_job("add_forever", 1, 1)
    assert gone and kept
    await run_burst(redis_url, functions=[add, func(add, name="add_forever", keep_result_forever=True)], keep_result=0)
    assert await gone.status() == JobStatus.not_found
    assert await kept.status() == JobStatus.complete
    assert await redis.pttl(QueueKeys("default").result(kept.job_id)) == -1


async def test_hooks_run_in_order(redis: PoolRedis, redis_url: str) -> None:
    calls: list[str] = []

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["db"] = "connected"
        calls.append("startup")

    async def uses_db(ctx: dict[str, Any]) -> str:
        calls.append("job")
        return str(ctx["db"])

    async def hook(name: str, ctx: dict[str, Any]) -> None:
        calls.append(name)

    job = await redis.enqueue_job("uses_db")
    assert job is not None
    await run_burst(
        redis_url,
        functions=[func(uses_db, name="uses_db")],
        on_startup=startup,
        on_shutdown=lambda ctx: hook("shutdown", ctx),
        on_job_start=lambda ctx: hook("job_start", ctx),
        on_job_end=lambda ctx: hook("job_end", ctx),
        after_job_end=lambda ctx: hook("after_job_end", ctx),
    )
    assert await job.result(timeout=1) == "connected"
    assert calls == ["startup", "job_start", "job", "job_end", "after_job_end", "shutdown"]


async def test_pickle_is_opt_in(redis_url: str) -> None:
    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    default = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        with pytest.raises(SerializationError, match="unable to serialize"):
            await default.enqueue_job("add", Point(1), 2)
    finally:
        await default.aclose()
    pickled = await create_pool(
        RedisSettings.from_dsn(redis_url), job_serializer=pickle.dumps, job_deserializer=pickle.loads
    )
    try:
        job = await pickled.enqueue_job("add", 1, 2)
        assert job is not None
        raw = await pickled.hget(QueueKeys("default").job(job.job_id), "d")
        assert raw is not None and raw.startswith(b"\x80")  # a pickle protocol header
        await run_burst(redis_url, functions=[add], job_serializer=pickle.dumps, job_deserializer=pickle.loads)
        assert await job.result(timeout=1) == 3
    finally:
        await pickled.aclose()


async def test_msgpack_round_trips_common_types(redis: PoolRedis, redis_url: str) -> None:
    async def identity(ctx: dict[str, Any], value: Any) -> Any:
        return value

    value = {
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "naive": datetime(2026, 1, 2),
        "d": timedelta(1),
        "s": {1, 2},
        "b": b"\x00\xff",
        "n": None,
    }
    job = await redis.enqueue_job("identity", value)
    assert job is not None
    await run_burst(redis_url, functions=[func(identity, name="identity")])
    assert await job.result(timeout=1) == value


async def test_unserializable_result_fails_the_job_with_the_reason(redis: PoolRedis, redis_url: str) -> None:
    async def returns_object(ctx: dict[str, Any]) -> object:
        return object()

    job = await redis.enqueue_job("returns_object")
    assert job is not None
    await run_burst(redis_url, functions=[func(returns_object, name="returns_object")])
    with pytest.raises(SerializationError, match="unable to serialize result"):
        await job.result(timeout=1)


def test_the_default_serializer_is_clean_after_a_failure_and_exact_across_threads() -> None:
    # msgpack_serializer reuses a Packer per thread: a failed pack must not leave bytes behind, and threads
    # (sync jobs run in threads) must not share one
    with pytest.raises(TypeError):
        msgpack_serializer({"a": [1, 2, {"b": object()}]})
    assert msgpack_deserializer(msgpack_serializer({"x": 1})) == {"x": 1}

    def serialize_many(n: int, out: list[bool]) -> None:
        value = {"n": n, "when": datetime(2026, 1, n + 1, tzinfo=UTC), "items": list(range(n * 50))}
        out.append(all(msgpack_deserializer(msgpack_serializer(value)) == value for _ in range(2_000)))

    results: list[bool] = []
    threads = [threading.Thread(target=serialize_many, args=(n, results)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4


def test_the_default_serializer_lets_go_of_a_packer_that_grew_large() -> None:
    small = msgpack_serializer({"x": 1})
    assert msgpack_deserializer(msgpack_serializer({"big": b"x" * (2 << 20)}))["big"] == b"x" * (2 << 20)
    assert not hasattr(serializers._packers, "packer")  # dropped with its 2 MB buffer
    assert msgpack_serializer({"x": 1}) == small


async def test_bad_payload_and_unknown_function_fail_that_job_and_worker_goes_on(
    redis: PoolRedis, redis_url: str
) -> None:
    broken = await redis.enqueue_job("add", 1, 1)
    unknown = await redis.enqueue_job("no_such_function")
    good = await redis.enqueue_job("add", 2, 2)
    assert broken and unknown and good
    await redis.hset(QueueKeys("default").job(broken.job_id), "d", b"\xc1not msgpack")
    worker = await run_burst(redis_url, functions=[add])
    with pytest.raises(Exception, match="unable to deserialize job"):
        await broken.result(timeout=1)
    with pytest.raises(JobExecutionFailed, match="function 'no_such_function' not found"):
        await unknown.result(timeout=1)
    assert await good.result(timeout=1) == 4
    assert worker.jobs_failed == 2 and worker.jobs_complete == 1


async def test_abort_queued_job_at_once(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("add", 1, 1)
    deferred = await redis.enqueue_job("add", 1, 1, _defer_by=60)
    assert job and deferred
    assert await job.abort(timeout=1) is True
    assert await deferred.abort(timeout=1) is True
    with pytest.raises(JobAborted):
        await job.result(timeout=1)
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_started == 0


async def test_abort_running_job(redis: PoolRedis, redis_url: str) -> None:
    started = asyncio.Event()

    async def forever(ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(60)

    async with running_worker(
        redis_url, functions=[func(forever, name="forever")], allow_abort_jobs=True, poll_delay=0.05
    ):
        job = await redis.enqueue_job("forever")
        assert job is not None
        await asyncio.wait_for(started.wait(), 3)
        assert await job.abort(timeout=3) is True
        with pytest.raises(JobAborted):
            await job.result(timeout=1)


async def slow_start_hook(ctx: dict[str, Any]) -> None:
    await ctx["redis"].incr("start_hook:" + ctx["job_id"])
    await asyncio.sleep(1.0)


async def test_abort_during_on_job_start_is_honoured(redis: PoolRedis, redis_url: str) -> None:
    """An abort that arrives while on_job_start runs cancels the job before its function runs."""
    async with running_worker(
        redis_url,
        functions=[count_run],
        on_job_start=slow_start_hook,
        allow_abort_jobs=True,
        poll_delay=0.05,
        heartbeat_interval=0.2,
    ):
        job = await redis.enqueue_job("count_run", _job_id="ab")
        assert job is not None
        await wait_for(lambda: redis.exists("start_hook:ab"))
        aborted = await job.abort(timeout=4)
        runs = await redis.get("runs:ab")
        assert (aborted, runs) == (True, None), f"abort returned {aborted}, the job function ran {runs!r} times"


async def test_shutdown_cancels_running_job_and_it_runs_again(redis: PoolRedis, redis_url: str) -> None:
    started = asyncio.Event()

    async def long(ctx: dict[str, Any]) -> int:
        started.set()
        if ctx["job_try"] == 1:
            await asyncio.sleep(60)
        return int(ctx["job_try"])

    functions = [func(long, name="long")]
    job = await redis.enqueue_job("long")
    assert job is not None
    async with running_worker(redis_url, functions=functions):
        await asyncio.wait_for(started.wait(), 3)
    assert await job.status() == JobStatus.queued  # handed back at once, not waiting for a reclaim
    await run_burst(redis_url, functions=functions)
    assert await job.result(timeout=1) == 2


async def test_job_completion_wait_lets_running_jobs_finish(redis: PoolRedis, redis_url: str) -> None:
    started = asyncio.Event()

    async def short(ctx: dict[str, Any]) -> str:
        started.set()
        await asyncio.sleep(0.3)
        return "finished"

    job = await redis.enqueue_job("short")
    assert job is not None
    async with running_worker(redis_url, functions=[func(short, name="short")], job_completion_wait=5):
        await asyncio.wait_for(started.wait(), 3)
    assert await job.result(timeout=0.5) == "finished"


async def test_max_jobs_bounds_concurrency(redis: PoolRedis, redis_url: str) -> None:
    running, peak = 0, 0

    async def track(ctx: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    for _ in range(20):
        await redis.enqueue_job("track")
    worker = await run_burst(redis_url, functions=[func(track, name="track")], max_jobs=3)
    assert worker.jobs_complete == 20 and peak == 3


async def test_max_burst_jobs(redis: PoolRedis, redis_url: str) -> None:
    for i in range(5):
        await redis.enqueue_job("add", i, i)
    worker = await run_burst(redis_url, functions=[add], max_burst_jobs=2, max_jobs=1)
    assert worker.jobs_complete == 2


async def test_queue_name_keeps_queues_apart(redis: PoolRedis, redis_url: str) -> None:
    job = await redis.enqueue_job("add", 1, 1, _queue_name="other")
    assert job is not None
    worker = await run_burst(redis_url, functions=[add])
    assert worker.jobs_started == 0
    await run_burst(redis_url, functions=[add], queue_name="other")
    assert await Job(job.job_id, redis, _queue_name="other").result(timeout=1) == 2


async def test_every_key_of_a_queue_shares_one_hash_tag(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("add", 1, 1)
    await redis.enqueue_job("add", 1, 1, _defer_by=60)
    await run_burst(redis_url, functions=[add], max_burst_jobs=1)
    keys = [k.decode() async for k in redis.scan_iter()]
    assert keys and all("{default}" in k for k in keys), keys


async def test_queued_jobs_and_all_job_results(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("add", 1, 1, _job_id="a")
    await redis.enqueue_job("add", 2, 2, _job_id="b", _defer_by=60)
    queued = await redis.queued_jobs()
    assert [j.job_id for j in queued] == ["a", "b"]
    await run_burst(redis_url, functions=[add], max_burst_jobs=1)
    results = await redis.all_job_results()
    assert [r.job_id for r in results] == ["a"] and results[0].result == 2


async def test_health_lines_and_check(redis_url: str) -> None:
    """async_health_lines gives the live workers' lines; async_check_health answers as arq's: 0 healthy, 1 not."""
    from pool.worker import async_check_health, async_health_lines

    settings = RedisSettings.from_dsn(redis_url)
    assert await async_health_lines(settings) == []
    assert await async_check_health(settings) == 1
    async with running_worker(redis_url, functions=[add], health_check_interval=60):
        lines = await wait_for(lambda: async_health_lines(settings))
        assert "j_complete=0 j_failed=0 j_retried=0 j_ongoing=0 queued=0" in lines[0]
        assert await async_check_health(settings) == 0
    assert await async_health_lines(settings) == []  # a clean shutdown removes its entry
    assert await async_check_health(settings) == 1


async def test_worker_requires_functions() -> None:
    with pytest.raises(RuntimeError, match="at least one function"):
        Worker(functions=[])


def test_queue_read_limit_is_accepted_and_noted_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """arq code passes queue_read_limit; pool accepts it, reads up to its free slots anyway, and says so."""
    caplog.set_level(logging.DEBUG, logger="pool")
    Worker(functions=[add], queue_read_limit=5)
    notes = [r for r in caplog.records if "queue_read_limit" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.DEBUG
    caplog.clear()
    Worker(functions=[add])
    assert not [r for r in caplog.records if "queue_read_limit" in r.getMessage()]


def test_workers_and_commands_run_on_uvloop() -> None:
    """One runner for the worker, the supervisor's children and the CLI commands: uvloop's loop, faster I/O."""

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_on_best_loop(loop_module()).startswith("uvloop")


def test_the_cause_of_an_error_is_found_through_causes_and_contexts_and_a_cycle_ends_the_walk() -> None:
    refused = AuthenticationError("invalid password")
    wrapper = ConnectionError("Error connecting")
    wrapper.__context__ = refused
    outer = RuntimeError("startup failed")
    outer.__cause__ = wrapper
    assert caused_by(outer, lambda error: isinstance(error, AuthenticationError))
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert not caused_by(first, lambda error: isinstance(error, AuthenticationError))


async def test_redis_settings_from_dsn_and_redaction() -> None:
    s = RedisSettings.from_dsn("redis://user:s3cret@example.com:6380/4")
    assert (s.host, s.port, s.database, s.username, s.password) == ("example.com", 6380, 4, "user", "s3cret")
    assert "s3cret" not in repr(s) and "s3cret" not in s.describe()
    assert RedisSettings.from_dsn("rediss://h").ssl is True
    unix = RedisSettings.from_dsn("unix:///tmp/redis.sock?db=2")
    assert unix.unix_socket_path == "/tmp/redis.sock" and unix.database == 2
    with pytest.raises(ValueError, match="scheme"):
        RedisSettings.from_dsn("http://h")


async def test_create_pool_reports_wrong_password(redis_server_factory: Any) -> None:
    from redis.exceptions import ConnectionError

    server = redis_server_factory(password="right-one")
    settings = RedisSettings(host="127.0.0.1", port=server.port, password="wrong-one", conn_retries=0)
    with pytest.raises(ConnectionError, match="authentication") as excinfo:
        await create_pool(settings)
    assert "wrong-one" not in str(excinfo.value)


async def test_dead_consumers_are_pruned_live_ones_kept(redis: PoolRedis, redis_url: str) -> None:
    from pool.storage.queue import RedisQueue

    queue = RedisQueue(redis, "default")
    await queue.ensure_group()
    for name in ("dead-worker", "idle-worker"):
        await redis.xgroup_createconsumer(queue.keys.stream, "workers", name)
    assert await queue.prune_consumers(min_idle_ms=60_000) == 0
    await redis.enqueue_job("add", 1, 1)
    assert len(await queue.read("holder", 1, None)) == 1
    removed = await queue.prune_consumers(min_idle_ms=0)
    names = {c["name"].decode() for c in await redis.xinfo_consumers(queue.keys.stream, "workers")}
    assert removed == 2 and names == {"holder"}  # the one holding a job is never removed
