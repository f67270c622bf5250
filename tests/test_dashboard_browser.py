"""The dashboard in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by Playwright, against a
real `pool dashboard` process, a real Redis with jobs enqueued through pool's API, and real workers.

Each page is loaded and checked against the queue, and saved as a screenshot in the test's tmp dir (and in
$POOL_DASHBOARD_SCREENS when set). Without Chromium the tests fail, saying how to install it: they never skip."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pool import PoolRedis
from pool.jobs import Job, JobStatus
from tests.apps.dashboard import fails_until_fixed
from tests.dashboard_utils import CHROMIUM_ARGS, DashboardProcess, chromium_path, save_screenshot
from tests.helpers import wait_for
from tests.supervisor_utils import Supervisor, supervisors
from tests.worker_utils import WorkerProcess, run_burst

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # a failure with the fix, not a skip
    async_playwright = None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert async_playwright is not None, "playwright is missing: `make install` installs the dev extra, which has it"
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def dashboard(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(*extra: str) -> DashboardProcess:
        process = DashboardProcess(redis_url, tmp_path, *extra)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


async def _open(browser: Browser) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.dialogs = dialogs  # type: ignore[attr-defined]  # any alert() a job's data managed to run
    return page


async def _shot(page: Page, tmp_path: Path, name: str) -> None:
    save_screenshot(await page.screenshot(full_page=True), tmp_path, name)


async def _count(page: Page, state: str) -> int:
    return int(await page.locator(f'tr[data-queue="default"] td[data-count="{state}"]').inner_text())


XSS = "<script>alert('xss')</script><img src=x onerror=alert(1)>"


async def test_every_page_shows_the_queue_as_it_is(
    browser: Browser, dashboard: Callable[..., DashboardProcess], redis: PoolRedis, redis_url: str, tmp_path: Path
) -> None:
    await redis.enqueue_job("fails_until_fixed", str(tmp_path / "never"), _job_id="broken-1")
    await run_burst(redis_url, functions=[fails_until_fixed])  # the failed registry gets one record
    for i in range(120):
        await redis.enqueue_job("double", i, _priority=2 if i < 10 else 0)
    await redis.enqueue_job("double", XSS, _job_id="hostile", tag=XSS)
    for i in range(3):
        await redis.enqueue_job("double", i, _defer_by=timedelta(hours=1 + i))
    info = await redis.queue_info()
    assert (info["ready"], info["deferred"], info["failed"]) == (121, 3, 1)

    server = dashboard()
    page = await _open(browser)

    await page.goto(server.url + "/")
    for state in ("ready", "running", "deferred", "parked", "failed"):
        assert await _count(page, state) == info[state], state
    await _shot(page, tmp_path, "overview")

    await page.goto(server.url + "/jobs?state=ready")
    assert await page.locator("#total").inner_text() == "121"
    seen: list[str] = []
    while True:
        ids = await page.locator("tr.job").evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert 0 < len(ids) <= 50
        seen += ids
        if len(seen) == len(ids):
            await _shot(page, tmp_path, "jobs-ready")
        if not await page.locator("#next").count():
            break
        await page.click("#next")
    assert len(seen) == len(set(seen)) == 121 and "hostile" in seen

    await page.goto(server.url + "/jobs?state=deferred")
    assert await page.locator("tr.job").count() == 3
    await _shot(page, tmp_path, "jobs-deferred")

    await page.goto(server.url + "/")
    await page.fill('input[name="id"]', "hostile")
    await page.click("text=Show")
    assert "<script>" in await page.locator("#args").inner_text()  # shown as text, never run
    assert await page.locator("#status").inner_text() == "queued"
    assert await page.locator("script").count() == 0 and page.dialogs == []  # type: ignore[attr-defined]
    await _shot(page, tmp_path, "job")

    await page.goto(server.url + "/failed")
    assert await page.locator("#total").inner_text() == "1"
    await page.click("table.failed summary")
    assert "RuntimeError: not fixed yet" in await page.locator("table.failed pre").inner_text()
    await _shot(page, tmp_path, "failed")

    await page.goto(server.url + "/cron")
    row = page.locator('tr[data-name="cron:leap_day_report"]')
    assert "month=2 day=29 hour=3 minute=0 second=0" in await row.inner_text()
    assert "-02-29 " in await row.locator("td").nth(3).inner_text()  # the next tick
    assert "nobody" in await page.locator("#leader").inner_text()
    await _shot(page, tmp_path, "cron")


async def test_the_requeue_button_runs_a_failed_job_again(
    browser: Browser,
    dashboard: Callable[..., DashboardProcess],
    spawn_worker: Callable[..., WorkerProcess],
    redis: PoolRedis,
    tmp_path: Path,
) -> None:
    flag = tmp_path / "fixed"
    spawn_worker(settings="tests.apps.dashboard.WorkerSettings")
    await redis.enqueue_job("fails_until_fixed", str(flag), _job_id="flaky-1")
    await wait_for(lambda: _failed(redis), timeout=15, message="the job failed")
    flag.touch()  # the fix is deployed: a requeued run succeeds

    server = dashboard()
    page = await _open(browser)
    await page.goto(server.url + "/failed")
    await page.click('table.failed[data-id="flaky-1"] button.requeue')
    assert "job flaky-1 requeued" in await page.locator("#flash").inner_text()
    await _shot(page, tmp_path, "failed-after-requeue")

    job = Job("flaky-1", redis)
    assert await job.result(timeout=15) == "fixed"
    await page.goto(server.url + "/job?id=flaky-1")
    assert (await page.locator("#status").inner_text()).startswith("complete")
    assert await page.locator("#result").inner_text() == "'fixed'"
    assert (await redis.queue_info())["failed"] == 0


async def _failed(redis: PoolRedis) -> bool:
    return (await redis.queue_info())["failed"] == 1


async def test_abort_button_and_running_jobs_page(
    browser: Browser,
    dashboard: Callable[..., DashboardProcess],
    spawn_worker: Callable[..., WorkerProcess],
    redis: PoolRedis,
    tmp_path: Path,
) -> None:
    spawn_worker(settings="tests.apps.dashboard.WorkerSettings")
    await redis.enqueue_job("sleep_for", 60, _job_id="long-runner")
    await wait_for(lambda: _running(redis), timeout=15, message="the job is running")
    await redis.enqueue_job("double", 1, _job_id="waits", _defer_by=timedelta(hours=1))

    server = dashboard()
    page = await _open(browser)
    await page.goto(server.url + "/jobs?state=running")
    row = page.locator('tr.job[data-id="long-runner"]')
    assert await row.count() == 1 and "sleep_for" in await row.inner_text()
    await _shot(page, tmp_path, "jobs-running")

    await page.goto(server.url + "/job?id=waits")
    await page.click("#abort")
    assert "aborted" in await page.locator("#flash").inner_text()
    assert (await page.locator("#status").inner_text()).startswith("complete")
    assert await Job("waits", redis).status() == JobStatus.complete


async def _running(redis: PoolRedis) -> bool:
    return (await redis.queue_info())["running"] == 1


async def test_supervisors_page_shows_each_worker_of_a_supervisor(
    browser: Browser, dashboard: Callable[..., DashboardProcess], redis_url: str, tmp_path: Path
) -> None:
    with supervisors() as started:
        sup = Supervisor(
            tmp_path,
            "sup",
            redis_url,
            "tests.apps.dashboard.WorkerSettings",
            "--procs",
            "2",
            "--health-interval",
            "0.5",
        )
        started.append(sup)
        sup.wait_ready(2)
        server = dashboard()
        page = await _open(browser)

        async def two_children() -> Any:
            await page.goto(server.url + "/supervisors")
            return await page.locator("tr.child").count() == 2

        await wait_for(two_children, timeout=15, interval=0.3, message="the supervisor's two workers shown")
        text = await page.locator("table.supervisor").inner_text()
        assert all(str(child.pid) in text for child in sup.children())
        await _shot(page, tmp_path, "supervisors")

        async def leader_shown() -> bool:
            await page.goto(server.url + "/cron")
            return "supervisor " in await page.locator("#leader").inner_text()

        await wait_for(leader_shown, timeout=15, interval=0.3, message="the supervisor shown as cron leader")


async def test_read_only_dashboard_has_no_action_in_the_browser(
    browser: Browser, dashboard: Callable[..., DashboardProcess], redis: PoolRedis, redis_url: str, tmp_path: Path
) -> None:
    await redis.enqueue_job("fails_until_fixed", str(tmp_path / "never"), _job_id="broken-2")
    await run_burst(redis_url, functions=[fails_until_fixed])
    await redis.enqueue_job("double", 2, _job_id="queued-2")
    server = dashboard("--read-only")
    page = await _open(browser)
    for path in ("/", "/jobs", "/job?id=queued-2", "/failed", "/job?id=broken-2"):
        await page.goto(server.url + path)
        # the GET lookup form stays; no form that acts, no action button
        assert await page.locator("form[method=post], button.danger, button.requeue, #requeue").count() == 0, path
    await page.goto(server.url + "/failed")
    await _shot(page, tmp_path, "failed-read-only")
