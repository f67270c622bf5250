"""Review findings, second pass: each test once demonstrated a bug; they now guard the fixes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from pool import PoolRedis, RedisSettings, create_pool
from pool.keys import QueueKeys
from pool.queue import RedisQueue
from pool.scripts import REQUEUE
from pool.utils import now_ms
from tests.helpers import wait_for
from tests.redis_server import _die_with_parent
from tests.worker_utils import running_worker

KEYS = QueueKeys("default")
REPO_ROOT = Path(__file__).resolve().parent.parent


async def count_run(ctx: dict[str, Any]) -> int:
    return int(await ctx["redis"].incr("runs:" + ctx["job_id"]))


async def slow(ctx: dict[str, Any], seconds: float) -> int:
    runs = int(await ctx["redis"].incr("runs:" + ctx["job_id"]))
    await asyncio.sleep(seconds)
    return runs


# --- A. redis-py's retry (create_pool) replays non-idempotent scripts ------------------------------------------


class DropOneReplyProxy:
    """TCP proxy to Redis. Armed with a byte pattern, it forwards the next request containing it, lets Redis run
    it, then closes the client's connection without passing the reply on: a connection lost after the command ran
    (Redis restarting, a network blip)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pattern: bytes | None = None
        self.dropped = 0
        self.server: asyncio.AbstractServer | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = asyncio.Event()

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
                if self.pattern is not None and self.pattern in data:
                    self.pattern = None
                    cut.set()
                    await asyncio.sleep(0.2)  # Redis has run it
                    self.dropped += 1
                    writer.close()
                    up_writer.close()
                    return

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if cut.is_set():
                    return
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.gather(upstream(), downstream())
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


async def test_requeue_replayed_after_lost_reply_duplicates_the_job(redis: PoolRedis, redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = DropOneReplyProxy(port)
    proxy_port = await proxy.start()
    via_proxy = await create_pool(RedisSettings(host="127.0.0.1", port=proxy_port))
    try:
        queue = RedisQueue(via_proxy, "default")
        await redis.script_load(REQUEUE)  # so the EVALSHA that gets cut is the one that runs
        await redis.enqueue_job("count_run", _job_id="rq")
        await queue.ensure_group()
        deliveries = await queue.read("c", 1, None)
        started, _ = await queue.start("c", deliveries)
        (d,) = started
        proxy.pattern = hashlib.sha1(REQUEUE.encode()).hexdigest().encode()
        await queue.requeue(d.entry_id, d.job_id, run_at_ms=0, now_ms=now_ms())  # Retry / handed back
        assert proxy.dropped == 1
        entries = await queue.job_ids_in_stream()
        assert entries == ["rq"], f"one job, {len(entries)} ready entries: it will run {len(entries)} times"
    finally:
        await via_proxy.aclose()
        await proxy.close()


# --- B. abort while the job is in on_job_start ------------------------------------------------------------------


async def slow_start_hook(ctx: dict[str, Any]) -> None:
    await ctx["redis"].incr("start_hook:" + ctx["job_id"])
    await asyncio.sleep(1.0)


async def test_abort_during_on_job_start_is_honoured(redis: PoolRedis, redis_url: str) -> None:
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


# --- C. a stale deferred-set member promotes a running job a second time -----------------------------------------


async def test_stale_deferred_member_does_not_run_job_twice(redis: PoolRedis, redis_url: str) -> None:
    """A deferred job expires (_expires < _defer_by) before it is due; its id is free, so it is enqueued again to
    run now. When the old due time comes, PROMOTE finds a hash under that id and XADDs it again, setting state 'q'
    on a running job: a second worker runs it concurrently."""
    first = await redis.enqueue_job("slow", 3.0, _job_id="dup", _defer_by=1.0, _expires=0.2)
    assert first is not None
    await asyncio.sleep(0.4)
    second = await redis.enqueue_job("slow", 3.0, _job_id="dup")
    assert second is not None  # the id was free: arq semantics, fine
    async with running_worker(redis_url, functions=[slow], max_jobs=4, poll_delay=0.1):
        await wait_for(lambda: redis.exists("runs:dup"))
        await asyncio.sleep(1.5)  # past the old due time, the job still running
        assert await redis.get("runs:dup") == b"1", "the same job runs twice at once"


# --- D. shutdown with a sync job in the executor ----------------------------------------------------------------

_SYNC_WORKER = textwrap.dedent(
    """
    import sys, time
    from pool import RedisSettings, Worker

    def sleepy(ctx):
        time.sleep(20)

    Worker([sleepy], redis_settings=RedisSettings.from_dsn(sys.argv[1]), job_completion_wait=0).run()
    """
)


async def test_sigterm_with_sync_job_exits_promptly(redis: PoolRedis, redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log = open(tmp_path / "w.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-c", _SYNC_WORKER, redis_url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    try:
        await redis.enqueue_job("sleepy", _job_id="s1")
        await wait_for(lambda: redis.hget(KEYS.job("s1"), "s"), timeout=10)
        await wait_for(lambda: _is(redis.hget(KEYS.job("s1"), "s"), b"r"), timeout=10)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        await wait_for(lambda: proc.poll() is not None, timeout=8, message="worker exited after SIGTERM")
        assert time.monotonic() - t0 < 8
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def _is(awaitable: Any, value: Any) -> bool:
    return bool(await awaitable == value)


async def test_enqueue_replayed_after_lost_reply_reports_refused(redis: PoolRedis, redis_url: str) -> None:
    from pool.scripts import ENQUEUE

    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = DropOneReplyProxy(port)
    proxy_port = await proxy.start()
    via_proxy = await create_pool(RedisSettings(host="127.0.0.1", port=proxy_port))
    try:
        await redis.script_load(ENQUEUE)
        proxy.pattern = hashlib.sha1(ENQUEUE.encode()).hexdigest().encode()
        job = await via_proxy.enqueue_job("count_run")  # a fresh uuid id: nobody else can hold it
        assert proxy.dropped == 1
        ids = await RedisQueue(redis, "default").job_ids_in_stream()
        assert job is not None, f"enqueue_job returned None (id taken) but the job was enqueued: {ids}"
    finally:
        await via_proxy.aclose()
        await proxy.close()
