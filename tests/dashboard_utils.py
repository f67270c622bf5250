"""Running ``pool dashboard`` as a real subprocess for tests/test_dashboard*.py, and a headless Chromium.

The browser is Debian's chromium (/usr/bin/chromium, installed by ``make test``), driven by Playwright's Python
API; Playwright's own browser download is never used. A missing browser fails the test with a message saying
how to install it: the browser tests never skip.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import wait_for_sync
from tests.redis_server import _die_with_parent, free_port
from tests.worker_utils import worker_env

CHROMIUM = os.environ.get("POOL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# a directory to copy each screenshot to as well (the test's tmp dir always gets them)
SCREENS_ENV = "POOL_DASHBOARD_SCREENS"


def chromium_path() -> str:
    """The browser's path; AssertionError (a failure, not a skip) when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise AssertionError(
            f"no Chromium at {CHROMIUM}: the dashboard's browser tests need it "
            "(`make test` installs Debian's chromium package; or apt-get install -y chromium, or set POOL_CHROMIUM)"
        )
    return CHROMIUM


def save_screenshot(png: bytes, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    path.write_bytes(png)
    target = os.environ.get(SCREENS_ENV)
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


class DashboardProcess:
    """``pool dashboard SETTINGS --redis URL --port P [extra]``, its output in a log file."""

    def __init__(
        self, redis_url: str, workdir: Path, *extra: str, host: str = "127.0.0.1", env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.host = host
        self.log_path = workdir / f"dashboard-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pool",
                    "dashboard",
                    "tests.apps.dashboard.WorkerSettings",
                    "--redis",
                    redis_url,
                    "--host",
                    host,
                    "--port",
                    str(self.port),
                    *extra,
                ],
                cwd=workdir,
                env={**worker_env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        wait_for_sync(self._listening, 20, interval=0.05, message=f"dashboard listening on port {self.port}")
        assert self.popen.poll() is None, self.output()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.popen.poll() is not None:
            return True  # exited: the assertion after the wait says why
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def http(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def asgi_request(
    app: Any, path: str, method: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request sent to an ASGI app in this process (no server, no HTTP)."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    response_headers: dict[str, str] = {}
    for name, value in start.get("headers", []):
        key = name.decode().lower()
        response_headers[key] = (response_headers[key] + "\n" if key in response_headers else "") + value.decode()
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    return start["status"], response_headers, text
