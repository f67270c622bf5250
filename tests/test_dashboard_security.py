"""The dashboard's safety: loopback unless authenticated, every request authenticated once credentials are set,
actions only as POSTs carrying the browser's CSRF token, none in read-only mode. Against a real `pool dashboard`
process and Redis; the pages themselves are checked in a browser (tests/test_dashboard_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pool import PoolRedis
from pool.jobs import Job, JobAborted, JobStatus
from tests.dashboard_utils import DashboardProcess, basic, http
from tests.supervisor_utils import run_pool


@pytest.fixture
def dashboard(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(*extra: str, host: str = "127.0.0.1", env: dict[str, str] | None = None) -> DashboardProcess:
        process = DashboardProcess(redis_url, tmp_path, *extra, host=host, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def _csrf(headers: dict[str, str], body: str) -> tuple[str, str]:
    """(the CSRF cookie as sent back, the token in the page's forms)."""
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    field = re.search(r'name="csrf" value="([^"]+)"', body)
    assert cookie.startswith("pool_csrf=") and field, (cookie, body[:300])
    return cookie.split(";")[0], field.group(1)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.org"])
def test_binding_beyond_loopback_without_credentials_is_a_usage_error(
    tmp_path: Path, redis_url: str, host: str
) -> None:
    done = run_pool("dashboard", "--queue", "default", "--redis", redis_url, "--host", host, cwd=tmp_path)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a loopback address" in lines[0] and "--token" in lines[0], done.stderr


def test_without_settings_or_queue_it_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pool("dashboard", cwd=tmp_path)
    assert done.returncode == 2 and "give SETTINGS" in done.stderr, done


def test_a_port_in_use_is_a_failure_in_one_line(tmp_path: Path, redis_url: str) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]  # the test's Redis listens there
    done = run_pool("dashboard", "--queue", "default", "--redis", redis_url, "--port", port, cwd=tmp_path)
    assert done.returncode == 1 and "address already in use" in done.stderr and "Traceback" not in done.stderr, done


def test_malformed_basic_auth_is_a_usage_error(tmp_path: Path, redis_url: str) -> None:
    done = run_pool("dashboard", "--queue", "default", "--redis", redis_url, "--basic-auth", "nopassword", cwd=tmp_path)
    assert done.returncode == 2 and "USER:PASSWORD" in done.stderr, done


def test_a_non_loopback_binding_refuses_unauthenticated_requests(dashboard: Callable[..., DashboardProcess]) -> None:
    server = dashboard(host="0.0.0.0", env={"POOL_DASHBOARD_TOKEN": "s3cret-token"})
    status, headers, _ = http(server.url + "/")
    assert status == 401 and "Basic" in headers.get("www-authenticate", headers.get("WWW-Authenticate", ""))
    assert http(server.url + "/", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert http(server.url + "/", headers=basic("anyone", "wrong"))[0] == 401
    assert http(server.url + "/", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
    assert http(server.url + "/failed", headers=basic("anyone", "s3cret-token"))[0] == 200


def test_an_unauthenticated_dashboard_answers_only_to_loopback_names(
    dashboard: Callable[..., DashboardProcess],
) -> None:
    """Against DNS rebinding: another site's page reaching 127.0.0.1 under the site's own name is refused."""
    server = dashboard("--allow-host", "tunnel.example")
    for host in ("127.0.0.1", f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]:80", "tunnel.example"):
        assert http(server.url + "/", headers={"Host": host})[0] == 200, host
    for host in (f"evil.example:{server.port}", "127.0.0.1.evil.example", ""):
        status, _, body = http(server.url + "/failed", headers={"Host": host})
        assert status == 400 and "answers to" in body, host


def test_basic_credentials_need_both_user_and_password(dashboard: Callable[..., DashboardProcess]) -> None:
    server = dashboard("--basic-auth", "ops:pa55word", host="0.0.0.0")
    assert http(server.url + "/cron")[0] == 401
    assert http(server.url + "/cron", headers=basic("other", "pa55word"))[0] == 401
    assert http(server.url + "/cron", headers=basic("ops", "wrong"))[0] == 401
    assert http(server.url + "/cron", headers=basic("ops", "pa55word"))[0] == 200


async def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    dashboard: Callable[..., DashboardProcess], redis: PoolRedis
) -> None:
    await redis.enqueue_job("double", 1, _job_id="keep-me")
    server = dashboard()
    action = f"{server.url}/job/abort?queue=default&id=keep-me"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # no cookie, no field
    assert http(action, "POST", b"", form)[0] == 403
    # a field but no cookie (another site cannot read the cookie to copy it)
    status, headers, body = http(server.url + "/jobs")
    cookie, token = _csrf(headers, body)
    assert http(action, "POST", f"csrf={token}".encode(), form)[0] == 403
    # the cookie but a wrong field, or none
    assert http(action, "POST", b"csrf=forged-forged-forged-forged-forged", {**form, "Cookie": cookie})[0] == 403
    assert http(action, "POST", b"", {**form, "Cookie": cookie})[0] == 403
    # both, but sent from another site
    other_site = {**form, "Cookie": cookie, "Origin": "http://evil.example"}
    assert http(action, "POST", f"csrf={token}".encode(), other_site)[0] == 403
    job = Job("keep-me", redis)
    assert await job.status() == JobStatus.queued
    # both, from the page itself: the action is done
    status, headers, _ = http(action, "POST", f"csrf={token}".encode(), {**form, "Cookie": cookie})
    assert status == 303, status
    with pytest.raises(JobAborted):
        await job.result(timeout=5)


async def test_read_only_mode_draws_and_serves_no_action(
    dashboard: Callable[..., DashboardProcess], redis: PoolRedis
) -> None:
    await redis.enqueue_job("double", 1, _job_id="stays")
    server = dashboard("--read-only")
    for path in ("/", "/jobs", "/job?id=stays", "/failed", "/cron", "/supervisors"):
        status, _, body = http(server.url + path)
        assert status == 200 and 'method="post"' not in body and "read-only" in body, path
    _, headers, _ = http(server.url + "/jobs")
    cookie = (headers.get("set-cookie") or headers.get("Set-Cookie") or "").split(";")[0]
    token = cookie.partition("=")[2]  # no form carries it here: a valid token taken from the cookie itself
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    for action in ("/job/abort?queue=default&id=stays", "/failed/purge?queue=default"):
        status, _, text = http(server.url + action, "POST", f"csrf={token}".encode(), form)
        assert status == 403 and "read-only" in text, (action, status, text)
    assert await Job("stays", redis).status() == JobStatus.queued


def test_the_redis_password_is_never_shown(tmp_path: Path, redis_server_factory: Callable[..., object]) -> None:
    server = redis_server_factory(password="very-secret-pw")
    url = server.url  # type: ignore[attr-defined]
    assert "very-secret-pw" in url
    process = DashboardProcess(url, tmp_path)
    try:
        for path in ("/", "/jobs", "/failed", "/cron", "/supervisors", "/job?id=x"):
            status, _, body = http(process.url + path)
            assert status in (200, 404) and "very-secret-pw" not in body and ":***@" in body, path
        assert "very-secret-pw" not in process.output()
    finally:
        process.stop()


def test_an_unknown_queue_or_cursor_is_not_found(dashboard: Callable[..., DashboardProcess]) -> None:
    server = dashboard()
    assert http(server.url + "/jobs?queue=other")[0] == 404
    assert http(server.url + "/jobs?state=finished")[0] == 404
    assert http(server.url + "/jobs?cursor=nonsense")[0] == 404


async def test_actions_on_a_job_id_beyond_latin_1_are_done_and_said(
    dashboard: Callable[..., DashboardProcess], redis: PoolRedis
) -> None:
    """A job id is any text: the flash cookie naming it (a response header, latin-1 only) must not fail."""
    job_id = "résumé-✓-\u4e2d"
    await redis.enqueue_job("double", 1, _job_id=job_id)
    server = dashboard()
    status, headers, body = http(server.url + "/jobs")
    cookie, token = _csrf(headers, body)
    action = f"{server.url}/job/abort?queue=default&id={quote(job_id, safe='')}"
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    status, headers, _ = http(action, "POST", f"csrf={token}".encode(), form)
    assert status == 303, status
    with pytest.raises(JobAborted):
        await Job(job_id, redis).result(timeout=5)
    flash = (headers.get("set-cookie") or headers.get("Set-Cookie") or "").split(";")[0]
    assert flash.startswith("pool_flash="), headers
    location = headers.get("Location") or headers.get("location") or ""
    status, _, page = http(server.url + location, headers={"Cookie": f"{cookie}; {flash}"})
    assert status == 200 and f"job {job_id} aborted" in page, page[-600:]


def test_cookies_are_secure_when_the_dashboard_is_served_over_https(
    dashboard: Callable[..., DashboardProcess],
) -> None:
    """Behind a TLS-terminating proxy (uvicorn honours X-Forwarded-Proto from 127.0.0.1) the CSRF cookie is
    marked Secure, so the browser never sends it over plain HTTP; served over HTTP it cannot be."""
    server = dashboard()
    _, headers, _ = http(server.url + "/jobs", headers={"X-Forwarded-Proto": "https"})
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    assert cookie.startswith("pool_csrf=") and "; Secure" in cookie, cookie
    _, headers, _ = http(server.url + "/jobs")
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    assert cookie.startswith("pool_csrf=") and "Secure" not in cookie, cookie
