"""arq 0.26 behaviours that code ported from arq relies on (issue: arq's own suite run on pool), one test each.

Where pool deliberately differs from arq (docs/arq.md lists every difference), the tests here pin pool's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import logging.config
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from pool import Job, JobStatus, PoolRedis, RedisSettings, Retry, Worker, create_pool, cron, func
from pool.jobs import deserialize_result, serialize_result
from pool.logs import default_log_config
from pool.storage.codecs import encode_result
from pool.utils import get_tz, import_string, ms_to_datetime
from pool.worker import FailedJobs, JobExecutionFailed, RetryJob
from tests.helpers import wait_for
from tests.redis_server import RedisServer
from tests.worker_utils import make_worker, run_burst, running_worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fails(ctx: dict[str, Any]) -> None:
    raise TypeError("my type error")


async def test_run_check_returns_the_jobs_completed_or_raises_failed_jobs_with_their_results(
    redis: PoolRedis, redis_url: str
) -> None:
    await redis.enqueue_job("add", 1, 2)
    await redis.enqueue_job("add", 3, 4)
    assert await make_worker(redis_url, functions=[add], burst=True).run_check() == 2

    await redis.enqueue_job("fails")
    await redis.enqueue_job("missing")
    with pytest.raises(FailedJobs) as info:
        await make_worker(redis_url, functions=[add, fails], burst=True).run_check()
    assert info.value.count == 2 and str(info.value).startswith("2 jobs failed:\n")
    failures = {repr(result.result) for result in info.value.job_results}
    assert failures == {"TypeError('my type error')", "JobExecutionFailed(\"function 'missing' not found\")"}
    missing = next(r.result for r in info.value.job_results if r.function == "missing")
    assert missing == JobExecutionFailed("function 'missing' not found") and missing != 123


async def test_run_check_with_one_failure_names_it(redis: PoolRedis, redis_url: str) -> None:
    await redis.enqueue_job("fails")
    with pytest.raises(FailedJobs, match=r"^1 job failed TypeError\('my type error'\)$"):
        await make_worker(redis_url, functions=[fails], burst=True).run_check()


async def test_a_worker_runs_again_after_its_run_ended_and_close_then_does_nothing(
    redis: PoolRedis, redis_url: str
) -> None:
    """main() twice runs the jobs queued in between; on_startup runs per run, on_shutdown once per run, and a
    close() after main() (arq's fixtures do that) does not run on_shutdown again."""
    calls: list[str] = []

    async def startup(ctx: dict[str, Any]) -> None:
        calls.append("startup")

    async def shutdown(ctx: dict[str, Any]) -> None:
        calls.append("shutdown")

    worker = make_worker(redis_url, functions=[add], burst=True, on_startup=startup, on_shutdown=shutdown)
    first = await redis.enqueue_job("add", 1, 1)
    await asyncio.wait_for(worker.main(), 30)
    second = await redis.enqueue_job("add", 2, 2)
    await asyncio.wait_for(worker.main(), 30)
    await worker.close()
    assert first and second and await second.result(timeout=1) == 4
    assert worker.jobs_complete == 2
    assert calls == ["startup", "shutdown", "startup", "shutdown"]


async def test_close_of_a_worker_that_never_ran_does_nothing() -> None:
    called: list[str] = []

    async def shutdown(ctx: dict[str, Any]) -> None:
        called.append("shutdown")

    await Worker([add], handle_signals=False, on_shutdown=shutdown).close()
    assert called == []


async def test_queue_name_none_takes_the_given_pools_default_queue(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name="reports")
    try:
        job = await pool.enqueue_job("add", 2, 3)
        worker = Worker([add], queue_name=None, redis_pool=pool, burst=True, handle_signals=False)
        assert worker.queue_name == "reports"
        await asyncio.wait_for(worker.main(), 30)
        assert job and await job.result(timeout=1) == 5
    finally:
        await pool.aclose()


async def test_all_job_results_lists_every_queues_results(redis: PoolRedis, redis_url: str) -> None:
    here = await redis.enqueue_job("add", 1, 1, _job_id="here")
    there = await redis.enqueue_job("add", 2, 2, _job_id="there", _queue_name="other")
    assert here and there
    await run_burst(redis_url, functions=[add])
    await run_burst(redis_url, functions=[add], queue_name="other")
    assert sorted((r.job_id, r.queue_name) for r in await redis.all_job_results()) == [
        ("here", "default"),
        ("there", "other"),
    ]
    assert [r.job_id for r in await redis.all_job_results("other")] == ["there"]


async def test_job_try_is_none_until_the_job_runs(redis: PoolRedis) -> None:
    fresh = await redis.enqueue_job("add", 1, 1, _job_id="fresh")
    third = await redis.enqueue_job("add", 1, 1, _job_id="third", _job_try=3)
    assert fresh and third
    fresh_info, third_info = await fresh.info(), await third.info()
    assert fresh_info is not None and fresh_info.job_try is None
    assert third_info is not None and third_info.job_try == 3
    assert {j.job_id: j.job_try for j in await redis.queued_jobs()} == {"fresh": None, "third": 3}


async def test_max_burst_jobs_is_never_overshot(redis: PoolRedis, redis_url: str) -> None:
    """A fetch takes up to a quarter of max_jobs at once; in a burst it takes no more than the jobs left."""
    jobs = [await redis.enqueue_job("add", i, i) for i in range(6)]
    worker = await run_burst(redis_url, functions=[add], max_jobs=12, max_burst_jobs=1)
    assert worker.jobs_started == 1 and worker.jobs_complete == 1
    statuses = [await job.status() for job in jobs if job]
    assert statuses.count(JobStatus.complete) == 1 and statuses.count(JobStatus.queued) == 5


async def retries(ctx: dict[str, Any]) -> None:
    raise Retry(defer=0.01)


async def test_retry_with_retry_jobs_off_records_the_retry_itself(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pool")
    job = await redis.enqueue_job("retries", _job_id="testing")
    assert job is not None
    with pytest.raises(FailedJobs) as info:
        await make_worker(redis_url, functions=[retries], burst=True, retry_jobs=False).run_check()
    assert str(info.value) == "1 job failed <Retry defer 0.01s>"
    assert "! testing:retries failed, Retry: <Retry defer 0.01s>" in caplog.text and "↻" not in caplog.text
    with pytest.raises(Retry):
        await job.result(timeout=1)


async def test_retry_job_runs_the_job_again_at_once(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def once(ctx: dict[str, Any]) -> int:
        if ctx["job_try"] == 1:
            raise RetryJob()
        return ctx["job_try"]

    caplog.set_level(logging.INFO, logger="pool")
    job = await redis.enqueue_job("once", _job_id="testing")
    worker = await run_burst(redis_url, functions=[func(once, name="once")])
    assert job and await job.result(timeout=1) == 2
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 1, 0)
    assert "testing:once cancelled, will be run again" in caplog.text


async def test_running_out_of_retries_counts_the_last_retry_too(redis: PoolRedis, redis_url: str) -> None:
    """arq counts every Retry a job raised, then the failure: max_tries=5 gives 5 retries and 1 failure."""
    await redis.enqueue_job("retries")
    worker = await run_burst(redis_url, functions=[retries])
    assert (worker.jobs_retried, worker.jobs_failed) == (5, 1)


async def test_a_timeout_is_logged_as_an_error(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    await redis.enqueue_job("slow", _job_id="testing")
    caplog.set_level(logging.ERROR, logger="pool")
    await run_burst(redis_url, functions=[func(slow, name="slow")], job_timeout=0.1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("! testing:slow failed, TimeoutError:" in message for message in errors), errors


async def test_the_default_log_config_lets_records_reach_the_applications_handlers() -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    root, collect = logging.getLogger(), Collect()
    logger = logging.getLogger("pool")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    root.addHandler(collect)
    try:
        logging.config.dictConfig(default_log_config(verbose=False))
        logging.getLogger("pool.worker").info("reaches the root")
    finally:
        root.removeHandler(collect)
        logger.handlers, logger.level, logger.propagate = saved
    assert seen == ["reaches the root"]


async def test_identical_cron_jobs_running_at_startup_run_once(redis_url: str) -> None:
    worker = await run_burst(
        redis_url,
        cron_jobs=[cron(tick, minute=10, run_at_startup=True), cron(tick, minute=20, run_at_startup=True)],
    )
    assert worker.jobs_complete == 1


async def tick(ctx: dict[str, Any]) -> int:
    return 42


async def test_a_cron_jobs_log_lines_name_the_function_only(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pool")
    await run_burst(redis_url, cron_jobs=[cron(tick, hour=1, run_at_startup=True)])
    assert "→ cron:tick()" in caplog.text and "← cron:tick ● 42" in caplog.text


def test_arqs_timezone_variables_set_the_zone_of_datetimes_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    get_tz.cache_clear()
    monkeypatch.setenv("ARQ_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")  # arq's order: ARQ_TIMEZONE first
    try:
        assert ms_to_datetime(1_647_345_420_000).isoformat() == "2022-03-15T19:57:00+08:00"
        monkeypatch.setenv("ARQ_TIMEZONE", "Europe/Berlin")  # read once: no effect until the cache is cleared
        assert ms_to_datetime(1_647_345_420_000).isoformat() == "2022-03-15T19:57:00+08:00"
    finally:
        get_tz.cache_clear()
    monkeypatch.delenv("ARQ_TIMEZONE")
    monkeypatch.delenv("TIMEZONE")
    assert ms_to_datetime(1_647_345_420_000).isoformat() == "2022-03-15T11:57:00+00:00"


def test_an_unknown_timezone_is_named_in_a_warning_and_utc_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    get_tz.cache_clear()
    monkeypatch.setenv("ARQ_TIMEZONE", "foobar")
    try:
        assert ms_to_datetime(0) == datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    finally:
        get_tz.cache_clear()
    assert "unknown timezone: 'foobar'" in caplog.text


async def test_a_jobs_start_line_says_delayed_by_how_long_after_its_due_time_it_started(
    redis: PoolRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """arq's rule: `delayed=` counts from the job's due time (its score), not its enqueue, when over 1.2 s."""
    caplog.set_level(logging.INFO, logger="pool")
    await redis.enqueue_job("add", 1, 2, _job_id="late", _defer_by=-5)  # due 5 s before it was enqueued
    await asyncio.wait_for(Worker([add], redis_pool=redis, burst=True, handle_signals=False).main(), 30)
    line = next(r.getMessage() for r in caplog.records if "→ late:add(1, 2)" in r.getMessage())
    found = re.fullmatch(r" *(\d+\.\d\d)s → late:add\(1, 2\) delayed=(\d+\.\d\d)s", line)
    assert found is not None, line
    assert float(found[2]) - float(found[1]) == pytest.approx(5.0, abs=0.1)  # the 5 s between due and enqueue


async def test_the_start_up_line_names_the_given_pools_redis_and_its_server(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pool")
    worker = Worker([add], redis_pool=redis, burst=True, handle_signals=False)
    await asyncio.wait_for(worker.main(), 30)
    port = redis.connection_pool.connection_kwargs["port"]
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("redis at "))
    assert line.startswith(f"redis at redis://127.0.0.1:{port}/0 (redis_version=") and "db_keys=" in line
    assert "6379" not in line


async def test_a_worker_run_by_code_logs_arqs_two_start_up_lines_without_port_pid_or_worker_id(
    redis: PoolRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """arq's tests look for numbers in the whole log (no "42" after a job returning 42 with log_results=False):
    at INFO, start-up says what arq's does, nothing that changes from run to run (port, pid, random id)."""
    caplog.set_level(logging.INFO, logger="pool")
    await redis.enqueue_job("add", 40, 2, _job_id="testing")
    worker = Worker([add], redis_pool=redis, burst=True, handle_signals=False, log_results=False)
    await asyncio.wait_for(worker.main(), 30)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines[0] == "Starting worker for 1 functions: add"
    assert re.fullmatch(r"redis_version=\S+ mem_usage=\S+ clients_connected=\d+ db_keys=\d+", lines[1]), lines
    assert lines[2].endswith(" → testing:add(40, 2)") and lines[3].endswith(" ← testing:add ● ") and len(lines) == 4
    port = str(redis.connection_pool.connection_kwargs["port"])
    for incidental in (port, worker.worker_id, worker.worker_id.split(":")[1], worker.worker_id.split(":")[2]):
        assert not [line for line in lines if incidental in line], (incidental, lines)


async def test_job_handles_compare_to_arqs_repr(redis: PoolRedis) -> None:
    assert repr(Job("foobar", redis)) == "<pool job foobar>"


async def test_two_cron_jobs_of_one_function_with_their_own_job_ids_both_run(redis_url: str) -> None:
    worker = await run_burst(
        redis_url,
        cron_jobs=[
            cron(tick, minute=10, run_at_startup=True, job_id="custom_id"),
            cron(tick, minute=20, run_at_startup=True, job_id="custom_id2"),
        ],
    )
    assert worker.jobs_complete == 2


class CustomError(RuntimeError):
    def extra(self) -> dict[str, str]:
        return {"x": "y"}


async def raises_custom(ctx: dict[str, Any]) -> None:
    raise CustomError("this is the error")


async def test_a_jobs_exception_extra_reaches_its_error_record(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.enqueue_job("raises_custom", _job_id="testing")
    caplog.set_level(logging.INFO, logger="pool")
    await run_burst(redis_url, functions=[raises_custom])
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "testing:raises_custom failed, CustomError: this is the error" in error.getMessage()
    assert error.extra == {"x": "y"}  # type: ignore[attr-defined]


async def test_the_health_line_is_logged_when_the_counters_change(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pool")
    worker = make_worker(redis_url, functions=[add], burst=True)
    await redis.enqueue_job("add", 1, 1)
    await asyncio.wait_for(worker.main(), 30)
    await asyncio.wait_for(worker.main(), 30)
    assert "recording health: " in caplog.text
    assert "j_complete=1 j_failed=0 j_retried=0 j_ongoing=0 queued=0" in caplog.text


async def test_each_burst_run_writes_its_health_line_before_it_ends(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A run's first health line is written before it takes a job, as arq's first poll writes it: the first run
    records the job still queued, the next ones (nothing left to do, ending at once) the job done, and log it."""
    caplog.set_level(logging.INFO, logger="pool")
    worker = make_worker(redis_url, functions=[add], burst=True, health_check_key="app-health")
    await redis.enqueue_job("add", 1, 1)
    for _ in range(3):
        await asyncio.wait_for(worker.main(), 30)
    recorded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recording health: ")]
    assert len(recorded) == 1 and recorded[0].endswith(" j_complete=1 j_failed=0 j_retried=0 j_ongoing=0 queued=0")


async def reads_health(ctx: dict[str, Any]) -> str | None:
    line = await ctx["redis"].get("app-health")
    return line.decode() if line is not None else None


async def test_a_runs_health_line_is_written_before_its_first_job_starts(redis_url: str) -> None:
    """Even when the line takes a count per partition (8 round trips) and the job's fetch only one or two."""
    client = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions={"parts": 8})
    try:
        job = await client.enqueue_job("reads_health", _queue_name="parts")
        assert job is not None
        worker = make_worker(
            redis_url,
            functions=[reads_health],
            burst=True,
            queue_name="parts",
            queue_partitions=8,
            health_check_key="app-health",
        )
        await asyncio.wait_for(worker.main(), 30)
        line = await job.result(timeout=5)
        assert line is not None and line.endswith(" j_complete=0 j_failed=0 j_retried=0 j_ongoing=0 queued=1")
    finally:
        await client.aclose()


async def test_a_cancelled_run_leaves_none_of_its_tasks_pending(redis: PoolRedis, redis_url: str) -> None:
    """arq's tests cancel a running main() and close the loop: a task left pending there is destroyed later, its
    "Task was destroyed but it is pending!" error logged into whichever test runs then."""
    worker = make_worker(redis_url, functions=[add])
    run = asyncio.create_task(worker.main())
    await redis.enqueue_job("add", 1, 2)
    await wait_for(lambda: worker.jobs_complete == 1, message="the job ran")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await worker.close()
    left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("pool-") and not t.done()]
    assert left == []


async def test_the_workers_repr_and_its_views_of_running_jobs(redis: PoolRedis, redis_url: str) -> None:
    started = asyncio.Event()

    async def waits(ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(30)

    await redis.enqueue_job("waits", _job_id="slow")
    worker = make_worker(redis_url, functions=[func(waits, name="waits")], allow_abort_jobs=True, poll_delay=0.05)
    run = asyncio.create_task(worker.main())
    await asyncio.wait_for(started.wait(), 10)
    assert list(worker.tasks) == ["slow"] and worker.job_tasks == worker.tasks
    assert repr(worker) == "<Worker j_complete=0 j_failed=0 j_retried=0 j_ongoing=1>"
    assert await Job("slow", redis).abort(timeout=5) is True
    worker.request_stop()
    await asyncio.wait_for(run, 15)
    assert worker.tasks == {} and worker.aborting_tasks == set() and worker.jobs_failed == 1


async def test_a_close_while_another_runs_waits_for_it(redis_url: str) -> None:
    """arq's tests cancel a running main() and then close(): the second close returns only once the first (in
    the cancelled main) has released everything, so nothing is left open when the caller's loop ends."""
    worker = make_worker(redis_url, functions=[add])
    run = asyncio.create_task(worker.main())
    await wait_for(lambda: worker._queue is not None, message="worker started")
    run.cancel()
    await asyncio.sleep(0)  # the cancelled main() is now in its own close()
    await worker.close()
    assert worker._pool is None
    with contextlib.suppress(asyncio.CancelledError):
        await run


def test_a_worker_is_built_outside_an_event_loop() -> None:
    """arq 0.27's change (Python 3.14 has no implicit event loop): building a Worker needs no loop."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    worker = Worker([add], handle_signals=False)
    assert worker.queue_name == "default" and worker.jobs_complete == 0


def test_import_string_errors_are_arqs_words() -> None:
    with pytest.raises(ImportError, match='"foobar" doesn\'t look like a module path'):
        import_string("foobar")
    with pytest.raises(ImportError, match='Module "math" does not define a "foobar" attribute'):
        import_string("math.foobar")
    assert import_string(" math.sqrt ")(4) == 2  # arq strips the spaces around it


def test_datetimes_read_back_carry_pytzs_zone_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """arq's datetimes have a pytz zone, whose name is ``tzinfo.zone``; pool's zoneinfo zone answers it too."""
    get_tz.cache_clear()
    monkeypatch.setenv("ARQ_TIMEZONE", "Asia/Shanghai")
    try:
        when = ms_to_datetime(1_647_345_420_000)
    finally:
        get_tz.cache_clear()
    assert when.isoformat() == "2022-03-15T19:57:00+08:00"
    assert (
        getattr(when.tzinfo, "zone", None) == "Asia/Shanghai" and getattr(when.tzinfo, "key", None) == "Asia/Shanghai"
    )


ARQS_REDIS_SETTINGS = [
    "host", "port", "unix_socket_path", "database", "username", "password", "ssl", "ssl_keyfile", "ssl_certfile",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname", "conn_timeout", "conn_retries",
    "conn_retry_delay", "max_connections", "sentinel", "sentinel_master", "retry_on_timeout", "retry_on_error",
    "retry",
]  # fmt: skip


def test_redis_settings_asdict_and_repr_are_arqs_plus_pools_settings_in_use() -> None:
    """Code ported from arq compares ``asdict(settings)`` (and its repr) with arq's fields: pool's own show only
    when set to other than their default, and are then kept by ``dataclasses.replace``."""
    assert list(dataclasses.asdict(RedisSettings.from_dsn("unix:///run/redis/redis.sock"))) == ARQS_REDIS_SETTINGS
    assert repr(RedisSettings(port=123)) == (
        "RedisSettings(host='localhost', port=123, unix_socket_path=None, database=0, username=None, password=None, "
        "ssl=False, ssl_keyfile=None, ssl_certfile=None, ssl_cert_reqs='required', ssl_ca_certs=None, "
        "ssl_ca_data=None, ssl_check_hostname=False, conn_timeout=1, conn_retries=5, conn_retry_delay=1, "
        "max_connections=None, sentinel=False, sentinel_master='mymaster', "
        "retry_on_timeout=False, retry_on_error=None, retry=None)"
    )
    durable = RedisSettings(wait_replicas=1, password="s3cret")
    assert list(dataclasses.asdict(durable)) == [*ARQS_REDIS_SETTINGS, "wait_replicas"]
    assert repr(durable).endswith("retry=None, wait_replicas=1)") and "s3cret" not in repr(durable)
    moved = dataclasses.replace(durable, port=7000)
    assert (moved.port, moved.wait_replicas) == (7000, 1)
    assert durable != RedisSettings(password="s3cret")  # equality still compares every field
    assert len(dataclasses.fields(RedisSettings)) > len(ARQS_REDIS_SETTINGS)  # the class lists them all


async def test_create_pool_connects_once_per_attempt_as_arq_does(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """conn_retries=2: three connections in all, not three times redis-py's own retries of each (which made 150
    attempts take minutes); the server refuses each (max number of clients reached) and counts it."""
    server = redis_server_factory(unix_socket=True)
    admin = server.client()
    try:
        admin.config_set("maxclients", 1)  # admin is the one client: every other connection is refused
        assert server.unix_socket is not None
        with pytest.raises(RedisConnectionError):
            await create_pool(RedisSettings(unix_socket_path=server.unix_socket, conn_retries=2, conn_retry_delay=0))
        assert admin.info("stats")["rejected_connections"] == 3
    finally:
        admin.close()


async def test_create_pool_retries_commands_once_connected(redis_server_factory: Callable[..., RedisServer]) -> None:
    """The first PING is not retried inside redis-py, but later commands are: a connection broken by a Redis
    restart is replaced by the next command."""
    server = redis_server_factory()
    pool = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        await pool.set("k", "v")
        server.restart()
        assert await pool.ping()
    finally:
        await pool.aclose()


async def test_worker_timezone_is_the_systems_and_cron_follows_the_local_zone(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arq shows the system zone (its offset at start) in ``worker.timezone``; pool's cron still reads the local
    zone at each tick, so a zone change (DST, here TZ) is followed."""
    worker = make_worker(redis_url, functions=[add])
    assert worker.timezone is not None and worker.timezone == datetime.now().astimezone().tzinfo
    monkeypatch.setenv("TZ", "Asia/Shanghai" if worker.timezone.utcoffset(None) != timedelta(hours=8) else "UTC")
    time.tzset()
    try:
        assert worker._now().utcoffset() == datetime.now().astimezone().utcoffset() != worker.timezone.utcoffset(None)
    finally:
        monkeypatch.undo()
        time.tzset()
    given = make_worker(redis_url, functions=[add], timezone=UTC)
    assert given.timezone is UTC and given._now().tzinfo is UTC


async def test_a_burst_main_ends_with_the_last_jobs_line(
    redis: PoolRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """arq logs nothing after a burst run: "shutdown complete" is then at DEBUG, so the job's line is the last
    at INFO; a requested stop (a signal, the supervisor) and ``run()`` (``pool worker``) log it at INFO."""
    caplog.set_level(logging.INFO)
    await redis.enqueue_job("add", 1, 2, _job_id="last")
    await run_burst(redis_url, functions=[add])
    assert caplog.records[-1].getMessage().endswith("← last:add ● 3")
    caplog.clear()
    async with running_worker(redis_url, functions=[add]):
        pass
    shutdown = [r for r in caplog.records if r.getMessage().startswith("shutdown complete")]
    assert [r.levelno for r in shutdown] == [logging.INFO]


def test_arqs_serialize_result_is_none_when_the_arguments_cannot_be_encoded() -> None:
    """arq's contract for ``pool.jobs.serialize_result``; pool's worker records such a job's end anyway."""

    class Opaque:
        pass

    kept = serialize_result("f", (1,), {}, 1, 123, True, Opaque(), 123, 123, "ref", "q", "j")
    assert kept is not None and str(deserialize_result(kept, None).result).startswith("unable to serialize result")
    assert serialize_result("f", (Opaque(),), {}, 1, 123, True, Opaque(), 123, 123, "ref", "q", "j") is None
    record, kept_as_given = encode_result(
        function="f", args=(Opaque(),), kwargs={}, attempts=1, enqueue_ms=1, success=True, result=1, start_ms=1,
        finish_ms=1, queue_name="q", job_id="j", serializer=None,
    )  # fmt: skip
    assert record and not kept_as_given
