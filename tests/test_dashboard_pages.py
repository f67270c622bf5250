"""The pages the dashboard draws from (pool/client/inspection.py's ``jobs_page``, ``failed_page``): walking the
cursors gives every job of the state once, over every lane and partition, and the totals are the queue's
counts (``queue_info``). Against a real Redis, with jobs enqueued and run through pool's API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pool import PoolRedis, RedisSettings, create_pool
from pool.client.inspection import FailedPage, JobPage, failed_page, jobs_page
from pool.web import create_app
from pool.web.throughput import Throughput, finished_total
from tests.apps.dashboard import sleep_for
from tests.dashboard_utils import asgi_request
from tests.helpers import wait_for
from tests.worker_utils import run_burst, running_worker


async def _walk(redis: PoolRedis, state: str, count: int) -> tuple[list[str], list[JobPage]]:
    ids: list[str] = []
    pages: list[JobPage] = []
    cursor = None
    while True:
        page = await jobs_page(redis, state, cursor, count)
        pages.append(page)
        ids += [row.job_id for row in page.rows]
        assert len(page.rows) <= count
        if page.next_cursor is None:
            return ids, pages
        cursor = page.next_cursor
        assert len(pages) < 100, "the cursors go round in circles"


async def test_ready_pages_give_every_job_once_over_lanes_and_partitions(redis_url: str) -> None:
    redis = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=3)
    try:
        enqueued = {}
        for i in range(130):
            job = await redis.enqueue_job("double", i, _job_id=f"job-{i:03d}", _priority=i % 4)
            assert job is not None
            enqueued[job.job_id] = i % 4
        ids, pages = await _walk(redis, "ready", 20)
        assert sorted(ids) == sorted(enqueued) and len(ids) == len(set(ids))
        assert {page.total for page in pages} == {130} == {(await redis.queue_info())["ready"]}
        # within a partition, the highest priority first (the order workers take them)
        for page in pages:
            by_partition: dict[int, list[int]] = {}
            for row in page.rows:
                assert row.priority == enqueued[row.job_id]
                by_partition.setdefault(row.partition, []).append(row.priority)
            assert all(p == sorted(p, reverse=True) for p in by_partition.values())
    finally:
        await redis.aclose()


async def test_running_page_lists_the_jobs_workers_hold(redis_url: str, redis: PoolRedis) -> None:
    for i in range(5):
        await redis.enqueue_job("sleep_for", 30, _job_id=f"long-{i}")
    async with running_worker(redis_url, functions=[sleep_for], max_jobs=3, job_completion_wait=0):
        await wait_for(lambda: _running(redis), timeout=10, message="3 jobs running")
        page = await jobs_page(redis, "running", None, 2)
        rest = await jobs_page(redis, "running", page.next_cursor, 2)
        rows = page.rows + rest.rows
        assert page.total == 3 and len(rows) == 3 and rest.next_cursor is None
        assert all(row.consumer and row.idle_ms is not None for row in rows)
        ready, _ = await _walk(redis, "ready", 10)
        assert sorted(ready + [row.job_id for row in rows]) == [f"long-{i}" for i in range(5)]


async def _running(redis: PoolRedis) -> bool:
    return (await redis.queue_info())["running"] == 3


async def test_deferred_pages_are_soonest_first_over_partitions(redis_url: str) -> None:
    redis = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=2)
    try:
        for i in range(45):
            await redis.enqueue_job("double", i, _job_id=f"later-{i}", _defer_by=timedelta(minutes=10 + i))
        ids, pages = await _walk(redis, "deferred", 10)
        assert sorted(ids) == sorted(f"later-{i}" for i in range(45)) and len(ids) == 45
        assert {page.total for page in pages} == {45} == {(await redis.queue_info())["deferred"]}
        for page in pages:
            for partition in {row.partition for row in page.rows}:
                due = [row.due_ms for row in page.rows if row.partition == partition]
                assert due == sorted(due)
    finally:
        await redis.aclose()


async def _boom(ctx: dict[str, Any], i: int) -> None:
    raise ValueError(f"failure {i}")


_boom.__qualname__ = _boom.__name__ = "boom"


async def test_failed_pages_walk_the_registry_with_tracebacks(redis_url: str, redis: PoolRedis) -> None:
    for i in range(25):
        await redis.enqueue_job("boom", i, _job_id=f"bad-{i:02d}")
    await run_burst(redis_url, functions=[_boom])
    seen: list[str] = []
    pages: list[FailedPage] = []
    cursor = None
    while True:
        page = await failed_page(redis, cursor, 10)
        pages.append(page)
        seen += [r.job_id for r in page.records if r.job_id]
        assert all(r.traceback and "ValueError: failure" in r.traceback for r in page.records)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == [f"bad-{i:02d}" for i in range(25)]
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert {p.total for p in pages} == {25} == {(await redis.queue_info())["failed"]}


def test_throughput_is_the_change_of_finished_jobs_over_the_window() -> None:
    meter = Throughput(window_s=60)
    assert meter.add(100, now=0.0) is None  # one sample: nothing to divide yet
    assert meter.add(150, now=10.0) == 5.0
    assert meter.add(400, now=70.0) == (400 - 150) / 60  # the sample at 0 s fell out of the window
    assert meter.add(10, now=71.0) is None  # a counter restarted (a worker replaced): the window starts again


def test_finished_jobs_come_from_live_supervisors_else_worker_lines() -> None:
    entries = [
        {"stale": False, "totals": {"complete": 7, "failed": 2}},
        {"stale": True, "totals": {"complete": 100, "failed": 0}},
    ]
    lines = ["Dec-01 07:00:00 j_complete=40 j_failed=1 j_retried=0 j_ongoing=0 queued=0"]
    assert finished_total(entries, lines) == 9
    assert finished_total([], lines) == 41


async def test_a_partitioned_queues_jobs_are_found_and_requeued_in_their_partition(redis_url: str) -> None:
    """The dashboard is given no partition count: it reads the one recorded in Redis, so a job's page and a
    requeue go to the job's own partition."""
    producer = await create_pool(RedisSettings.from_dsn(redis_url), queue_partitions=4)
    app = create_app(RedisSettings.from_dsn(redis_url), ["default"])
    try:
        for i in range(8):
            await producer.enqueue_job("boom", i, _job_id=f"part-{i}")
        await run_burst(redis_url, functions=[_boom], queue_partitions=4)
        assert (await producer.queue_info())["failed"] == 8
        status, headers, body = await asgi_request(app, "/failed")
        assert status == 200 and body.count('class="failed"') == 8
        cookie = headers["set-cookie"].split(";")[0]
        for i in range(8):
            status, _, body = await asgi_request(app, f"/job?id=part-{i}")
            assert status == 200 and f"ValueError: failure {i}" in body
            form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
            csrf = cookie.partition("=")[2]
            status, _, _ = await asgi_request(
                app, f"/failed/requeue?id=part-{i}", "POST", f"csrf={csrf}".encode(), form
            )
            assert status == 303
        info = await producer.queue_info()
        assert (info["ready"], info["failed"]) == (8, 0)
        ids, _ = await _walk(producer, "ready", 3)
        assert sorted(ids) == [f"part-{i}" for i in range(8)]
    finally:
        await app.state.dashboard.close()
        await producer.aclose()


async def test_redis_down_is_a_page_saying_so_without_the_password(redis_server_factory: Any) -> None:
    server = redis_server_factory(password="pw-never-shown")
    app = create_app(RedisSettings.from_dsn(server.url), ["default"])
    try:
        assert (await asgi_request(app, "/"))[0] == 200
        server.stop()
        status, _, body = await asgi_request(app, "/")
        assert status == 503 and "Redis unavailable" in body and "pw-never-shown" not in body
    finally:
        await app.state.dashboard.close()


async def test_the_cron_page_shows_a_crontab_jobs_own_schedule_and_next_tick(redis_url: str) -> None:
    """A job given as a crontab string has none of the keyword fields: its row must not read 'every second'."""
    from datetime import datetime

    from pool import cron
    from pool.web.render import when
    from pool.worker.cron import next_cron
    from tests.apps.dashboard import leap_day_report

    job = cron("0 3 29 2 *", leap_day_report, name="leap")
    app = create_app(RedisSettings.from_dsn(redis_url), ["default"], cron_jobs=[job])
    try:
        status, _, body = await asgi_request(app, "/cron")
        expected = next_cron(datetime.now().astimezone(), month=2, day=29, hour=3, minute=0, second=0)
        row = body[body.index('data-name="leap"') :].split("</tr>")[0]
        assert status == 200 and "every second" not in row and "0 3 29 2 *" in row, row
        assert when(expected) in row, row
    finally:
        await app.state.dashboard.close()


async def test_jobs_whose_payloads_cannot_be_read_are_shown_not_a_server_error(
    redis_url: str, redis: PoolRedis
) -> None:
    """Poison jobs (payloads pool did not write, or that decode to something else than a job) are listed and
    shown with the reason, and do not take the page of the other jobs down with them."""
    import time

    import msgpack

    from pool.storage.keys import QueueKeys

    keys = QueueKeys("default")
    await redis.enqueue_job("double", 1, _job_id="poison-ready")
    await redis.hset(keys.job("poison-ready"), "d", b"\xc1 not msgpack")
    await redis.enqueue_job("double", 2, _job_id="healthy")
    expiry = int(time.time() * 1000) + 3_600_000
    shapes = {
        "poison-garbage": b"\xc1 not msgpack",
        "poison-list": msgpack.packb([1, 2, 3]),
        "poison-partial": msgpack.packb({"f": "double", "a": 5}),
        "poison-types": msgpack.packb(
            {"f": "double", "a": [], "k": [], "t": 1, "et": "x", "s": False, "r": 1, "st": 0, "ft": 0, "q": "default"}
        ),
    }
    for job_id, payload in shapes.items():
        await redis.set(keys.failed_job(job_id), payload)
        await redis.zadd(keys.failed, {job_id: expiry})
        await redis.set(keys.result(job_id), payload)
    app = create_app(RedisSettings.from_dsn(redis_url), ["default"])
    try:
        status, _, body = await asgi_request(app, "/jobs")
        assert status == 200 and "poison-ready" in body and "healthy" in body, body[-800:]
        status, _, body = await asgi_request(app, "/failed")
        assert status == 200 and all(job_id in body for job_id in shapes), body[-800:]
        for job_id in ["poison-ready", *shapes]:
            status, _, body = await asgi_request(app, f"/job?id={job_id}")
            assert status == 200 and job_id in body and "unable to deserialize" in body, (job_id, body[-800:])
    finally:
        await app.state.dashboard.close()


async def test_a_failure_whose_exception_cannot_be_printed_is_shown(redis_url: str, redis: PoolRedis) -> None:
    """A recorded exception is rebuilt from its class name and arguments: one whose str() then raises (here
    http.client.IncompleteRead given an int) is shown by its class, not a server error."""
    import time

    import msgpack

    from pool.storage.keys import QueueKeys
    from pool.storage.serializers import _EXT_EXCEPTION

    error = msgpack.ExtType(_EXT_EXCEPTION, msgpack.packb(["http.client", "IncompleteRead", msgpack.packb([5]), "x"]))
    record = msgpack.packb(
        {"f": "double", "a": [1], "k": {}, "t": 1, "et": 0, "s": False, "r": error, "st": 0, "ft": 0, "q": "default"}
    )
    keys = QueueKeys("default")
    await redis.set(keys.failed_job("unprintable"), record)
    await redis.zadd(keys.failed, {"unprintable": int(time.time() * 1000) + 3_600_000})
    await redis.set(keys.result("unprintable"), record)
    app = create_app(RedisSettings.from_dsn(redis_url), ["default"])
    try:
        for path in ("/failed", "/job?id=unprintable"):
            status, _, body = await asgi_request(app, path)
            assert status == 200 and "unprintable" in body and "IncompleteRead" in body, (path, body[-800:])
    finally:
        await app.state.dashboard.close()


async def test_a_job_id_of_any_characters_is_linked_and_shown_as_itself(redis_url: str, redis: PoolRedis) -> None:
    """Job ids are user data: quotes, markup, URL delimiters, spaces at either end and non-ASCII text are escaped
    in the page and survive the link to the job's own page."""
    import html
    import re

    hostile = ["a\"b'<i>c</i>&d", "x/y?z=1#frag", " padded ", "naïve-✓-\u4e2d", "%2F%3F"]
    for job_id in hostile:
        assert await redis.enqueue_job("double", 1, _job_id=job_id) is not None
    app = create_app(RedisSettings.from_dsn(redis_url), ["default"])
    try:
        status, _, body = await asgi_request(app, "/jobs")
        assert status == 200 and "<i>" not in body
        links = [html.unescape(h) for h in re.findall(r'href="([^"]*/job\?[^"]*)"', body)]
        shown = set()
        for link in links:
            status, _, page = await asgi_request(app, link)
            found = re.findall(r"<h1>Job <code>(.*?)</code>", page, re.S)
            assert status == 200 and found, (link, page[-500:])
            shown.add(html.unescape(found[0]))
        assert shown == set(hostile)
    finally:
        await app.state.dashboard.close()
