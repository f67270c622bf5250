"""``pool.web.create_app`` mounted in an application (a Starlette app, as FastAPI's ``app.mount`` does it) under a
path: links, the CSRF cookie and the redirects after an action stay under that path. Served by uvicorn in the
test's loop, driven by headless Chromium (tests/dashboard_utils.py), against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from pool import PoolRedis, RedisSettings
from pool.web import create_app
from tests.apps.dashboard import fails_until_fixed
from tests.dashboard_utils import CHROMIUM_ARGS, chromium_path, save_screenshot
from tests.helpers import wait_for
from tests.redis_server import free_port
from tests.worker_utils import run_burst

try:
    from playwright.async_api import async_playwright
except ImportError:
    async_playwright = None


@pytest.fixture
async def host_app(redis_url: str) -> AsyncIterator[str]:
    """An application with its own home page and the dashboard under /ops/pool; its base URL."""

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host application")

    dashboard = create_app(RedisSettings.from_dsn(redis_url), queues=["default"])
    app = Starlette(routes=[Route("/", home), Mount("/ops/pool", app=dashboard)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done(), timeout=10, message="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await dashboard.state.dashboard.close()


async def test_a_mounted_dashboard_keeps_its_links_cookie_and_actions_under_its_path(
    host_app: str, redis: PoolRedis, redis_url: str, tmp_path: Path
) -> None:
    await redis.enqueue_job("fails_until_fixed", str(tmp_path / "fixed"), _job_id="mounted-1")
    await run_burst(redis_url, functions=[fails_until_fixed])
    assert (await redis.queue_info())["failed"] == 1
    assert async_playwright is not None, "playwright is missing: `make install` installs the dev extra, which has it"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(host_app + "/ops/pool/")
            assert await page.locator('td[data-count="failed"]').inner_text() == "1"
            await page.click("header >> text=Failed")
            assert page.url.startswith(host_app + "/ops/pool/failed")
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["pool_csrf"]["path"] == "/ops/pool/"
            await page.click('table.failed[data-id="mounted-1"] button.requeue')
            assert page.url.startswith(host_app + "/ops/pool/failed")
            assert "job mounted-1 requeued" in await page.locator("#flash").inner_text()
            save_screenshot(await page.screenshot(full_page=True), tmp_path, "mounted-failed-after-requeue")
            await page.goto(host_app + "/")
            assert await page.locator("body").inner_text() == "the host application"
        finally:
            await browser.close()
    assert (await redis.queue_info())["ready"] == 1  # requeued, waiting for a worker
