"""pool.rq: rq's Queue API for synchronous code, against a real Redis and real ``pool worker`` processes.

Every test here is synchronous: no event loop runs in the test's thread (``test_no_event_loop_runs_here``). The
jobs' functions and the workers' settings are in tests/apps/rq_jobs.py.
"""

from __future__ import annotations

import asyncio
import importlib
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest
import redis
from redis import Redis

from pool import RedisSettings
from pool.rq import Dependency, DuplicateJobError, Job, JobStatus, Queue, Result, TimeoutFormatError
from pool.storage.keys import QueueKeys
from pool.storage.serializers import SerializationError
from pool.worker import func
from tests.helpers import wait_for_sync
from tests.worker_utils import WorkerProcess

APP = "tests.apps.rq_jobs"
DEFAULT = f"{APP}.WorkerSettings"
LOW = f"{APP}.LowSettings"
WORDS = 889  # the page's word count, as in rq's documentation

SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def rq_app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """tests/apps/rq_jobs.py imported for this test's Redis (its ``@job`` enqueues there); the workers spawned
    after this inherit the same URL."""
    monkeypatch.setenv("POOL_TEST_RQ_URL", redis_url)
    sys.modules.pop(APP, None)
    yield importlib.import_module(APP)
    sys.modules.pop(APP, None)


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def page_url() -> Iterator[str]:
    """A local web page of WORDS words, for rq's ``count_words_at_url``."""
    body = " ".join(f"word{i}" for i in range(WORDS)).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/page"
    server.shutdown()
    server.server_close()


def result_of(job: Job, timeout: float = 15) -> Result:
    """The job's result, waited for on the worker's notification (a deadline, not a sleep)."""
    result = job.latest_result(timeout=timeout)
    assert result is not None, f"no result for {job!r} within {timeout}s (status {job.get_status()})"
    return result


def runs(redis_conn: Redis, count: int, timeout: float = 15) -> list[str]:
    """The first ``count`` tags the jobs recorded, in the order they ran."""

    def recorded() -> list[str]:
        tags = [tag.decode() for tag in redis_conn.lrange("rq-test:runs", 0, -1)]
        return tags if len(tags) >= count else []

    return wait_for_sync(recorded, timeout=timeout, interval=0.02, message=f"{count} jobs recorded their runs")


def test_no_event_loop_runs_here() -> None:
    """The premise of every test below: the test's thread has no running event loop."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_rq_documented_queue_examples_run_after_the_import_change(
    rq_app: ModuleType, redis_url: str, page_url: str, spawn_worker: SpawnWorker
) -> None:
    """rq's queue documentation (docs/docs/index.md), with ``from rq ...`` changed to ``from pool.rq ...``; the
    ``time.sleep(2)`` waits are deadlines here, and the functions live in tests/apps/rq_jobs.py."""
    from pool.rq import Queue  # was: from rq import Queue
    from pool.rq.job import Dependency  # was: from rq.job import Dependency

    count_words_at_url, fib, add = rq_app.count_words_at_url, rq_app.fib, rq_app.add
    redis_conn = Redis.from_url(redis_url)

    # Enqueueing jobs
    q = Queue(connection=redis_conn)  # no args implies the default queue
    job = q.enqueue(count_words_at_url, page_url)
    assert job.result is None
    spawn_worker(settings=DEFAULT)
    spawn_worker(settings=LOW)
    assert wait_for_sync(lambda: job.result, timeout=15, interval=0.05) == WORDS

    q = Queue("low", connection=redis_conn)
    low_job = q.enqueue(count_words_at_url, page_url)
    assert result_of(low_job).return_value == WORDS

    # rq's options taken out of the keywords, and args=/kwargs= for a function whose parameters clash with them
    # (rq's example passes them to count_words_at_url, which takes neither: echo shows what the function got)
    clash = q.enqueue(
        rq_app.echo,
        ttl=30,  # This ttl will be used by RQ
        args=(page_url,),
        kwargs={
            "description": "Function description",  # This is passed on to the function
            "ttl": 15,  # This is passed on to the function
        },
    )
    assert result_of(clash).return_value == {
        "args": [page_url],
        "kwargs": {"description": "Function description", "ttl": 15},
    }

    # a function given as a string reference
    q = Queue("low", connection=redis_conn)
    assert result_of(q.enqueue("tests.apps.rq_jobs.my_func", 3, 4)).return_value == 12

    # Bulk job enqueueing (the function's arguments given as args: rq's own example passes the URL as args itself)
    jobs = q.enqueue_many(
        [
            Queue.prepare_data(count_words_at_url, (page_url,), job_id="my_job_id"),
            Queue.prepare_data(count_words_at_url, (page_url,), job_id="my_other_job_id"),
        ]
    )
    assert [job.id for job in jobs] == ["my_job_id", "my_other_job_id"]
    assert [result_of(job).return_value for job in jobs] == [WORDS, WORDS]
    with pytest.raises(TypeError, match=r"args must be a tuple or a list.*args=\('http"):
        Queue.prepare_data(count_words_at_url, page_url, job_id="my_job_id")

    # Job dependencies
    q = Queue("low", connection=redis_conn)
    report_job = q.enqueue(rq_app.generate_report)
    send_job = q.enqueue(rq_app.send_report, depends_on=report_job)
    queue = Queue("low", connection=redis_conn)
    foo_job = queue.enqueue(rq_app.foo)
    bar_job = queue.enqueue(rq_app.bar)
    baz_job = queue.enqueue(rq_app.baz, depends_on=[foo_job, bar_job])
    for done in (send_job, baz_job):
        assert result_of(done).type == Result.Type.SUCCESSFUL
    order = [tag.decode() for tag in redis_conn.lrange("rq-test:runs", 0, -1)]
    assert order.index("generate_report") < order.index("send_report")
    assert order.index("baz") > max(order.index("foo"), order.index("bar"))

    queue = Queue(connection=redis_conn)
    job_1 = queue.enqueue(rq_app.div_by_zero, on_success=rq_app.report_success, on_failure=rq_app.report_failure)
    dependency = Dependency(jobs=[job_1], allow_failure=True)  # allow_failure defaults to False
    job_2 = queue.enqueue(
        rq_app.say_hello, depends_on=dependency, on_success=rq_app.report_success, on_failure=rq_app.report_failure
    )
    # job_2 will execute even though its dependency (job_1) fails
    assert result_of(job_2).return_value == "Hello Stranger!"
    assert job_1.is_failed
    wait_for_sync(lambda: redis_conn.llen("rq-test:callbacks") >= 2, message="both callbacks ran")
    assert sorted(c.decode() for c in redis_conn.lrange("rq-test:callbacks", 0, -1)) == [
        f"failure {job_1.id} ZeroDivisionError: division by zero",
        f"success {job_2.id} Hello Stranger!",
    ]

    # Working with queues (a queue no worker reads)
    q = Queue("idle", connection=redis_conn)
    q.enqueue(fib, 3, job_id="my_id")
    q.enqueue(fib, 4)
    q.enqueue_in(timedelta(minutes=5), fib, 5)  # scheduled: not counted
    assert len(q) == 2
    queued_job_ids = q.job_ids  # Gets a list of job IDs from the queue
    queued_jobs = q.jobs  # Gets a list of enqueued job instances
    assert queued_job_ids[0] == "my_id" and len(queued_job_ids) == 2
    assert [job.id for job in queued_jobs] == queued_job_ids
    job = q.fetch_job("my_id")  # Returns job having ID "my_id"
    assert job is not None and job.func_name == "fib" and job.args == (3,)
    q.empty()
    assert len(q) == 0
    q.delete(delete_jobs=True)
    assert not redis_conn.keys(QueueKeys("idle").pattern())

    # The @job decorator (tests/apps/rq_jobs.py: @job('low', connection=..., timeout=5) def add(x, y))
    job = add.delay(3, 4)
    assert wait_for_sync(lambda: job.result, timeout=15, interval=0.05) == 7
    assert add(1, 2) == 3

    # Bypassing workers
    q = Queue("low", is_async=False, connection=redis_conn)
    job = q.enqueue(fib, 8)
    assert job.result == 21
    redis_conn.close()


def test_job_timeout_fails_a_job_running_longer_and_overrides_the_workers(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    """The worker's own job_timeout is 1 s (ShortTimeout): a job's job_timeout wins over it, both ways."""
    q = Queue(connection=redis_conn)
    over = q.enqueue(rq_app.nap, 5, job_timeout=1)
    longer = q.enqueue(rq_app.nap, 1.5, job_timeout="5s")
    unbounded = q.enqueue(rq_app.nap, 1.5, job_timeout=-1)
    worker_default = q.enqueue(rq_app.nap, 1.5)
    assert (over.timeout, longer.timeout, unbounded.timeout, worker_default.timeout) == (1, 5, -1, None)
    spawn_worker(settings=f"{APP}.ShortTimeout")

    failed = result_of(over)
    assert failed.type == Result.Type.FAILED
    assert isinstance(failed.exception, TimeoutError)
    assert "timed out after 1s" in str(failed.exception)
    assert over.get_status() == JobStatus.FAILED
    assert result_of(longer).return_value == 1.5
    assert result_of(unbounded).return_value == 1.5
    assert result_of(worker_default).type == Result.Type.FAILED  # the worker's 1 s


def test_default_timeout_of_the_queue_applies_to_jobs_without_their_own(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    q = Queue(connection=redis_conn, default_timeout="5s")
    job = q.enqueue(rq_app.nap, 1.5)
    assert job.timeout == 5
    spawn_worker(settings=f"{APP}.ShortTimeout")
    assert result_of(job).return_value == 1.5


def test_result_ttl_and_failure_ttl_set_the_ttls_of_the_result_and_failure_records(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    keys = QueueKeys("default")
    q = Queue(connection=redis_conn)
    kept_2m = q.enqueue(rq_app.fib, 10, result_ttl=120)
    kept_forever = q.enqueue(rq_app.fib, 11, result_ttl=-1)
    not_kept = q.enqueue(rq_app.fib, 12, result_ttl=0)
    failed_5m = q.enqueue(rq_app.fail, "boom", failure_ttl=300, result_ttl=60)
    failed_not_kept = q.enqueue(rq_app.fail, "quiet", failure_ttl=0)
    worker_defaults = q.enqueue(rq_app.fail, "defaults")
    # a result kept 0 s reaches only a caller already waiting: wait in a thread before the worker starts
    waited: list[Result | None] = []
    waiter = threading.Thread(target=lambda: waited.append(not_kept.latest_result(timeout=20)))
    waiter.start()
    wait_for_sync(lambda: redis_conn.exists(keys.waiters(not_kept.id)), message="the waiter registered")
    spawn_worker(settings=DEFAULT)
    waiter.join(25)
    assert waited and waited[0] is not None and waited[0].return_value == 144
    for job in (kept_2m, kept_forever, failed_5m, failed_not_kept, worker_defaults):
        result_of(job)
    assert 100_000 < redis_conn.pttl(keys.result(kept_2m.id)) <= 120_000
    assert redis_conn.pttl(keys.result(kept_forever.id)) == -1
    assert not redis_conn.exists(keys.result(not_kept.id))
    assert not_kept.get_status() is None  # nothing kept: the queue knows nothing of it any more

    assert 50_000 < redis_conn.pttl(keys.result(failed_5m.id)) <= 60_000
    assert 280_000 < redis_conn.pttl(keys.failed_job(failed_5m.id)) <= 300_000
    assert redis_conn.zscore(keys.failed, failed_5m.id) is not None
    assert failed_5m.is_failed and "ValueError: boom" in (failed_5m.exc_info or "")

    assert not redis_conn.exists(keys.failed_job(failed_not_kept.id))
    assert redis_conn.zscore(keys.failed, failed_not_kept.id) is None
    assert failed_not_kept.is_failed  # its result is kept (the worker's keep_result), its failure record not

    assert 3_500_000 < redis_conn.pttl(keys.result(worker_defaults.id)) <= 3_600_000  # keep_result 3600
    assert 7 * 86_400_000 - 100_000 < redis_conn.pttl(keys.failed_job(worker_defaults.id)) <= 7 * 86_400_000


def test_a_failure_kept_only_in_the_failed_registry_is_still_fetched_as_failed(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    """rq keeps a failed job for failure_ttl whatever its result_ttl: so does fetch_job, from the registry."""
    q = Queue(connection=redis_conn)
    job = q.enqueue(rq_app.fail, "gone", result_ttl=0, failure_ttl=600)
    spawn_worker(settings=DEFAULT)
    assert result_of(job).type == Result.Type.FAILED
    assert not redis_conn.exists(QueueKeys("default").result(job.id))
    fetched = q.fetch_job(job.id)
    assert fetched is not None
    assert fetched.get_status() == JobStatus.FAILED
    assert fetched.func_name == "fail" and fetched.args == ("gone",)
    assert "ValueError: gone" in (fetched.exc_info or "")


def test_ttl_expires_a_job_that_did_not_start_in_time(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    keys = QueueKeys("default")
    q = Queue(connection=redis_conn)
    expiring = q.enqueue(rq_app.fib, 5, ttl=1)
    lasting = q.enqueue(rq_app.fib, 6)
    assert 0 < redis_conn.pttl(keys.job(expiring.id)) <= 1000
    assert redis_conn.pttl(keys.job(lasting.id)) > 3_600_000
    wait_for_sync(lambda: not redis_conn.exists(keys.job(expiring.id)), timeout=5, message="the job's ttl ran out")
    assert q.fetch_job(expiring.id) is None

    spawn_worker(settings=DEFAULT)
    assert result_of(lasting).return_value == 8
    expired = result_of(expiring)
    assert expired.type == Result.Type.FAILED and "job expired" in (expired.exc_string or "")


def test_ttl_of_a_scheduled_job_counts_from_when_it_is_due(rq_app: ModuleType, redis_conn: Redis) -> None:
    """rq's ttl bounds the time a job waits in the queue: a job due in 60 s with ttl=30 lives 90 s."""
    q = Queue(connection=redis_conn)
    job = q.enqueue_in(timedelta(seconds=60), rq_app.fib, 5, ttl=30)
    assert 85_000 < redis_conn.pttl(QueueKeys("default").job(job.id)) <= 90_000
    assert job.get_status() == JobStatus.SCHEDULED


def test_at_front_job_runs_first(rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker) -> None:
    q = Queue(connection=redis_conn)
    first = q.enqueue(rq_app.record, "a")
    second = q.enqueue(rq_app.record, "b")
    front = q.enqueue(rq_app.record, "c", at_front=True)
    assert q.job_ids == [front.id, first.id, second.id]
    assert q.get_job_position(front) == 0 and q.get_job_position(second.id) == 2
    spawn_worker(settings=f"{APP}.OneAtATime")
    assert runs(redis_conn, 3) == ["c", "a", "b"]


def test_depends_on_waits_for_its_dependencies(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    q = Queue(connection=redis_conn)
    gate = q.enqueue(rq_app.record, "first")
    after = q.enqueue(rq_app.record, "second", depends_on=gate)
    after_id = q.enqueue(rq_app.record, "third", depends_on=[gate.id, after])
    broken = q.enqueue(rq_app.fail, "no")
    blocked = q.enqueue(rq_app.record, "never", depends_on=broken)
    tolerant = q.enqueue(rq_app.record, "anyway", depends_on=Dependency(jobs=broken, allow_failure=True))
    for job in (after, after_id, blocked, tolerant):
        assert job.get_status() == JobStatus.DEFERRED
    assert len(q) == 2  # only the jobs ready to run: gate and broken
    assert q.job_ids == [gate.id, broken.id]

    spawn_worker(settings=DEFAULT)
    for job in (after_id, tolerant):
        assert result_of(job).type == Result.Type.SUCCESSFUL
    order = runs(redis_conn, 4)
    assert order.index("first") < order.index("second") < order.index("third")
    assert "anyway" in order and "never" not in order
    failed = result_of(blocked)  # pool fails a job whose dependency failed (rq leaves it deferred for ever)
    assert failed.type == Result.Type.FAILED and f"dependency {broken.id} failed" in (failed.exc_string or "")


def test_description_round_trips(rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker) -> None:
    q = Queue(connection=redis_conn)
    described = q.enqueue(rq_app.fib, 7, description="the seventh")
    plain = q.enqueue(rq_app.echo, 1, "two", key=[3])
    assert described.description == "the seventh"
    assert plain.description == "echo(1, 'two', key=[3])"  # rq's default: the call
    fetched = q.fetch_job(described.id)
    assert fetched is not None and fetched.description == "the seventh"
    spawn_worker(settings=DEFAULT)
    result_of(described)
    finished = q.fetch_job(described.id)  # read back from its result now
    assert finished is not None and finished.get_status() == JobStatus.FINISHED
    assert finished.description == "the seventh"
    assert finished.enqueued_at is not None and finished.started_at is not None and finished.ended_at is not None
    assert finished.enqueued_at <= finished.started_at <= finished.ended_at


def test_len_job_ids_fetch_job_empty_and_delete(rq_app: ModuleType, redis_conn: Redis) -> None:
    """No worker: what a queue holds, and emptying and deleting it."""
    q = Queue(connection=redis_conn)
    assert len(q) == 0 and q.is_empty() and bool(q)
    ready = [q.enqueue(rq_app.fib, n) for n in range(3)]
    scheduled = q.enqueue_at(datetime.now() + timedelta(hours=1), rq_app.fib, 9)
    waiting = q.enqueue(rq_app.fib, 10, depends_on=ready[0])
    assert len(q) == q.count == 3
    assert q.job_ids == [job.id for job in ready]
    assert q.get_job_ids(1, 1) == [ready[1].id]
    assert [job.id for job in q.get_jobs(offset=1)] == [ready[1].id, ready[2].id]
    assert scheduled.get_status() == JobStatus.SCHEDULED and waiting.get_status() == JobStatus.DEFERRED

    fetched = q.fetch_job(ready[2].id)
    assert fetched is not None
    assert (fetched.get_status(), fetched.func_name, fetched.args, fetched.origin) == (
        JobStatus.QUEUED,
        "fib",
        (2,),
        "default",
    )
    assert fetched.enqueued_at is not None and abs(fetched.enqueued_at.timestamp() - time.time()) < 60
    assert q.fetch_job("no-such-job") is None
    assert Queue("other", connection=redis_conn).fetch_job(ready[0].id) is None  # jobs belong to their queue
    assert Job.fetch(ready[0].id, connection=redis_conn).func_name == "fib"

    assert q.empty() == 5  # ready, scheduled and waiting
    assert len(q) == 0 and q.job_ids == [] and q.fetch_job(scheduled.id) is None
    q.enqueue(rq_app.fib, 1)
    q.delete(delete_jobs=True)
    assert not redis_conn.keys(QueueKeys("default").pattern())
    with pytest.raises(ValueError, match="cannot delete a queue and keep its jobs"):
        q.delete(delete_jobs=False)


def test_kwargs_named_like_rq_options_go_to_the_function_through_args_and_kwargs(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    q = Queue(connection=redis_conn)
    job = q.enqueue(rq_app.echo, ttl=30, description="queue's", args=(1,), kwargs={"ttl": 15, "description": "f's"})
    assert 25_000 < redis_conn.pttl(QueueKeys("default").job(job.id)) <= 30_000  # the queue took ttl=30
    assert job.description == "queue's"
    plain = q.enqueue(rq_app.echo, 1, other=2, job_timeout=9)  # rq's options come out, the rest is the function's
    assert plain.timeout == 9
    spawn_worker(settings=DEFAULT)
    assert result_of(job).return_value == {"args": [1], "kwargs": {"ttl": 15, "description": "f's"}}
    assert result_of(plain).return_value == {"args": [1], "kwargs": {"other": 2}}

    with pytest.raises(TypeError, match="extra positional arguments"):
        q.enqueue(rq_app.echo, 1, args=(2,))
    with pytest.raises(TypeError, match=r"pass every argument of the function in them \(got also other\)"):
        q.enqueue(rq_app.echo, args=(2,), other=3)


def test_job_decorator_delay_and_a_pool_function_taking_ctx(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    """``@job`` marks the function as rq's: the worker registers it as it is and calls it without ctx; a pool
    function (ctx first) enqueued from synchronous code still gets its ctx."""
    job = rq_app.add.delay(3, 4, job_id="sum")
    also = rq_app.add.enqueue(5, 6)
    assert job.id == "sum" and job.origin == "low" and job.timeout == 5
    with_ctx = Queue(connection=redis_conn).enqueue(rq_app.with_ctx, 5)
    legacy = Queue(connection=redis_conn).enqueue(rq_app.legacy, 5)  # registered with takes_ctx=False
    spawn_worker(settings=LOW)
    spawn_worker(settings=DEFAULT)
    assert result_of(job).return_value == 7
    assert result_of(also).return_value == 11
    assert result_of(with_ctx).return_value == [with_ctx.id, 5]
    assert result_of(legacy).return_value == 50
    assert rq_app.add(1, 2) == 3  # still the function


def test_functions_given_by_dotted_path_or_registered_name(
    rq_app: ModuleType, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    """rq's dotted path runs when the worker registered that function (by reference); pool's registered name too."""
    q = Queue(connection=redis_conn)
    by_path = q.enqueue("tests.apps.rq_jobs.fib", 10)
    by_name = q.enqueue("fib", 11)
    unknown = q.enqueue("tests.apps.rq_jobs.nothing_here", 1)
    spawn_worker(settings=DEFAULT)
    assert result_of(by_path).return_value == 55
    assert result_of(by_name).return_value == 89
    missing = result_of(unknown)
    assert missing.type == Result.Type.FAILED and "function 'tests.apps.rq_jobs.nothing_here' not found" in str(
        missing.exception
    )


def test_is_async_false_runs_the_job_in_the_caller(rq_app: ModuleType, redis_conn: Redis) -> None:
    """No worker: the job runs before enqueue returns; its result and failure are recorded as a worker's."""
    keys = QueueKeys("inline")
    q = Queue("inline", is_async=False, connection=redis_conn)
    job = q.enqueue(rq_app.fib, 8, description="eight", result_ttl=100)
    assert job.result == 21 and job.is_finished
    assert 90_000 < redis_conn.pttl(keys.result(job.id)) <= 100_000
    seen = Queue("inline", connection=redis_conn).fetch_job(job.id)  # another client sees what it left
    assert seen is not None and seen.return_value() == 21 and seen.description == "eight"
    assert len(q) == 0  # it never went through the queue

    failed = q.enqueue(rq_app.fail, "inline", on_failure=rq_app.report_failure)
    assert failed.is_failed and failed.result is None
    assert "ValueError: inline" in (failed.exc_info or "")
    assert redis_conn.exists(keys.failed_job(failed.id))
    assert redis_conn.lrange("rq-test:callbacks", 0, -1) == [f"failure {failed.id} ValueError: inline".encode()]

    async_job = q.enqueue(rq_app.nap, 0.01)  # an async function: run to its end here (no loop was running)
    assert async_job.result == 0.01
    ctx_job = q.enqueue(rq_app.with_ctx, 3)  # a pool function gets a ctx here too
    assert ctx_job.result == [ctx_job.id, 3]
    # an rq function not marked is given as a worker registers it; as it is, it is called with ctx, as a worker
    # that registered it as it is would call it (and fails the same way)
    assert q.enqueue(func(rq_app.legacy, takes_ctx=False), 4).result == 40
    assert "takes 1 positional argument but 2 were given" in (q.enqueue(rq_app.legacy, 4).exc_info or "")
    dependent = q.enqueue(rq_app.fib, 5, depends_on=job)  # finished already: runs
    assert dependent.result == 5
    with pytest.raises(DuplicateJobError):
        q.enqueue(rq_app.fib, 1, job_id=job.id)
    with pytest.raises(TypeError, match="pass the function itself or its dotted path"):
        q.enqueue("fib", 3)
    assert q.enqueue("tests.apps.rq_jobs.fib", 9).result == 34


def test_rq_serializer_encodes_the_jobs_and_results(rq_app: ModuleType, redis_conn: Redis) -> None:
    """rq's ``serializer=`` (an object with dumps and loads): pickle carries what msgpack cannot, both ways."""
    q = Queue("pickled", is_async=False, serializer=pickle, connection=redis_conn)
    job = q.enqueue(rq_app.echo, Fraction(1, 3))
    assert job.result == {"args": [Fraction(1, 3)], "kwargs": {}}
    fetched = Job.fetch(job.id, connection=redis_conn, serializer=pickle, queue="pickled")
    assert fetched.args == (Fraction(1, 3),) and fetched.return_value() == job.result
    with pytest.raises(SerializationError):
        Queue("pickled", connection=redis_conn).enqueue(rq_app.echo, Fraction(1, 3))  # msgpack refuses it


def test_enqueue_many_sends_its_jobs_in_one_round_trip(
    rq_app: ModuleType, redis_url: str, spawn_worker: SpawnWorker
) -> None:
    """Jobs leave in one write to Redis: 150 in one ENQUEUE call, 500 in three calls of at most 200 pipelined
    (after redis-py's check that the script is loaded); a taken id is reported."""
    writes = 0

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            nonlocal writes
            writes += 1
            super().send_packed_command(command, check_health)

    server = RedisSettings.from_dsn(redis_url)
    assert isinstance(server.host, str)
    pool = redis.ConnectionPool(connection_class=CountingConnection, host=server.host, port=server.port)
    client = Redis(connection_pool=pool)
    q = Queue(connection=client)
    q.enqueue(rq_app.fib, 1)  # the script is loaded on this first call
    datas = [Queue.prepare_data(rq_app.fib, (n % 15,), job_id=f"bulk-{n}") for n in range(500)]
    writes = 0
    q.enqueue_many(Queue.prepare_data(rq_app.fib, (1,), job_id=f"one-call-{n}") for n in range(150))
    assert writes == 1  # one ENQUEUE call
    writes = 0
    jobs = q.enqueue_many(datas)
    assert writes == 2  # redis-py's pipeline asks SCRIPT EXISTS first, then the three calls go out in one write
    assert len(jobs) == 500 and len(q) == 651
    assert q.job_ids[151:] == [f"bulk-{n}" for n in range(500)]

    with pytest.raises(DuplicateJobError, match="'bulk-7'") as refused:
        q.enqueue_many([Queue.prepare_data(rq_app.fib, (1,), job_id="new-1"), datas[7]])
    assert refused.value.job_ids == ["bulk-7"]
    assert [job.id if job else None for job in refused.value.jobs] == ["new-1", None]
    spawn_worker(settings=DEFAULT)
    assert result_of(jobs[-1]).return_value == fib_of(499 % 15)
    client.close()


def fib_of(n: int) -> int:
    return n if n < 2 else fib_of(n - 1) + fib_of(n - 2)


def test_enqueue_from_many_threads_at_once(
    rq_app: ModuleType, redis_url: str, redis_conn: Redis, spawn_worker: SpawnWorker
) -> None:
    """One Queue (one redis-py client) shared by 8 threads, and queues made per thread from a URL: every job is
    enqueued once, every one runs; racing enqueues of one id make exactly one job."""
    shared = Queue(connection=redis_conn)
    start = threading.Barrier(8)
    enqueued: list[str] = []
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def producer(n: int) -> None:
        try:
            own = Queue(connection=redis_url)  # a client of its own, from the URL
            start.wait(5)
            ids = [shared.enqueue(rq_app.record, f"{n}-{i}").id for i in range(40)]
            ids += [own.enqueue(rq_app.record, f"{n}-own-{i}").id for i in range(10)]
            try:
                ids.append(shared.enqueue(rq_app.record, "once", job_id="the-one").id)
            except DuplicateJobError:
                with lock:
                    taken.append(f"thread {n}")
            own.close()
            with lock:
                enqueued.extend(ids)
        except BaseException as exc:  # reported below: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(taken) == 7 and "the-one" in enqueued
    assert len(enqueued) == len(set(enqueued)) == 8 * 50 + 1
    assert len(shared) == 401

    spawn_worker(settings=DEFAULT)
    tags = runs(redis_conn, 401, timeout=30)
    assert sorted(tags) == sorted(
        [f"{n}-{i}" for n in range(8) for i in range(40)]
        + [f"{n}-own-{i}" for n in range(8) for i in range(10)]
        + ["once"]
    )


def test_bad_input_is_refused_with_a_clear_error(rq_app: ModuleType, redis_url: str, redis_conn: Redis) -> None:
    q = Queue(connection=redis_conn)
    with pytest.raises(ValueError, match="0 timeout is not allowed"):
        q.enqueue(rq_app.fib, 1, job_timeout=0)
    with pytest.raises(TimeoutFormatError, match="'1x'"):
        q.enqueue(rq_app.fib, 1, job_timeout="1x")
    with pytest.raises(ValueError, match="ttl must be greater than 0"):
        q.enqueue(rq_app.fib, 1, ttl=0)
    with pytest.raises(ValueError, match="failure_ttl must not be negative"):
        q.enqueue(rq_app.fib, 1, failure_ttl=-1)
    with pytest.raises(TypeError, match="meta= is not supported by pool"):
        q.enqueue(rq_app.fib, 1, meta={"a": 1})
    with pytest.raises(TypeError, match="retry= is not supported by pool: give the function max_tries"):
        q.enqueue(rq_app.fib, 1, retry=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'job_timout'"):
        q.enqueue_call(rq_app.fib, (1,), job_timout=3)
    with pytest.raises(TypeError, match="pipeline= is not supported"):
        q.enqueue_many([], pipeline=object())
    with pytest.raises(ValueError, match="decode_responses=True"):
        Queue(connection=Redis.from_url(redis_url, decode_responses=True))
    with pytest.raises(TypeError, match=r"synchronous redis\.Redis"):
        Queue(connection=redis.asyncio.Redis.from_url(redis_url))
    with pytest.raises(TypeError, match="missing the connection"):
        Queue()
    with pytest.raises(ValueError, match="invalid queue name"):
        Queue("bad{name}", connection=redis_conn)
    with pytest.raises(TypeError, match="needs a connection"):
        from pool.rq import job

        job("low")
    assert len(q) == 0
