"""The worker: fetch jobs, run them, commit what happened, and keep its claim on running jobs alive.

Four small loops share one event loop:
- fetch:     XREADGROUP ... BLOCK for as many jobs as there are free slots (pushed, not polled), then start them;
- heartbeat: refresh the idle time of running entries, and take over entries of workers that stopped
             heartbeating (they crashed): such a job runs again after ~3 heartbeats, not after its timeout;
- schedule:  move due deferred jobs onto the stream, enqueue due cron ticks, act on abort requests;
- health:    write this worker's health line.
Each job runs in its own task (``JobRunner``); results go out in batches (``CompletionBatcher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, cast
from uuid import uuid4

from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError

from ..client.connections import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EXPIRES_EXTRA_MS,
    AutoPipelinedRedis,
    PoolRedis,
    create_pool,
    redis_summary,
)
from ..redis.retries import retrying
from ..redis.settings import RedisSettings
from ..storage.codecs import JobResult
from ..storage.eviction import EvictionPolicyError, judge_policy
from ..storage.keys import DEFAULT_QUEUE_NAME, PRIORITIES, validate_queue_name
from ..storage.partitions import check_limits, cron_partition, limit_share
from ..storage.queue import Completion, Delivery, PartitionMismatch, RedisQueue, partition_count
from ..storage.serializers import Deserializer, Serializer
from ..utils import now_ms, plural, run_on_best_loop, to_seconds
from .batcher import CompletionBatcher
from .checks import check_cron_jobs, check_hooks, job_types_deserializer, resolve_functions
from .cron import CronJob
from .execution import FailureHook, Hook, JobRunner, Outcome, OutcomeKind, RunnerSettings
from .functions import Function, Retry, func
from .metrics import ABORTED_AT, COMPLETED_AT, FAILED, FAILED_AT, RETRIED_AT, JobMetrics
from .scheduler import CronDuty, CronScheduler
from .slots import Slots

__all__ = ["Retry", "Worker", "check_health", "create_worker", "func", "run_worker"]

# the kinds bound once: a member lookup on an Enum class costs ~0.17 µs on Python 3.11, paid per job
_ABORTED = OutcomeKind.ABORTED
_COMPLETE = OutcomeKind.COMPLETE
_FAILED = OutcomeKind.FAILED
_RETRIED = OutcomeKind.RETRIED

logger = logging.getLogger("pool.worker")


HIGH_FIRST = tuple(reversed(PRIORITIES))
STARVATION_GUARD = 8  # one fetch in this many serves a lower priority first, each lower one in turn
# the guard fetches' orders: priority 0 first, then 1 first, then 2 first (the rest highest first)
GUARD_ORDERS = [(low, *(p for p in HIGH_FIRST if p != low)) for low in PRIORITIES[:-1]]


def _raise_if_fatal(exc: BaseException) -> None:
    """Retrying never fixes a refused password or a missing ACL permission: stop the worker (one line, exit 1)."""
    if isinstance(exc, (NoPermissionError, AuthenticationError)):
        raise exc


async def _cancel_until_done(tasks: list[asyncio.Task[Any]], rounds: int = 5) -> None:
    """Cancel and wait, again if a cancel was swallowed (see Worker._pause); never wait without a bound."""
    for _ in range(rounds):
        pending = [task for task in tasks if not task.done()]
        if not pending:
            break
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=2.0)
    stuck = [task for task in tasks if not task.done()]
    if stuck:
        logger.warning("%s did not stop when cancelled; shutting down without them", plural(len(stuck), "task"))
    for task in tasks:
        # A loop that ended on the same error as the one serve() raised (a refused permission meets every loop):
        # retrieved here, or asyncio prints its traceback as "never retrieved" when the task is collected.
        if task.done() and not task.cancelled():
            task.exception()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (its cause is reported elsewhere, or is a cancellation)."""
    if not future.cancelled():
        future.exception()


class FailedJobs(RuntimeError):
    """Raised by ``Worker.run_check`` when jobs failed: ``count`` of them, with the failed results kept in Redis."""

    def __init__(self, count: int, job_results: list[JobResult]) -> None:
        self.count = count
        self.job_results = job_results

    def __str__(self) -> str:
        if self.count == 1 and self.job_results:
            return f"1 job failed {self.job_results[0].result!r}"
        return f"{self.count} jobs failed:\n" + "\n".join(repr(r.result) for r in self.job_results)

    def __repr__(self) -> str:
        return f"<{self}>"


FETCH_BLOCK_MS = 1000  # how long a fetch blocks in XREADGROUP: bounds how long a stop waits for it
PARTIAL_FETCH_AFTER_S = 0.02  # a busy worker waits this long at most for a quarter of its slots to be free


def loop_time() -> float:
    return asyncio.get_running_loop().time()


class Worker:
    """Runs jobs from one queue. Keyword arguments follow arq's ``Worker``; see docs/ for each one.

    ``queue_read_limit`` is accepted so arq settings run unchanged, and not needed: each fetch reads up to the
    worker's free slots in one blocking stream read, so a read never takes more jobs than it can start.
    """

    def __init__(
        self,
        functions: Sequence[Function | Callable[..., Any]] = (),
        *,
        queue_name: str | None = DEFAULT_QUEUE_NAME,
        cron_jobs: Sequence[CronJob] | None = None,
        redis_settings: RedisSettings | None = None,
        redis_pool: PoolRedis | None = None,
        burst: bool = False,
        on_startup: Hook | None = None,
        on_shutdown: Hook | None = None,
        on_job_start: Hook | None = None,
        on_job_end: Hook | None = None,
        after_job_end: Hook | None = None,
        on_job_failure: FailureHook | None = None,
        handle_signals: bool = True,
        job_completion_wait: float = 0,
        max_jobs: int = 10,
        job_timeout: float | timedelta = 300,
        keep_result: float | timedelta = 3600,
        keep_result_forever: bool = False,
        poll_delay: float | timedelta = 0.5,
        queue_read_limit: int | None = None,
        max_tries: int = 5,
        health_check_interval: float | timedelta = 3600,
        health_check_key: str | None = None,
        ctx: dict[str, Any] | None = None,
        retry_jobs: bool = True,
        allow_abort_jobs: bool = False,
        max_burst_jobs: int = -1,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        expires_extra_ms: int = EXPIRES_EXTRA_MS,
        timezone: tzinfo | None = None,
        log_results: bool = True,
        heartbeat_interval: float = 1.0,
        worker_id: str | None = None,
        schedule_cron: bool = True,
        failure_ttl: float | timedelta = timedelta(days=7),
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        auto_pipeline: bool = True,
        allow_eviction: bool = False,
        queue_partitions: int = 1,
        job_types: Sequence[type] | None = None,
    ) -> None:
        # a bad entry is one SettingsError (a ValueError) naming it, before anything runs (checks.py)
        self.functions: dict[str, Function] = {f.name: f for f in resolve_functions(functions)}
        self.cron_jobs: list[CronJob] = check_cron_jobs(cron_jobs)
        check_hooks(
            {
                "on_startup": on_startup,
                "on_shutdown": on_shutdown,
                "on_job_start": on_job_start,
                "on_job_end": on_job_end,
                "after_job_end": after_job_end,
                "on_job_failure": on_job_failure,
            }
        )
        for cron_job in self.cron_jobs:
            self.functions[cron_job.name] = Function(
                name=cron_job.name,
                coroutine=cron_job.coroutine,
                timeout_s=cron_job.timeout_s,
                keep_result_s=cron_job.keep_result_s,
                keep_result_forever=cron_job.keep_result_forever,
                max_tries=cron_job.max_tries,
            )
        if not self.functions:
            raise RuntimeError("at least one function or cron_job must be registered")
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1, got {max_jobs}")
        if queue_name is None:  # arq: the given pool's default queue
            queue_name = redis_pool.default_queue_name if redis_pool is not None else DEFAULT_QUEUE_NAME
        self.queue_name = validate_queue_name(queue_name)
        if isinstance(queue_partitions, bool) or not isinstance(queue_partitions, int) or queue_partitions < 1:
            raise ValueError(f"queue_partitions must be a whole number, 1 or more, got {queue_partitions!r}")
        # a partitioned queue (pool/storage/partitions.py): the worker reads, heartbeats and schedules each one
        self.queue_partitions = queue_partitions
        self.redis_settings = redis_settings or RedisSettings()
        self._given_pool = redis_pool
        self.burst = burst
        self.on_startup, self.on_shutdown, self.after_job_end = on_startup, on_shutdown, after_job_end
        self.on_job_failure = on_job_failure
        self.handle_signals = handle_signals
        self.job_completion_wait = job_completion_wait
        self.max_jobs = max_jobs
        if queue_read_limit is not None:
            logger.debug("queue_read_limit=%s is not needed: each fetch reads up to the free slots", queue_read_limit)
        self.queue_read_limit = queue_read_limit or max(max_jobs * 5, 100)  # arq's attribute; unused
        self.poll_delay_s = to_seconds(poll_delay) or 0.5
        self.health_check_interval_s = to_seconds(health_check_interval) or 3600.0
        self.health_check_key = health_check_key
        self.allow_abort_jobs = allow_abort_jobs
        self.max_burst_jobs = max_burst_jobs
        # job_types: the dataclasses and pydantic models jobs' arguments may hold, rebuilt only into these
        job_deserializer = job_types_deserializer(job_types, job_deserializer)
        self.job_serializer, self.job_deserializer = job_serializer, job_deserializer
        self.expires_extra_ms = expires_extra_ms
        # None: the system's zone. arq shows it as the UTC offset it had at start, and so does this attribute;
        # cron reads the local zone at each tick instead (_now), so it follows DST changes
        self.timezone = datetime.now().astimezone().tzinfo if timezone is None else timezone
        self._local_time = timezone is None
        self.heartbeat_interval_s = heartbeat_interval
        self.auto_pipeline = auto_pipeline
        # run on a Redis whose maxmemory-policy may evict (pool/storage/eviction.py)
        self.allow_eviction = allow_eviction
        # False under the supervisor: its parent leads cron; this worker only runs the cron jobs' functions
        self.schedule_cron = schedule_cron and bool(self.cron_jobs)
        self._cron: CronScheduler | None = None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
        self.ctx: dict[str, Any] = ctx if ctx is not None else {}
        self.runner = JobRunner(
            RunnerSettings(
                queue_name=self.queue_name,
                functions=self.functions,
                ctx=self.ctx,
                job_timeout_s=to_seconds(job_timeout) or 300.0,
                keep_result_s=to_seconds(keep_result) or 0.0,
                keep_result_forever=keep_result_forever,
                max_tries=max_tries,
                retry_jobs=retry_jobs,
                log_results=log_results,
                serializer=job_serializer,
                deserializer=job_deserializer,
                on_job_start=on_job_start,
                on_job_end=on_job_end,
                cron_names=frozenset(cron_job.name for cron_job in self.cron_jobs),
                failure_ttl_s=to_seconds(failure_ttl) or 0.0,
                max_payload_bytes=max_payload_bytes,
                partitioned=queue_partitions > 1,
            )
        )
        self.jobs_complete = self.jobs_failed = self.jobs_retried = 0
        self.jobs_started = 0
        # Prometheus's numbers (pool/worker/metrics.py), counted only once enable_metrics() was called
        self.metrics: JobMetrics | None = None
        self.last_job_at = 0  # epoch seconds of the last finished job
        self._pool: PoolRedis | None = redis_pool
        self._queue: RedisQueue | None = None
        self._queues: list[RedisQueue] = []  # one per partition (the first is self.queue)
        self._batcher: CompletionBatcher | None = None
        # (partition, entry id) -> the job: entry ids are unique within a partition's streams only
        self._running: dict[tuple[int, str], tuple[Delivery, asyncio.Task[None]]] = {}
        # max_jobs, shared by the partitions' fetch loops (and the reclaim); new for each run (startup)
        self._slots = Slots(max_jobs, self._busy_slots)
        self._schedule_changed = asyncio.Event()  # set when this worker defers a job: re-plan the next wake
        self.runner.threads.on_release = self._slots_changed  # a thread that outlived its job returned
        self._started = False  # between startup() and close(): close() acts once per run
        self._closing: asyncio.Future[None] | None = None  # set while close() runs
        self._stopping = False
        self._stop_requested: asyncio.Event | None = None
        # set after the schedule loop's first turn: a burst run ends only after it (cron's start-up runs)
        self._scheduled_once = asyncio.Event()
        self._last_health: str | None = None  # the counters of the last health line written, for its log line
        self._force_stop = False
        self._loops: list[asyncio.Task[None]] = []
        self._fetches = 0
        self._limits = {name: f.max_concurrency for name, f in self.functions.items() if f.max_concurrency}
        check_limits(self._limits, queue_partitions)
        # each partition's share of every limit (pool/storage/partitions.py): they add up to the limit
        self._shares = [
            {name: limit_share(limit, queue_partitions, p) for name, limit in self._limits.items()}
            for p in range(queue_partitions)
        ]
        self._heartbeat: asyncio.Task[None] | None = None
        # Set once running jobs are finished or cancelled and their results written: only then may the heartbeat
        # stop. A stopping worker that went quiet earlier would have its still-running jobs taken over and run twice.
        self._released: asyncio.Event | None = None
        # The level of the "shutdown complete" line: INFO for a process's worker (run(): `pool worker`,
        # run_worker) and whenever a stop was requested (a signal, the supervisor); an application's main() that
        # ends by itself (a burst run) logs it at DEBUG, where arq logs nothing, so the last job's line is last
        self._shutdown_level = logging.DEBUG
        # The level of the start-up line naming the Redis address, the queue and this worker's id. Under arq's API
        # (a Worker run by code, pool.cli.cli) the INFO lines at start-up are arq's two (functions, server info),
        # so logs read as arq's do and carry no port, pid or random id; pool's own processes (`pool worker`, the
        # supervisor's workers) set INFO: their operators read which Redis and which worker from that line.
        self.startup_details_level = logging.DEBUG

    # --- public entry points ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until stopped (or, in burst mode, until the queue is empty), on uvloop when it is installed."""
        self._shutdown_level = logging.INFO
        run_on_best_loop(self.main())

    async def async_run(self) -> None:
        await self.main()

    async def run_check(self, retry_jobs: bool | None = None, max_burst_jobs: int | None = None) -> int:
        """arq's: run (in burst mode, until the queue is drained); the number of jobs completed, or
        ``FailedJobs`` with the failed results kept in Redis when any job failed."""
        if retry_jobs is not None:
            self.runner.s.retry_jobs = retry_jobs
        if max_burst_jobs is not None:
            self.max_burst_jobs = max_burst_jobs
        await self.startup()
        try:
            await self.serve()
            failed = [r for r in await self.pool.all_job_results() if not r.success] if self.jobs_failed else []
        finally:
            await self.close()
        if self.jobs_failed:
            raise FailedJobs(self.jobs_failed, failed)
        return self.jobs_complete

    async def main(self) -> None:
        await self.startup()
        try:
            await self.serve()
        finally:
            await self.close()

    @property
    def pool(self) -> PoolRedis:
        if self._pool is None:
            raise RuntimeError("the worker is not started")
        return self._pool

    @property
    def queue(self) -> RedisQueue:
        if self._queue is None:
            raise RuntimeError("the worker is not started")
        return self._queue

    def request_stop(self, force: bool = False) -> None:
        """Stop taking jobs and shut down (a second request, or force, cancels running jobs at once)."""
        if self._stop_requested is not None and self._stop_requested.is_set():
            force = True
        self._force_stop = self._force_stop or force
        self._stopping = True  # at once: no job may start after this, even in the same loop turn
        self._slots.stop()  # fetch loops waiting for slots see the stop at once
        self._schedule_changed.set()
        if self._stop_requested is not None:
            self._stop_requested.set()
        if self._force_stop:
            self._cancel_running()

    @property
    def cron_duty(self) -> CronDuty | None:
        """The cron leader's duty while this worker schedules cron (for its metrics), else None."""
        return self._cron.duty if self._cron is not None else None

    def enable_metrics(self) -> JobMetrics:
        """Count jobs for Prometheus from now on (``pool worker --metrics``, a supervisor's children)."""
        if self.metrics is None:
            self.metrics = JobMetrics(self.queue_name)
        return self.metrics

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        self._started = True
        self._stop_requested = asyncio.Event()
        self._slots = Slots(self.max_jobs, self._busy_slots)
        self._scheduled_once = asyncio.Event()
        self._released = asyncio.Event()
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
                max_payload_bytes=self.runner.s.max_payload_bytes,
                queue_partitions={self.queue_name: self.queue_partitions},
            )
        await self._check_eviction_policy()
        await self._agree_partitions()
        self._queues = [RedisQueue(self._pool, self.queue_name, p) for p in range(self.queue_partitions)]
        self._queue = self._queues[0]
        self.runner.s.queues, self.runner.s.consumer = self._queues, self.worker_id  # for ctx['job'].update
        self._batcher = CompletionBatcher(self._queues, self.worker_id)
        for queue in self._queues:  # Redis may be busy or loading
            await retrying(queue.ensure_group, "creating the consumer groups")
        # Jobs' commands of one loop turn go out as one pipeline (pool/redis/autopipeline.py); the worker's own
        # commands are batched by hand and keep the plain client.
        self.ctx["redis"] = self._pool.auto_pipelined() if self.auto_pipeline else self._pool
        self.runner.refresh_logging()
        if self.handle_signals:
            self._add_signal_handlers()
        logger.info(
            # arq's words, plural and all ("1 functions"): log parsers written for arq keep matching
            "Starting worker for %d functions: %s",
            len(self.functions),
            ", ".join(sorted(self.functions)),
        )
        summary = await self._redis_summary()
        if self.startup_details_level < logging.INFO and summary:
            logger.info("%s", summary)  # arq's line, as arq logs it
        logger.log(
            self.startup_details_level,
            "redis at %s%s, queue %r, worker %s",
            self.redis_settings.describe() if self._given_pool is None else self._given_pool.describe(),
            f" ({summary})" if summary else "",
            self.queue_name,
            self.worker_id,
        )
        if self.on_startup is not None:
            await self.on_startup(self.ctx)

    async def _redis_summary(self) -> str:
        """arq's line about the server (version, memory, clients, keys) for the start-up log; empty if refused."""
        try:
            return await redis_summary(self.pool)
        except (RedisError, OSError):
            return ""

    async def _check_eviction_policy(self) -> None:
        """Refuse a Redis that may evict the queue's keys (see pool/storage/eviction.py): one line, exit 1."""
        policy = await RedisQueue(self.pool, self.queue_name).eviction_policy()
        try:
            judge_policy(policy, self.redis_settings.describe(), self.allow_eviction)
        except EvictionPolicyError:
            if self._given_pool is None:
                await self.pool.aclose()
                self._pool = None
            raise

    async def _agree_partitions(self) -> None:
        """The queue's partition count in Redis must be this worker's (see PartitionMismatch): one line, exit 1."""
        recorded = await partition_count(self.pool, self.queue_name, self.queue_partitions)
        if recorded != self.queue_partitions:
            if self._given_pool is None:
                await self.pool.aclose()
                self._pool = None
            raise PartitionMismatch(self.queue_name, recorded, self.queue_partitions)

    async def serve(self) -> None:
        """Run the loops until a stop is requested (or, in burst mode, the queue is drained)."""
        assert self._stop_requested is not None
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="pool-heartbeat")
        # Every run writes its health entry (close() clears it) before it takes a job, as arq's first poll does:
        # `pool check` sees each worker that runs jobs, and a burst run that ends at once still leaves its line.
        await self._write_health()
        self._loops = [
            asyncio.create_task(self._schedule_loop(), name="pool-schedule"),
            asyncio.create_task(self._health_loop(), name="pool-health"),
        ]
        # one fetch loop per partition, each blocking on its own partition's streams (on a cluster they are on
        # different nodes, so one blocking read cannot cover them); they share the worker's slots
        fetches = [asyncio.create_task(self._fetch_loop(queue), name="pool-fetch") for queue in self._queues]
        stop: asyncio.Task[Any] = asyncio.create_task(self._stop_requested.wait(), name="pool-stop")
        waiting: set[asyncio.Future[Any]] = {*fetches, stop, self._heartbeat, *self._loops}
        if self.burst and len(fetches) > 1:  # a burst ends when every partition's loop has found its end
            waiting -= set(fetches)
            ended = asyncio.gather(*fetches)
            ended.add_done_callback(_retrieve)  # loops cancelled below end it too: not an error to report
            waiting.add(ended)
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The run itself was cancelled (main() in a task, then task.cancel(), as arq's tests do): the tasks it
            # made end with it (close() ends the others). Left pending, they would be destroyed by the garbage
            # collector once their loop is closed, with an error logged into whatever runs at that moment.
            self._stopping = True
            self._slots.stop()
            await _cancel_until_done([*fetches, stop])
            raise
        self._stopping = True
        self._slots.stop()
        stop.cancel()
        # Let the fetch loops finish their blocking reads (at most FETCH_BLOCK_MS) and see the stop, rather than
        # cancel a Redis command mid-flight: redis-py does not always abandon a blocked read promptly, and a
        # read cancelled after Redis delivered its entries leaves them to the hand-back.
        await asyncio.wait(fetches, timeout=FETCH_BLOCK_MS / 1000 + 1)
        for fetch in fetches:
            fetch.cancel()
        await asyncio.gather(*fetches, stop, return_exceptions=True)
        for task in done:
            if task is not stop and not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception())

    async def close(self) -> None:
        """Finish (or cancel and hand back) running jobs, write pending results, hand back anything left.
        Once per run: closing a worker that is not running (again, or never started) does nothing, and a close
        while another runs waits for that one. Afterwards the worker can run again (``main`` again)."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        if not self._started:
            return
        self._started = False
        self._closing = asyncio.get_running_loop().create_future()
        try:
            await self._close()
        finally:
            self._closing.set_result(None)
            self._closing = None

    async def _close(self) -> None:
        self._stopping = True
        if self._running and self.job_completion_wait > 0 and not self._force_stop:
            logger.info("waiting up to %gs for %s", self.job_completion_wait, plural(len(self._running), "running job"))
            await self._wait_running(self.job_completion_wait)
        self._cancel_running()
        await self._wait_running(10.0)  # results of finished jobs; if Redis is down, give up: they run again
        await _cancel_until_done([task for _, task in self._running.values()])
        await _cancel_until_done(self._loops)
        if self._queue is not None and self._batcher is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(self._batcher.drain(), 5)
        if self._released is not None:
            self._released.set()
        if self._heartbeat is not None:
            await _cancel_until_done([self._heartbeat])
        if self._queue is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                handed_back = 0
                for queue in self._queues:
                    handed_back += await asyncio.wait_for(queue.hand_back_consumer(self.worker_id), 5)
                if handed_back:
                    logger.info("handed back %s", plural(handed_back, "job"))
                await self._queue.clear_health(self.worker_id)
                if self._cron is not None:
                    await self._cron.close()
        if self.on_shutdown is not None:
            await self.on_shutdown(self.ctx)
        job_redis = self.ctx.get("redis")
        if job_redis is not self._pool and isinstance(job_redis, AutoPipelinedRedis):  # ours: its fast path closes
            await job_redis.aclose()
        if self._pool is not None and self._given_pool is None:
            await self._pool.aclose()
            self._pool = None
        stop_requested = self._stop_requested is not None and self._stop_requested.is_set()
        logger.log(
            logging.INFO if stop_requested else self._shutdown_level,
            "shutdown complete: j_complete=%d j_failed=%d j_retried=%d",
            self.jobs_complete,
            self.jobs_failed,
            self.jobs_retried,
        )
        # ready to run again, as a new worker would be (counters go on, as arq's do)
        self._stopping = self._force_stop = False
        self._loops, self._heartbeat, self._cron = [], None, None

    async def _wait_running(self, timeout: float | None) -> None:
        tasks = [task for _, task in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _add_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        logger.info("shutdown on %s ◆ %s running", signal.Signals(sig).name, plural(len(self._running), "job"))
        self.request_stop()

    # --- fetch and run -----------------------------------------------------------------------------------------

    async def _fetch_loop(self, queue: RedisQueue) -> None:
        """Fetch jobs from one partition for as long as the worker runs, with the slots it takes first from the
        slots all partitions' loops share (pool/worker/slots.py), so that together they never start more than
        max_jobs jobs and none of them waits while slots are free and its partition has jobs."""
        block_ms = 50 if self.burst else FETCH_BLOCK_MS
        # A busy worker fetches when a quarter of its slots are free, not after every job, and a quarter at a
        # time: fetched all at once, a worker's jobs move in one cohort (fetch, run, write results, fetch), so
        # Redis and the worker wait for each other in turn; in quarters, Redis runs one cohort's scripts while
        # the worker runs another's jobs (one worker, noop jobs, max_jobs=100: ~6,000-7,000 -> ~8,500 jobs/s; see
        # docs/performance.md). An idle worker fetches at once, so pickup latency is unchanged, and a worker whose
        # jobs are slow to end takes what is free after PARTIAL_FETCH_AFTER_S rather than leave slots idle.
        quarter = max(1, self.max_jobs // 4)
        slots = self._slots
        while not self._stopping:
            if self.burst and 0 <= self.max_burst_jobs <= self.jobs_started:
                await self._wait_running(None)
                return
            want = min(quarter, self._burst_left())
            if want <= 0:  # the burst's last jobs are being fetched by another partition's loop: see what it got
                await slots.given_back()
                continue
            minimum = want if self._running else 1
            taken = slots.take(want, minimum) or await slots.wait(want, minimum, PARTIAL_FETCH_AFTER_S)
            excess = min(taken, self._burst_excess())  # other loops started jobs while this one waited
            if excess:
                slots.give_back(excess)
                taken -= excess
            if not taken:
                continue  # stopping, or the burst's last jobs are taken
            held = taken
            try:
                order = self._fetch_order()
                # FETCH reads and starts in one round trip (on Redis Cluster too: see RedisQueue.fetch); when it
                # finds nothing the worker blocks on a read, then STARTs what it read
                if queue.one_step_fetch:
                    started, expired = await queue.fetch(self.worker_id, taken, order, self._shares[queue.partition])
                    if started or expired:
                        await self._launch(started, expired)  # they hold their own slots now
                        slots.give_back(held)
                        held = 0
                        await asyncio.sleep(0)  # let the new jobs start before the next fetch is sent
                        continue
                # Nothing ready in this partition: block reading it, holding no slot meanwhile (an idle partition's
                # read would keep them from busy partitions for up to block_ms); what it reads takes its slots when
                # it comes. (An entry this worker already runs comes back only from a recreated group: it is ours.)
                slots.give_back(held)
                held = 0
                read = await queue.read(self.worker_id, taken, block_ms, order)
                deliveries = [d for d in read if not self._runs_already(d)]
                held = slots.claim(min(len(deliveries), self._burst_left()))
                if len(deliveries) > held:  # several lanes had entries, or other loops took the slots meanwhile:
                    await queue.unread(self.worker_id, deliveries[held:])  # keep the highest priorities
                    deliveries = deliveries[:held]
                if deliveries:
                    await self._start(deliveries)
                    slots.give_back(held)
                    held = 0
                    await asyncio.sleep(0)  # (pickup latency: ~0.1 ms here on a 2-core VM)
                elif self.burst and not self._running and self._scheduled_once.is_set() and await self._queue_drained():
                    return
            except (RedisError, OSError) as exc:
                _raise_if_fatal(exc)
                logger.warning("fetching jobs failed (%s), retrying", exc)
                self._count_redis_error("fetch")
                slots.give_back(held)
                held = 0
                await asyncio.sleep(0.5)
            finally:
                slots.give_back(held)

    def _burst_left(self) -> int:
        """How many more jobs this burst run may start (``max_burst_jobs``), less those being fetched (the
        slots taken for fetches under way); a fetch never takes more."""
        if self.burst and self.max_burst_jobs >= 0:
            return max(self.max_burst_jobs - self.jobs_started - self._slots.reserved, 0)
        return self.max_jobs

    def _burst_excess(self) -> int:
        """Slots taken beyond the jobs this burst run may still start: a loop waiting for slots was handed them
        after other loops had started jobs."""
        if self.burst and self.max_burst_jobs >= 0:
            return max(self.jobs_started + self._slots.reserved - self.max_burst_jobs, 0)
        return 0

    def _busy_slots(self) -> int:
        """Slots held by running jobs and by sync jobs' threads that outlived their job (they still run: see
        JobThreads), so a worker never has more than max_jobs job threads."""
        return len(self._running) + self.runner.threads.lingering

    def _slots_changed(self) -> None:
        self._slots.changed()

    def _fetch_order(self) -> tuple[int, ...]:
        """Highest priority first, except one fetch in STARVATION_GUARD, which serves a lower priority first
        (0, then 1, then 2, in turn): a flood of urgent jobs slows the others down but never stops any."""
        self._fetches += 1
        if self._fetches % STARVATION_GUARD:
            return HIGH_FIRST
        return GUARD_ORDERS[(self._fetches // STARVATION_GUARD - 1) % len(GUARD_ORDERS)]

    async def _queue_drained(self) -> bool:
        for queue in self._queues:
            if any((await queue.counts()).values()):
                return False
        return True

    async def _start(self, deliveries: list[Delivery]) -> None:
        if self._stopping:
            return  # shutting down: leave them pending, close() hands them back
        # retried while Redis is busy or restarting: the entries are ours now, and given up they would wait for a
        # reclaim (3 heartbeats) to run
        partition = deliveries[0].partition  # (deliveries of one partition)
        start, shares = self._queues[partition].start, self._shares[partition]
        started, expired = await retrying(
            lambda: start(self.worker_id, deliveries, shares), f"starting {len(deliveries)} jobs"
        )
        await self._launch(started, expired)

    async def _launch(self, started: list[Delivery], expired: list[Delivery]) -> None:
        if self._stopping:
            # A stop came while START ran: put them back, not counting the attempt (if this fails they stay
            # pending and close() hands them back, attempt counted: at-least-once either way).
            with contextlib.suppress(RedisError, OSError):
                for queue in self._queues:
                    await queue.unread(self.worker_id, [d for d in started + expired if d.partition == queue.partition])
            return
        skipped: list[Delivery] = []
        for delivery in started:
            if self._runs_already(delivery):
                skipped.append(delivery)
                continue
            self.jobs_started += 1
            task = asyncio.create_task(self._run_job(delivery))
            self._running[delivery.partition, delivery.entry_id] = (delivery, task)
        if self.metrics is not None and started:  # once per batch
            self.metrics.started_many([d for d in started if d not in skipped] if skipped else started)
        for delivery in expired:
            task = asyncio.create_task(self._record(delivery, self.runner.expired(delivery)))
            self._running[delivery.partition, delivery.entry_id] = (delivery, task)

    def _runs_already(self, delivery: Delivery) -> bool:
        """This worker already runs the job from this entry: a consumer group recreated from id 0 (after it
        was destroyed) delivered the entry to us again. START answers as to a replay; running it again would
        run the job twice at once. The entry is ours again, so our heartbeat and COMPLETE cover it."""
        running = self._running.get((delivery.partition, delivery.entry_id))
        return running is not None and running[0].job_id == delivery.job_id

    async def _record(self, delivery: Delivery, outcome: Outcome) -> None:
        if self.metrics is not None:
            self.metrics.counted(delivery.function, FAILED)
        try:
            await self._commit(delivery, outcome, timed=False)
        finally:
            self._release(delivery)
        if outcome.kind is _FAILED and self.on_job_failure is not None:
            await self._report_failure(delivery, outcome)

    def _cancel_running(self) -> None:
        """Cancel jobs still running their function; a job past it is only writing its result: let it."""
        for delivery, task in list(self._running.values()):
            if not delivery.finishing:
                task.cancel()

    async def _run_job(self, delivery: Delivery) -> None:
        try:
            outcome = await self.runner.run(delivery)
        except asyncio.CancelledError:
            # cancelled inside a hook (shutdown): leave it pending; close() hands it back
            self._release(delivery)
            raise
        except BaseException as exc:  # any other BaseException too: the job must reach a final state
            logger.exception("job %s: unexpected error around the job; recorded as its failure", delivery.job_id)
            try:
                outcome = self.runner.crashed(delivery, exc)
            except Exception:  # never leave the slot taken: a burst run would wait for this job forever
                logger.exception("job %s: could not record its failure; it will run again", delivery.job_id)
                self._release(delivery)
                return
        try:
            await self._commit(delivery, outcome)
        except Exception:
            logger.exception("job %s: could not record its outcome; it will run again", delivery.job_id)
        finally:
            self._release(delivery)
        if outcome.after_hook_ctx is not None and self.after_job_end is not None:
            try:
                await self.after_job_end(outcome.after_hook_ctx)
            except Exception:
                logger.exception("after_job_end hook failed for job %s", delivery.job_id)
        if outcome.kind is _FAILED and self.on_job_failure is not None:
            await self._report_failure(delivery, outcome)

    async def _report_failure(self, delivery: Delivery, outcome: Outcome) -> None:
        """``on_job_failure(ctx, exc)``, after the failure is recorded: for error reporting (Sentry's integration
        in pool/integrations/sentry.py). Its ctx is the job's (or, for a job that failed before it ran, the
        worker's with the job's id and try), with ``function`` and ``queue_name`` added. It runs for every
        failure a worker records, including a payload it could not decode or a function it does not know; not
        for a Retry, an abort, or a job handed back at shutdown. What it raises is logged; the job's outcome
        stands."""
        assert self.on_job_failure is not None
        base = outcome.after_hook_ctx
        if base is None:
            base = {**self.ctx, "job_id": delivery.job_id, "job_try": delivery.attempts, "score": delivery.score}
        ctx = {**base, "function": outcome.function or delivery.function, "queue_name": self.queue_name}
        error = outcome.error if outcome.error is not None else RuntimeError("job failed")
        try:
            await self.on_job_failure(ctx, error)
        except Exception:
            logger.exception("on_job_failure hook failed for job %s", delivery.job_id)

    def _release(self, delivery: Delivery) -> None:
        if self._running.pop((delivery.partition, delivery.entry_id), None) is not None:
            self._slots.changed()

    async def _commit(self, delivery: Delivery, outcome: Outcome, timed: bool = True) -> None:
        """Record a job's outcome; ``timed``: it ran (counted with its duration when metrics are on)."""
        now = time.time()
        self.last_job_at = int(now)
        metrics = self.metrics
        if metrics is not None and timed:
            # by identity: an Enum's hash is a Python call (a dict keyed by kind cost ~1,000 instructions a job)
            kind = outcome.kind
            at = (
                COMPLETED_AT
                if kind is _COMPLETE
                else FAILED_AT
                if kind is _FAILED
                else RETRIED_AT
                if kind is _RETRIED
                else ABORTED_AT
                if kind is _ABORTED
                else None  # handed back at shutdown: not an end, it runs again
            )
            if at is not None:  # its end: the runner's finish_ms when it set one (same clock as its start_ms)
                metrics.finished(delivery, at, delivery.finished_ms or int(now * 1000))
        if outcome.kind == _COMPLETE:
            self.jobs_complete += 1
        elif outcome.kind in (_FAILED, _ABORTED):
            self.jobs_failed += 1
        elif outcome.kind == _RETRIED:
            self.jobs_retried += 1
        if outcome.retries_ran_out:  # its last Retry was refused by max_tries: a retry asked for, as arq counts
            self.jobs_retried += 1
        if outcome.is_requeue:
            requeue = self._queues[delivery.partition].requeue
            await asyncio.shield(
                retrying(
                    lambda: requeue(
                        delivery.entry_id,
                        delivery.job_id,
                        run_at_ms=outcome.requeue_at_ms,
                        now_ms=now_ms(),
                        priority=delivery.priority,
                        function=delivery.function,
                    ),
                    f"putting job {delivery.job_id} back",
                )
            )
            if outcome.requeue_at_ms > now_ms():
                self._schedule_changed.set()
        else:
            assert self._batcher is not None
            # > 0: a failure kept in the registry; -1: a failure not kept there (aborted, or failure_ttl=0);
            # 0: a success (only then do the jobs that depend on it run)
            failure_ttl_ms = 0
            if outcome.kind == _FAILED:  # the job's own _failure_ttl, else the worker's
                failure_ttl_ms = outcome.failure_ttl_ms or int(self.runner.s.failure_ttl_s * 1000) or -1
            elif outcome.kind == _ABORTED:
                failure_ttl_ms = -1
            completion = Completion(
                delivery.entry_id,
                delivery.job_id,
                outcome.result,
                outcome.result_ttl_ms,
                failure_ttl_ms=failure_ttl_ms,
                callback_id=outcome.callback_id,
                callback_payload=outcome.callback_payload,
                priority=delivery.priority,
                callback_function=outcome.callback_function,
                partition=delivery.partition,
                function=delivery.function,
            )
            await self._batcher.submit(completion)

    # --- heartbeat and reclaim ---------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Keep our entries fresh; take over entries idle for 3 heartbeats (their worker is gone).

        It beats on through a shutdown until ``close`` has released the running jobs (finished, or cancelled
        and about to be handed back), but takes nothing over once the worker is stopping."""
        beat = self.heartbeat_interval_s
        min_idle_ms = int(beat * 3000)
        beats = 0
        last_ok = loop_time()
        # After Redis was unreachable every worker's entries look idle. Reclaim only once all live workers had
        # time to heartbeat again (3 beats), or their jobs would be taken over and run twice. A late success
        # (redis-py retrying inside the call) counts as a gap too.
        reclaim_after = last_ok + beat * 3
        assert self._released is not None
        while not self._released.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(beat):
                    await self._released.wait()
            if self._released.is_set():
                return
            beats += 1
            try:
                running = [delivery for delivery, _ in self._running.values()]
                for queue in self._queues:
                    await queue.heartbeat(self.worker_id, [d for d in running if d.partition == queue.partition])
                now = loop_time()
                if now - last_ok > beat * 2.5:
                    reclaim_after = max(reclaim_after, now + beat * 3)
                last_ok = now
                if beats % 60 == 0:
                    for queue in self._queues:
                        await queue.prune_consumers(max(min_idle_ms * 20, 60_000))
                for queue in self._queues:
                    if self._stopping or now < reclaim_after:
                        break
                    taken = self._slots.claim(self._burst_left())  # before the fetch loops, as a fetch does
                    if not taken:
                        break
                    try:
                        claimed = await queue.reclaim(self.worker_id, min_idle_ms, taken)
                        if claimed:
                            logger.info(
                                "took over %s from workers that stopped heartbeating", plural(len(claimed), "job")
                            )
                            await self._start(claimed)
                    finally:
                        self._slots.give_back(taken)
            except ResponseError as exc:
                _raise_if_fatal(exc)
                if "NOGROUP" not in str(exc):
                    logger.warning("heartbeat failed (%s)", exc)
                    self._count_redis_error("heartbeat")
                else:  # the stream is gone (Redis restarted empty, or the queue was deleted): recreate it
                    await self._recreate_group()
            except (RedisError, OSError) as exc:
                _raise_if_fatal(exc)
                logger.warning("heartbeat failed (%s)", exc)
                self._count_redis_error("heartbeat")

    async def _recreate_group(self) -> None:
        for queue in self._queues:
            with contextlib.suppress(RedisError, OSError):
                await queue.recover_group()

    # --- deferred jobs, cron, aborts ---------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        if self.schedule_cron:
            self._cron = CronScheduler(
                self._queues[cron_partition(self.queue_partitions)],
                self.cron_jobs,
                now=self._now,
                serializer=self.job_serializer,
                expires_ms=self.expires_extra_ms,
                partitioned=self.queue_partitions > 1,
            )
        while not self._stopping:
            next_wake_ms = now_ms() + int(self.poll_delay_s * 1000)
            try:
                for queue in self._queues:
                    _, next_due_in = await queue.promote_due()  # due by Redis's clock, not this host's
                    if next_due_in is not None:
                        next_wake_ms = min(next_wake_ms, now_ms() + next_due_in)
                if self.allow_abort_jobs and self._running:
                    await self._cancel_aborted()
                if self._limits:
                    for queue in self._queues:
                        await queue.sweep_parked(self._shares[queue.partition])
                if self._cron is not None and not self._stopping:
                    next_wake_ms = min(next_wake_ms, now_ms() + int(await self._cron.run_due() * 1000))
            except (RedisError, OSError) as exc:
                _raise_if_fatal(exc)
                logger.warning("scheduler: redis error (%s)", exc)
                self._count_redis_error("schedule")
            self._schedule_changed.clear()
            self._scheduled_once.set()
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(next_wake_ms - now_ms(), 1) / 1000):
                        await self._schedule_changed.wait()

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking at once on a stop. The loops end on the stop flag rather than relying on a single
        cancel: redis-py 8 sends commands through asyncio.wait_for, which on Python 3.11 can swallow one."""
        assert self._stop_requested is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop_requested.wait()

    def _now(self) -> datetime:
        """Aware always (local time when no timezone is set), so DST changes never repeat or skip ticks."""
        return datetime.now().astimezone() if self._local_time else datetime.now(tz=self.timezone)

    async def _cancel_aborted(self) -> None:
        for queue in self._queues:
            requested = set(await queue.abort_requests())
            handled = []
            for delivery, task in list(self._running.values()):
                if delivery.partition == queue.partition and delivery.job_id in requested and not delivery.finishing:
                    self.runner.aborting.add(delivery.job_id)
                    task.cancel()
                    handled.append(delivery.job_id)
            await queue.clear_abort_requests(handled)

    # --- health ------------------------------------------------------------------------------------------------

    def _count_redis_error(self, where: str) -> None:
        if self.metrics is not None:
            self.metrics.redis_error(where)

    def stats(self) -> dict[str, int]:
        """Counters the supervisor aggregates."""
        return {
            "complete": self.jobs_complete,
            "failed": self.jobs_failed,
            "retried": self.jobs_retried,
            "ongoing": len(self._running),
            "last_job": self.last_job_at,
        }

    def health_line(self, queued: int) -> str:
        return (
            f"{datetime.now():%b-%d %H:%M:%S} j_complete={self.jobs_complete} j_failed={self.jobs_failed} "
            f"j_retried={self.jobs_retried} j_ongoing={len(self._running)} queued={queued}"
        )

    def _log_health(self, line: str) -> None:
        """arq's "recording health" line, when the counters changed since the last line written."""
        counters = line[line.index("j_complete=") :]
        if self._last_health is not None and counters != self._last_health:
            logger.info("recording health: %s", line)
        self._last_health = counters

    async def _write_health(self) -> None:
        """This worker's health entry (and ``health_check_key``, when set), with arq's log line on a change."""
        ttl_ms = int((self.health_check_interval_s + 1) * 1000)
        try:
            queued = 0
            for queue in self._queues:
                counts = await queue.counts()
                queued += counts["ready"] + counts["deferred"] + counts["parked"]
            line = self.health_line(queued)
            await self.queue.write_health(self.worker_id, line, ttl_ms)
            self._log_health(line)
            if self.health_check_key:
                await self.queue.write_named_health(self.health_check_key, line, ttl_ms)
        except (RedisError, OSError) as exc:
            _raise_if_fatal(exc)
            logger.warning("health check write failed (%s)", exc)
            self._count_redis_error("health")

    async def _health_loop(self) -> None:
        """The writes after the first, which ``serve`` makes before any job is fetched."""
        while not self._stopping:
            await self._pause(self.health_check_interval_s)
            if not self._stopping:
                await self._write_health()

    # arq's views of the running jobs (read-only here)
    @property
    def tasks(self) -> dict[str, asyncio.Task[None]]:
        """The running jobs' tasks by job id."""
        return {delivery.job_id: task for delivery, task in self._running.values()}

    job_tasks = tasks

    @property
    def aborting_tasks(self) -> set[str]:
        """Ids of running jobs being aborted."""
        return self.runner.aborting

    def __repr__(self) -> str:
        return (
            f"<Worker j_complete={self.jobs_complete} j_failed={self.jobs_failed} "
            f"j_retried={self.jobs_retried} j_ongoing={len(self._running)}>"
        )


# --- running from settings -------------------------------------------------------------------------------------

_WORKER_PARAMS = set(inspect.signature(Worker.__init__).parameters) - {"self"}


def get_kwargs(settings_cls: Any) -> dict[str, Any]:
    """The Worker keyword arguments a settings class (or dict) defines; other attributes are ignored."""
    source = (
        settings_cls if isinstance(settings_cls, dict) else {k: getattr(settings_cls, k) for k in dir(settings_cls)}
    )
    return {k: v for k, v in source.items() if k in _WORKER_PARAMS}


def create_worker(settings_cls: Any, **kwargs: Any) -> Worker:
    return Worker(**{**get_kwargs(settings_cls), **kwargs})


def run_worker(settings_cls: Any, **kwargs: Any) -> Worker:
    worker = create_worker(settings_cls, **kwargs)
    worker.run()
    return worker


async def async_health_lines(
    redis_settings: RedisSettings | None, health_check_key: str | None = None, queue_name: str | None = None
) -> list[str]:
    """The health lines of the live workers of a queue (or the value of an explicit health_check_key)."""
    pool = await create_pool(redis_settings or RedisSettings(), default_queue_name=queue_name or DEFAULT_QUEUE_NAME)
    try:
        queue = RedisQueue(pool, queue_name or DEFAULT_QUEUE_NAME)
        if health_check_key:
            line = await queue.named_health(health_check_key)
            return [line] if line else []
        return await queue.read_health()
    finally:
        await pool.aclose()


async def async_check_health(
    redis_settings: RedisSettings | None, health_check_key: str | None = None, queue_name: str | None = None
) -> int:
    """arq's: 0 when a live worker's health line was found (each logged), 1 otherwise. The lines themselves:
    ``async_health_lines``."""
    lines = await async_health_lines(redis_settings, health_check_key, queue_name)
    if not lines:
        logger.warning("Health check failed: no health check sentinel value found")
        return 1
    for line in lines:
        logger.info("Health check successful: %s", line)
    return 0


def check_health(settings_cls: Any) -> int:
    """arq's ``--check``: 0 when a live worker's health line was found, 1 otherwise."""
    kwargs = get_kwargs(settings_cls)
    return run_on_best_loop(
        async_check_health(kwargs.get("redis_settings"), kwargs.get("health_check_key"), kwargs.get("queue_name"))
    )
